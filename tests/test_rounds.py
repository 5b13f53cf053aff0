"""The round loop end to end with tiny models: the run-directory contract, and resuming after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from thresher.config import parse_recipe
from thresher.records import read_jsonl
from thresher.store import COMPLETE, read_records

STAGES = ("prompts", "sample", "judge", "export", "train", "eval")


def finished(rd: Path, stage: str) -> bool:
    marker = rd / ".stages" / f"{stage}.json"
    return marker.is_file() and json.loads(marker.read_text()).get("finished") is True

TASKS = {"addition", "subtraction", "multiplication", "word_problem"}


def tiny_recipe(lm: Path, rm: Path, out_dir: Path, name: str, rounds: int) -> dict:
    """Two rounds' worth of everything at the smallest sizes that still exercise every stage."""
    sampling = {"temperature": 1.0, "max_tokens": 6}
    return {
        "name": name,
        "rounds": rounds,
        "out_dir": str(out_dir),
        "prompts": {
            "train": {"source": "arithmetic", "count": 8, "seed": 1},
            "eval": {"source": "arithmetic", "split": "eval", "count": 8},
            "per_round": "fresh",
        },
        "models": [
            {"name": "teacher", "path": str(lm), "backend": "hf", "n": 2, "sampling": {**sampling, "seed": 1}},
            {"name": "student", "path": str(lm), "role": "student", "backend": "hf", "n": 2,
             "sampling": {**sampling, "seed": 2}},
        ],
        "judges": [{"type": "math", "args": {"workers": 1}}, {"type": "rm", "name": "tiny_rm", "args": {"model": str(rm)}}],
        # Random weights never finish an answer: keep cut answers, rank by the reward model.
        "selection": {"policy": "best", "args": {"judge": "tiny_rm"}},
        "export": {"sft": True, "critique": True, "args": {"filters": {"drop_truncated": False}}},
        "train": {"method": "sft", "data": ["sft", "critique_sft"], "epochs": 1, "batch_size": 8, "max_length": 512},
        "eval": {"k": 2, "max_tokens": 6},
    }


@pytest.mark.slow
def test_two_rounds_write_the_run_directory_contract(tiny_lm, tiny_rm, tmp_path):
    from thresher.rounds import run_recipe

    recipe = parse_recipe(tiny_recipe(tiny_lm, tiny_rm, tmp_path, "two", rounds=2))
    run_recipe(recipe, progress=False)

    run = tmp_path / "two"
    assert yaml.safe_load((run / "recipe.yaml").read_text())["rounds"] == 2
    assert json.loads((run / "round_0" / "eval.json").read_text())["tasks"].keys() == TASKS
    prompts = {}
    for k in (1, 2):
        rd = run / f"round_{k}"
        for stage in STAGES:
            assert finished(rd, stage), f"round {k}: {stage} not finished"
        for export in ("sft.jsonl", "critique_sft.jsonl"):
            assert sum(1 for _ in read_jsonl(rd / export)) > 0, f"round {k}: {export} empty"
        assert (rd / "model" / "config.json").is_file()
        ev = json.loads((rd / "eval.json").read_text())
        assert ev["tasks"].keys() == TASKS
        assert {"math", "tiny_rm"} <= set(ev["judges"])
        card = next(iter(ev["judges"]["tiny_rm"].values()))
        assert {"selection_lift_ci", "best_of_n", "length_bias"} <= set(card) and card["best_of_n"]["n"] == [1, 2, 4]
        from thresher.eval.report_data import export_summary

        export = export_summary(rd)
        assert export["contamination"] == {"checked": True, "eval_prompts": 8, "prompts": 0, "rows": {},
                                           "by_rule": {}, "examples": []}
        prompts[k] = {p["id"] for p in read_jsonl(rd / "prompts.jsonl")}
        assert len(prompts[k]) == 8
        # The student of round k was trained from round k-1's model.
        base = json.loads((rd / "model" / COMPLETE).read_text())["base_model"]
        assert base == (str(tiny_lm) if k == 1 else str(run / "round_1" / "model"))
        sampled = {c["model"] for c in read_records(rd / "candidates")}
        assert sampled == {"teacher", "student"}
    assert prompts[1] != prompts[2], "per_round: fresh draws new prompts each round"
    rows = list(read_jsonl(run / "metrics.jsonl"))
    for k in (0, 1, 2):
        assert {r["task"] for r in rows if r["round"] == k and r["metric"] == "pass@1"} == TASKS
    assert any(r["metric"] == "selection_lift/tiny_rm" for r in rows)
    report = (run / "report.html").read_text(encoding="utf-8")
    assert "Training candidates: kept and rejected" in report and f"thresher view {run}" in report
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def _marker_times(run: Path) -> dict[str, int]:
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in run.glob("round_*/.stages/*.json")}


