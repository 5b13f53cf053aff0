"""The held-out set stays held out: planted copies of eval prompts are found and dropped, different problems are not."""

from __future__ import annotations

import json

import pytest

from thresher.config import ExportConfig, SelectionConfig
from thresher.errors import ConfigError
from thresher.feedback.contamination import ContaminationConfig, ContaminationIndex, row_texts, tokens
from thresher.feedback.stage import export_outcome
from thresher.records import Candidate, Prompt, Verdict, read_jsonl, write_jsonl
from thresher.store import ShardedJsonl

LONG_EN = ("A baker made 48 loaves on Monday and twice as many on Tuesday. She sold 75 loaves in total and gave "
           "the rest to a shelter. How many loaves did the shelter get?")
SHORT_EN = "What is 12 + 34?"
LONG_ZH = "小明有48个苹果，星期二又买了两倍那么多。他一共卖出75个，剩下的送给了邻居。邻居得到了多少个苹果？"
SHORT_ZH = "计算12加34等于多少？"


def _user(text: str) -> Prompt:
    return Prompt.create("math", [{"role": "user", "content": text}], reference="1")


@pytest.fixture(scope="module")
def index() -> ContaminationIndex:
    return ContaminationIndex([_user(t) for t in (LONG_EN, SHORT_EN, LONG_ZH, SHORT_ZH)])


def test_tokens_normalise_case_punctuation_numbers_and_split_chinese_by_character():
    assert tokens("The TOTAL is 1,234.5 — ok?") == ["the", "total", "is", "1234.5", "ok"]
    assert tokens("小明有12个") == ["小", "明", "有", "12", "个"]
    assert tokens("3×4 = x^2") == ["3", "×", "4", "=", "x", "^", "2"]
    assert tokens("Ｗｈａｔ ｉｓ １２？") == ["what", "is", "12"]  # full-width forms (NFKC)


def test_planted_english_copies_are_found(index):
    sft_row = {"messages": [{"role": "user", "content": "what is 12+34"},  # same problem, other spacing/case
                            {"role": "assistant", "content": "46"}]}
    critique_row = {"messages": [
        {"role": "user", "content": "Judge the 2 answers below.\n\nProblem: " + LONG_EN + "\n\nAnswer 1: 46"},
        {"role": "assistant", "content": "Answer 1 is right."}]}
    reworded = LONG_EN.replace("Monday", "Wednesday")
    dpo_row = {"prompt": [{"role": "user", "content": "Quick one. " + SHORT_EN + " Show work."}],
               "chosen": [{"role": "assistant", "content": "46"}], "rejected": [{"role": "assistant", "content": "45"}]}
    m = index.check_row(sft_row)
    assert (m.rule, m.overlap) == ("exact", 1.0)
    m = index.check_row(critique_row)
    assert (m.rule, m.overlap) == ("ngram", 1.0)
    m = index.check(reworded)  # 33 tokens, 21 13-grams; "monday" (token 6) is in 7 of them: 14 and every number stay
    assert m.rule == "ngram" and m.overlap == pytest.approx(14 / 21)
    assert index.check_row(dpo_row).rule == "contained"


def test_planted_chinese_copies_are_found(index):
    m = index.check("请解答下面的题目。" + LONG_ZH + "请写出过程。")
    assert m is not None and m.rule == "ngram" and m.overlap == 1.0
    m = index.check(LONG_ZH.replace("邻居", "朋友"))  # one word changed twice: most character 13-grams stay
    assert m is not None and m.rule == "ngram" and m.overlap >= 0.5
    assert index.check("老师问：" + SHORT_ZH).rule == "contained"
    assert index.check("计算 12 加 34 等于多少").rule == "exact"


def test_near_misses_that_are_different_problems_are_not_flagged(index):
    assert index.check("What is 12 + 35?") is None
    assert index.check("What is 12 - 34?") is None
    assert index.check("What is 112 + 34?") is None
    assert index.check("计算12加35等于多少？") is None
    # the same long wording with one number changed is another problem: most 13-grams match, a number does not
    assert index.check(LONG_EN.replace("75", "76")) is None
    assert index.check(LONG_ZH.replace("75", "76")) is None
    # and a share of the wording below min_overlap is not enough
    assert index.check("A baker made 48 loaves on Monday and twice as many on Tuesday. Then she went home.") is None


def test_template_ngrams_shared_by_many_eval_prompts_are_not_evidence():
    template = "Read the problem carefully, think step by step and give the final answer on the last line. "
    evals = [_user(template + f"Problem: what is {i} + {i + 1}?") for i in range(20)]
    idx = ContaminationIndex(evals)
    assert idx.template_grams > 0
    assert idx.check(template + "Problem: what is 3 + 7?") is None  # same instruction, another problem
    assert idx.check(template + "Problem: what is 5 + 6?").rule == "exact"


def test_the_real_arithmetic_suite_has_no_contamination_between_train_and_eval():
    """The quickstart's train and eval problems share templates; none of them, nor their answers, is flagged."""
    from thresher.prompts.arithmetic import TASKS, ZH_TASKS, arithmetic_suite
    from thresher.quickstart.worked import worked_answer

    tasks = (*TASKS, *ZH_TASKS)  # the quickstart's, Chinese word problems included
    idx = ContaminationIndex(arithmetic_suite("eval", 500, seed=0, tasks=tasks))
    train = [p for seed in (1, 2, 3) for p in arithmetic_suite("train", 2000, seed=seed, tasks=tasks)]
    assert len(idx) == 500 and len(train) == 6000
    assert sum(idx.check_prompt(p) is not None for p in train) == 0
    rows = [{"messages": [*p.messages, {"role": "assistant", "content": worked_answer(p)}]} for p in train[::6]]
    assert len(rows) == 1000 and sum(idx.check_row(r) is not None for r in rows) == 0
    # while each of those eval problems, put in a training row, is found
    evals = arithmetic_suite("eval", 500, seed=0, tasks=tasks)
    assert all(idx.check_row({"messages": [*p.messages, {"role": "assistant", "content": "1"}]}) for p in evals)


