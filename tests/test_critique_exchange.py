"""Critique rows are the exchange the judge had: its language and template as recorded, exact text, honest errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from thresher.cli import main
from thresher.config import ExportConfig, SelectionConfig
from thresher.errors import ConfigError
from thresher.feedback import export_stage
from thresher.feedback.stage import _dedup_text
from thresher.judges.llm_judge import listwise_verdicts
from thresher.judges.llm_templates import listwise_request, prompt_digest
from thresher.records import Candidate, Prompt, Verdict, read_jsonl, write_jsonl
from thresher.store import ShardedJsonl


def _zh(i: int) -> Prompt:
    return Prompt.create(
        "word_problem_zh", [{"role": "user", "content": f"小明有{i}个苹果，又得到{i}个。现在有多少个苹果？"}],
        reference=str(2 * i), metadata={"language": "zh"},
    )


def _listwise_round(tmp_path, prompts, judge="tiny_judge", output=None, language="zh", with_reference=False,
                    tamper=False):
    """A round judged by a listwise judge the way LLMJudge records it: shown order, language, request digest."""
    cands, verdicts = [], []
    for i, p in enumerate(prompts):
        cs = [Candidate(p.id, m, 0, f"{m} 的答案 {2 * i + k}", 5, "stop") for k, m in enumerate(("teacher", "student"))]
        shown = [1, 0]
        request = listwise_request(p, [cs[j].text for j in shown], language, with_reference)
        asked = {"language": language, "with_reference": with_reference,
                 "request": prompt_digest(request) if not tamper else "0" * 16}
        text = output if output is not None else (
            f"<reasoning>回答1的答案是 {2 * i + 1}：错误。\n回答2的答案是 {2 * i}：正确。第 {i} 题。</reasoning>\n"
            "<best>2</best>\n<ranking>2, 1</ranking>"
        )
        cands += cs
        verdicts += [replace(v, kind="listwise") for v in listwise_verdicts([c.id for c in cs], judge, shown, text, asked)]
    rd = tmp_path / "round_1"
    write_jsonl(rd / "prompts.jsonl", prompts)
    with ShardedJsonl(rd / "candidates", Candidate).writer() as w:
        w.write_many(cands)
    with ShardedJsonl(rd / "verdicts", Verdict).writer() as w:
        w.write_many(verdicts)
    return rd


def _export(rd, language="en", **args):
    return export_stage(
        list(read_jsonl(rd / "prompts.jsonl", Prompt)), rd / "candidates", rd / "verdicts", rd,
        SelectionConfig("best", {"judge": "tiny_judge"}), ExportConfig(critique=True, language=language, args=args),
        {"student"},
    )


def test_chinese_listwise_rows_are_the_recorded_exchange_whatever_export_language_says(tmp_path):
    prompts = [_zh(i) for i in range(1, 4)]
    rd = _listwise_round(tmp_path, prompts)
    summary = _export(rd, language="en")  # the judge ran in Chinese: its rows stay Chinese
    rows = list(read_jsonl(rd / "critique_sft.jsonl"))
    assert len(rows) == 3 and summary["exports"]["critique_sft"]["language"] == "zh"
    by_id = {r["metadata"]["prompt_id"]: r for r in rows}
    for i, p in enumerate(prompts):
        row = by_id[p.id]
        shown = [f"student 的答案 {2 * i + 1}", f"teacher 的答案 {2 * i}"]
        assert row["messages"][0]["content"] == listwise_request(p, shown, "zh", with_reference=False)[0]["content"]
        assert "【参考答案】" not in row["messages"][0]["content"]  # it judged without the reference, as recorded
        assert row["messages"][1]["content"].startswith(f"<reasoning>回答1的答案是 {2 * i + 1}：错误。")
        assert row["metadata"]["language"] == "zh"
        assert row["metadata"]["candidate_ids"] == [f"{p.id}/student/0", f"{p.id}/teacher/0"]


def test_a_rebuilt_prompt_that_differs_from_the_recorded_request_is_dropped(tmp_path):
    rd = _listwise_round(tmp_path, [_zh(1), _zh(2)], tamper=True)
    summary = _export(rd)
    assert summary["exports"]["critique_sft"]["rows"] == 0
    assert summary["exports"]["critique_sft"]["dropped"] == {"judge_request_mismatch": 2}


def test_near_duplicate_filter_compares_problem_and_reasoning_not_the_judge_prompt(tmp_path):
    prompts = [_zh(i) for i in range(10, 30)]
    rd = _listwise_round(tmp_path, prompts)
    summary = _export(rd, dedup={"exact": True, "near": True, "threshold": 0.85})
    assert summary["exports"]["critique_sft"]["rows"] == 20  # 20 distinct exchanges, all kept
    row = next(read_jsonl(rd / "critique_sft.jsonl"))
    text, _ = _dedup_text("critique_sft", "all", prompts[0], row)
    assert "你是一位严格而公正的评判者" not in text and prompts[0].question in text


def test_a_listwise_judge_whose_verdicts_all_failed_is_named_as_such(tmp_path):
    rd = _listwise_round(tmp_path, [_zh(1), _zh(2)], output="I cannot decide.")
    with pytest.raises(ConfigError) as e:
        _export(rd)
    msg = str(e.value)
    assert "tiny_judge (listwise; all 4 verdicts failed, first: unparseable judge output: no <reasoning>" in msg
    assert "--critique-judge NAME" in msg and "(reward)" not in msg


def test_two_llm_judges_need_the_flag_and_the_flag_chooses(tmp_path, capsys):
    prompts = [_zh(1), _zh(2)]
    rd = _listwise_round(tmp_path, prompts)
    second = [replace(v, judge="judge_b", metadata=dict(v.metadata))
              for v in read_jsonl(rd / "verdicts" / next(p.name for p in (rd / "verdicts").glob("*.jsonl")), Verdict)]
    with ShardedJsonl(rd / "verdicts", Verdict).writer() as w:
        w.write_many(second)
    with pytest.raises(ConfigError, match=r"several judges could write the critiques \(judge_b, tiny_judge\); "
                                          r"choose one with --critique-judge NAME"):
        _export(rd)
    code = main(["export", "--run", str(tmp_path), "--round", "1", "--critique", "--policy", "best",
                 "--judge", "tiny_judge", "--critique-judge", "judge_b"])
    assert code == 0
    rows = list(read_jsonl(rd / "critique_sft.jsonl"))
    assert len(rows) == 2 and {r["metadata"]["judge"] for r in rows} == {"judge_b"}
    code = main(["export", "--run", str(tmp_path), "--round", "1", "--critique", "--policy", "best",
                 "--judge", "tiny_judge"])
    assert code == 2
    assert "--critique-judge NAME" in capsys.readouterr().err
