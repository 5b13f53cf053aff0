"""The judging stage (resume, summary, skip when complete) and the `thresher judge` command."""

from __future__ import annotations

import argparse

import pytest

from thresher.cli import main
from thresher.commands.judge import parse_spec
from thresher.config import JudgeConfig
from thresher.errors import UserError
from thresher.judges import function_judge, judge_stage
from thresher.records import Candidate, Prompt, Verdict, write_jsonl
from thresher.store import ShardedJsonl, read_records


def _data(n: int = 5):
    prompts = [
        Prompt.create("math", [{"role": "user", "content": f"{i} + {i}?"}], reference=str(2 * i)) for i in range(n)
    ]
    cands = [Candidate(p.id, "m", k, f"\\boxed{{{2 * i + k}}}") for i, p in enumerate(prompts) for k in range(2)]
    return prompts, cands


def exact(prompts, completions):
    return [float(c == f"\\boxed{{{p.reference}}}") for p, c in zip(prompts, completions)]


def test_stage_resumes_after_a_crash_without_redoing_or_duplicating(tmp_path):
    prompts, cands = _data(5)
    write_jsonl(tmp_path / "cands.jsonl", cands)
    calls: list[int] = []

    def crashing(ps, cs):
        if calls:
            raise RuntimeError("killed")
        calls.append(len(cs))
        return exact(ps, cs)

    with pytest.raises(RuntimeError, match="killed"):
        judge_stage(
            prompts,
            tmp_path / "cands.jsonl",
            [function_judge(crashing, "exact")],
            tmp_path / "v",
            progress=False,
            chunk_size=2,
        )
    assert len(list(ShardedJsonl(tmp_path / "v", Verdict))) == 4  # the first chunk (2 prompts) is on disk
    assert not (tmp_path / "v" / ".complete").exists()

    seen: list[str] = []

    def counting(ps, cs):
        seen.extend(cs)
        return exact(ps, cs)

    summary = judge_stage(
        prompts,
        tmp_path / "cands.jsonl",
        [function_judge(counting, "exact")],
        tmp_path / "v",
        progress=False,
        chunk_size=2,
    )
    assert len(seen) == 6  # only the 3 prompts without verdicts were judged again
    verdicts = list(ShardedJsonl(tmp_path / "v", Verdict))
    assert sorted(v.candidate_id for v in verdicts) == sorted(c.id for c in cands)
    assert summary["judges"]["exact"] == {
        "verdicts": 10,
        "errors": 0,
        "correct": 0,
        "incorrect": 0,
        "no_opinion": 0,
        "mean_score": 0.5,
        "error_examples": [],
    }
    assert summary["prompts"] == 5 and summary["candidates"] == 10
    # complete: a later call returns the summary and judges nothing
    seen.clear()
    again = judge_stage(
        prompts, tmp_path / "cands.jsonl", [function_judge(counting, "exact")], tmp_path / "v", progress=False
    )
    assert seen == [] and again["judges"]["exact"]["verdicts"] == 10


def test_stage_adds_a_new_judge_to_the_same_directory(tmp_path):
    prompts, cands = _data(3)
    write_jsonl(tmp_path / "cands.jsonl", cands)
    judge_stage(prompts, tmp_path / "cands.jsonl", [function_judge(exact, "exact")], tmp_path / "v", progress=False)
    errs = function_judge(lambda ps, cs: [None] * len(cs), "none")
    summary = judge_stage(
        prompts, tmp_path / "cands.jsonl", [function_judge(exact, "exact"), errs], tmp_path / "v", progress=False
    )
    assert summary["judges"]["none"]["no_opinion"] == 6 and summary["judges"]["exact"]["verdicts"] == 6
    assert len(list(ShardedJsonl(tmp_path / "v", Verdict))) == 12