def test_row_texts_reads_every_trl_format():
    assert row_texts({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}) == ["a", "b"]
    assert row_texts({"prompt": "p", "completion": "c"}) == ["p", "c"]
    assert row_texts({"text": "t", "task": "x"}) == ["t"]


def test_config_rejects_impossible_values_naming_the_recipe_key():
    from thresher.feedback.options import export_options

    with pytest.raises(ConfigError, match="min_overlap"):
        ContaminationConfig(min_overlap=0)
    with pytest.raises(ConfigError, match="ngram"):
        ContaminationConfig(ngram=1)
    # an ExportConfig checks its args when it is made; in a recipe the key path starts with `export.`
    with pytest.raises(ConfigError, match=r"^args.contamination.min_overlap: must be in \(0, 1\], got 2"):
        export_options(ExportConfig(args={"contamination": {"min_overlap": 2}}))
    with pytest.raises(ConfigError, match="^args.contamination.ngrams: unknown key"):
        export_options(ExportConfig(args={"contamination": {"ngrams": 8}}))


# the export stage ------------------------------------------------------------------------


def _round(tmp_path, prompts):
    rd = tmp_path / "round_1"
    write_jsonl(rd / "prompts.jsonl", prompts)
    cands = [Candidate(p.id, "teacher", j, f"The answer is {j}.") for p in prompts for j in range(2)]
    with ShardedJsonl(rd / "candidates", Candidate).writer() as w:
        w.write_many(cands)
    with ShardedJsonl(rd / "verdicts", Verdict).writer() as w:
        w.write_many([Verdict(c.id, "rm", score=float(c.index)) for c in cands])
    return rd


def _export(rd, eval_prompts, **args):
    return _outcome(rd, eval_prompts, **args).summary


def _outcome(rd, eval_prompts, **args):
    return export_outcome(
        list(read_jsonl(rd / "prompts.jsonl", Prompt)), rd / "candidates", rd / "verdicts", rd,
        SelectionConfig("top_k", {"k": 2}),
        ExportConfig(dpo="best_vs_worst", args={"dedup": {"exact": False, "near": False}, **args}), {"student"},
        progress=False, eval_prompts=eval_prompts,
    )


def test_export_drops_contaminated_rows_counts_them_and_exports_again_for_another_eval_set(tmp_path):
    evals = [_user(LONG_EN), _user(SHORT_ZH)]
    train = [_user("What is 5 + 9?"), _user("Please answer: " + LONG_EN), _user("What is 6 + 9?"), _user(SHORT_ZH)]
    rd = _round(tmp_path, train)
    s = _export(rd, evals)
    assert s["exports"]["sft"]["rows"] == 4  # two clean prompts x 2 kept answers
    assert s["exports"]["sft"]["dropped"] == {"contaminated": 4}
    assert s["exports"]["dpo"]["rows"] == 2 and s["exports"]["dpo"]["dropped"]["contaminated"] == 2
    c = s["contamination"]
    assert c["checked"] and c["eval_prompts"] == 2 and c["prompts"] == 2
    assert c["rows"] == {"dpo": 2, "sft": 4} and c["by_rule"] == {"exact": 3, "ngram": 3}
    assert {(e["prompt_id"], e["eval_prompt_id"], e["rule"]) for e in c["examples"]} == {
        (train[1].id, evals[0].id, "ngram"), (train[3].id, evals[1].id, "exact")}
    kept = {r["metadata"]["prompt_id"] for r in read_jsonl(rd / "sft.jsonl")}
    assert kept == {train[0].id, train[2].id}

    assert _outcome(rd, evals).skipped == ["export"]
    again = _outcome(rd, [_user("What is 5 + 9?")])  # another held-out set: exported again, not skipped
    assert again.ran == ["export"] and again.summary["contamination"]["prompts"] == 1
    assert again.summary["exports"]["sft"]["rows"] == 6
    off = _export(rd, None)
    assert off["contamination"] == {"checked": False} and off["exports"]["sft"]["rows"] == 8


def test_export_checks_rows_mixed_in_from_other_files(tmp_path):
    rd = _round(tmp_path, [_user("What is 5 + 9?")])
    general = tmp_path / "general.jsonl"
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "ok"}], "task": "chat"}
            for q in ("Name a colour.", LONG_ZH, "Say hello.")]
    general.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    s = _export(rd, [_user(LONG_ZH)], mix=[{"sources": [{"path": str(general)}], "total": 6}])
    assert s["mix"]["sft"]["refused"] == {"general": 1}
    assert s["exports"]["sft"]["dropped"] == {"contaminated": 1}
    assert s["contamination"]["rows"] == {"sft": 1}
    texts = [r["messages"][0]["content"] for r in read_jsonl(rd / "sft.jsonl")]
    assert LONG_ZH not in texts and "Say hello." in texts and len(texts) == 6