@pytest.mark.slow
def test_a_run_killed_between_stages_resumes_without_redoing_finished_ones(tiny_lm, tiny_rm, tmp_path):
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(yaml.safe_dump(tiny_recipe(tiny_lm, tiny_rm, tmp_path, "resume", rounds=1)))
    run = tmp_path / "resume"
    cmd = [sys.executable, "-m", "thresher", "run", str(recipe_path)]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while not finished(run / "round_1", "judge"):
        assert proc.poll() is None, "the run ended before judging finished"
        assert time.monotonic() < deadline, "judging did not finish in time"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the math verifier's workers go with it
    proc.wait()
    assert not (run / "round_1" / "eval.json").exists(), "killed too late to test a resume"
    before = _marker_times(run)
    shards = {p: p.read_bytes() for p in (run / "round_1" / "candidates").glob("shard-*.jsonl")}
    assert {"round_0/.stages/eval.json", "round_1/.stages/sample.json", "round_1/.stages/judge.json"} <= set(before)

    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in ("round 0 · eval", "round 1 · sample", "round 1 · judge"):
        assert f"{stage}: complete already, skipped" in done.stderr
    assert "round 1 · train: done in" in done.stderr and "round 1 · eval: done in" in done.stderr
    after = _marker_times(run)
    redone = {"round_1/.stages/export.json"} & set(before)  # export may have begun before the kill
    assert {k: after[k] for k in before if k not in redone} == {k: v for k, v in before.items() if k not in redone}
    assert {p: p.read_bytes() for p in shards} == shards
    assert sorted(p.name for p in (run / "round_1" / "candidates").glob("shard-*.jsonl")) == sorted(
        p.name for p in shards
    )
    rows = list(read_jsonl(run / "metrics.jsonl"))
    assert {(r["round"], r["task"]) for r in rows if r["metric"] == "pass@1"} == {
        (k, t) for k in (0, 1) for t in TASKS
    }

# Reruns: a run killed between any two stages resumes at the first unfinished one; an unchanged rerun
# skips everything; a changed reward-model argument re-judges that judge alone (and what depends on its
# verdicts); another selection re-exports, retrains and re-evaluates while sampling and judging are kept.


class Interrupted(Exception):
    pass


def _stop_after(monkeypatch: pytest.MonkeyPatch, module: str, name: str) -> None:
    """Let the stage function finish, then stop the run as a kill would (before the next stage starts)."""
    import importlib

    mod = importlib.import_module(module)
    real = getattr(mod, name)

    def wrapped(*args, **kwargs):
        real(*args, **kwargs)
        raise Interrupted(name)

    monkeypatch.setattr(mod, name, wrapped)


def _lines(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


def _marker(run: Path, stage: str) -> dict:
    return json.loads((run / "round_1" / ".stages" / f"{stage}.json").read_text())


@pytest.mark.slow
def test_interrupted_between_every_two_stages_then_reruns_skip_or_recompute(tiny_lm, tiny_rm, tmp_path, capsys):
    from thresher.rounds import run_recipe

    data = tiny_recipe(tiny_lm, tiny_rm, tmp_path, "rerun", rounds=1)
    recipe = parse_recipe(data)
    run = tmp_path / "rerun"
    order = [
        ("thresher.prompts.stage", "stage_prompts", "prompts"),
        ("thresher.sampling.stage", "sample_stage", "sample"),
        ("thresher.judges.stage", "judge_stage", "judge"),
        ("thresher.feedback.stage", "export_stage", "export"),
        ("thresher.train.stage", "train_stage", "train"),
    ]
    for i, (module, name, stage) in enumerate(order):
        with pytest.MonkeyPatch.context() as mp:
            _stop_after(mp, module, name)
            with pytest.raises(Interrupted):
                run_recipe(recipe, progress=True)
        err = _lines(capsys)
        for done, _, _ in [(s, 0, 0) for _, _, s in order[:i]]:
            assert f"round 1 · {done}: complete already, skipped" in err, (stage, err)
        assert f"round 1 · {stage}: done in" in err, (stage, err)
        assert _marker(run, stage)["finished"]
    run_recipe(recipe, progress=True)
    err = _lines(capsys)
    assert "round 1 · train: complete already, skipped" in err and "round 1 · eval: done in" in err
    result = json.loads((run / "round_1" / "eval.json").read_text())

    run_recipe(recipe, progress=True)  # unchanged: every stage of every round skips
    err = _lines(capsys)
    for stage in ("prompts", "sample", "judge", "export", "train", "eval"):
        assert f"round 1 · {stage}: complete already, skipped" in err, (stage, err)
    assert "round 0 · eval: complete already, skipped" in err and "done in" not in err

    verdicts_before = {p.name: p.read_bytes() for p in (run / "round_1" / "verdicts").glob("shard-math-*.jsonl")}
    data["judges"][1]["args"]["batch_size"] = 4  # another reward-model argument: that judge alone again
    run_recipe(parse_recipe(data), progress=True)
    err = _lines(capsys)
    assert "round 1 · judge tiny_rm: recomputing (judge.args.batch_size: 16 -> 4)" in err, err
    assert "judge math: recomputing" not in err
    judge = _marker(run, "judge")
    assert judge["summary"]["judges"]["math"]["verdicts"] == judge["summary"]["judges"]["tiny_rm"]["verdicts"] == 32
    assert {p.name: p.read_bytes() for p in (run / "round_1" / "verdicts").glob("shard-math-*.jsonl")} == verdicts_before
    assert "round 1 · sample: complete already, skipped" in err

    rows_before = _marker(run, "export")["summary"]["exports"]["sft"]["rows"]
    data["selection"] = {"policy": "top_k", "args": {"judge": "tiny_rm", "k": 2}}  # export, train, eval follow
    run_recipe(parse_recipe(data), progress=True)
    err = _lines(capsys)
    export_line = next(line for line in err.splitlines() if line.startswith("round 1 · export: recomputing ("))
    assert 'selection.policy: "best" -> "top_k"' in export_line, err
    for stage in ("sample", "judge"):
        assert f"round 1 · {stage}: complete already, skipped" in err
    assert "round 1 · train: recomputing (data." in err and "round 1 · eval: recomputing (model.checkpoint:" in err
    assert _marker(run, "export")["summary"]["exports"]["sft"]["rows"] > rows_before  # 2 per prompt now
    assert json.loads((run / "round_1" / "eval.json").read_text())["model"] == result["model"]