def test_stage_with_configs_counts_errors_and_correct(tmp_path):
    prompts, cands = _data(3)
    cands.append(Candidate(prompts[0].id, "m", 2, "\\boxed{9^{9^{9^{9}}}}"))  # hangs sympy: a timeout error
    write_jsonl(tmp_path / "cands.jsonl", cands)
    summary = judge_stage(
        prompts,
        tmp_path / "cands.jsonl",
        [JudgeConfig(type="math", args={"timeout": 2.0, "workers": 2})],
        tmp_path / "v",
        progress=False,
    )
    row = summary["judges"]["math"]
    assert (row["verdicts"], row["errors"], row["correct"], row["incorrect"]) == (7, 1, 3, 3)
    assert row["error_examples"][0].startswith("timed out after 2s")
    assert row["mean_score"] == 0.5


def test_stage_rejects_candidates_of_unknown_prompts_and_duplicate_judge_names(tmp_path):
    prompts, cands = _data(2)
    write_jsonl(tmp_path / "cands.jsonl", cands)
    with pytest.raises(UserError, match="not in the prompts"):
        judge_stage(prompts[:1], tmp_path / "cands.jsonl", [function_judge(exact, "e")], tmp_path / "v", progress=False)
    with pytest.raises(UserError, match="duplicate judge name 'e'"):
        judge_stage(prompts, tmp_path / "cands.jsonl", [function_judge(exact, "e")] * 2, tmp_path / "v", progress=False)


# ------------------------------------------------------------------------------------------ CLI
def _ns(**kw):
    base = {"language": "en", "max_tokens": 1024, "llm_backend": "hf", "llm_model": None, "no_reference": False}
    return argparse.Namespace(**{**base, **kw})


def test_parse_spec():
    assert parse_spec("math", _ns()) == JudgeConfig(type="math")
    assert parse_spec("rm:./my-rm", _ns()).args.model == "./my-rm"
    cfg = parse_spec("llm:./judge:listwise", _ns(language="zh"))
    args = cfg.args
    assert (args.model, args.backend, args.mode, args.language, args.max_tokens) == ("./judge", "hf", "listwise", "zh", 1024)
    cfg = parse_spec("llm:./judge:listwise", _ns(language="auto", no_reference=True))
    assert (cfg.args.language, cfg.args.with_reference) == ("auto", False)
    cfg = parse_spec("llm:http://127.0.0.1:8000/v1:pairwise", _ns(llm_model="qwen"))
    assert (cfg.args.base_url, cfg.args.model, cfg.args.mode) == (
        "http://127.0.0.1:8000/v1",
        "qwen",
        "pairwise",
    )
    assert parse_spec("llm:http://127.0.0.1:8000/v1", _ns(llm_model="q")).args.mode == "pointwise"
    with pytest.raises(UserError, match="expected math, code"):
        parse_spec("rm", _ns())


def test_cli_judges_a_round_directory_with_math_and_a_reward_model(tmp_path, tiny_rm, capsys):
    prompts, cands = _data(3)
    run = tmp_path / "round_1"
    write_jsonl(run / "prompts.jsonl", prompts)
    write_jsonl(run / "candidates" / "shard-00000.jsonl", cands)
    argv = ["judge", "--out", str(run), "--judge", "math", "--judge", f"rm:{tiny_rm}", "--judge", f"rm:{tiny_rm}"]
    assert main(argv) == 0
    verdicts = list(read_records(run / "verdicts", Verdict))
    assert sorted({v.judge for v in verdicts}) == ["math", "rm", "rm-2"]
    assert len(verdicts) == 18
    err = capsys.readouterr().err
    assert "judged 6 candidates of 3 prompts" in err and "math: 6 verdicts, 0 errors, 3 correct" in err
    assert main(argv) == 0  # complete: skipped


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["judge", "--out", str(tmp_path), "--judge", "math"]) == 2
    assert "prompts.jsonl: no such file" in capsys.readouterr().err
    assert main(["judge", "--out", str(tmp_path), "--judge", "bogus"]) == 2
    assert "--judge 'bogus'" in capsys.readouterr().err
    assert main(["judge", "--out", str(tmp_path)]) == 2
    assert "no judge" in capsys.readouterr().err
