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
from thresher.store import COMPLETE

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
        for marker in ("candidates/.complete", "verdicts/.complete", "model/.complete", ".export_complete"):
            assert (rd / marker).is_file(), f"round {k}: {marker} missing"
        for export in ("sft.jsonl", "critique_sft.jsonl"):
            assert sum(1 for _ in read_jsonl(rd / export)) > 0, f"round {k}: {export} empty"
        assert (rd / "model" / "config.json").is_file()
        ev = json.loads((rd / "eval.json").read_text())
        assert ev["tasks"].keys() == TASKS
        assert {"math", "tiny_rm"} <= set(ev["judges"])
        prompts[k] = {p["id"] for p in read_jsonl(rd / "prompts.jsonl")}
        assert len(prompts[k]) == 8
        # The student of round k was trained from round k-1's model.
        base = json.loads((rd / "model" / COMPLETE).read_text())["base_model"]
        assert base == (str(tiny_lm) if k == 1 else str(run / "round_1" / "model"))
        sampled = {c["model"] for c in read_jsonl(next((rd / "candidates").glob("shard-*.jsonl")))}
        assert sampled == {"teacher", "student"}
    assert prompts[1] != prompts[2], "per_round: fresh draws new prompts each round"
    rows = list(read_jsonl(run / "metrics.jsonl"))
    for k in (0, 1, 2):
        assert {r["task"] for r in rows if r["round"] == k and r["metric"] == "pass@1"} == TASKS
    assert any(r["metric"] == "selection_lift/tiny_rm" for r in rows)
    assert (run / "report.html").stat().st_size > 0
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def _marker_times(run: Path) -> dict[str, int]:
    return {
        str(p.relative_to(run)): p.stat().st_mtime_ns
        for p in [*run.glob("round_*/*/.complete"), *run.glob("round_*/.export_complete"), *run.glob("round_*/eval.json")]
    }


@pytest.mark.slow
def test_a_run_killed_between_stages_resumes_without_redoing_finished_ones(tiny_lm, tiny_rm, tmp_path):
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(yaml.safe_dump(tiny_recipe(tiny_lm, tiny_rm, tmp_path, "resume", rounds=1)))
    run = tmp_path / "resume"
    cmd = [sys.executable, "-m", "thresher", "run", str(recipe_path)]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    judged = run / "round_1" / "verdicts" / COMPLETE
    deadline = time.monotonic() + 300
    while not judged.exists():
        assert proc.poll() is None, "the run ended before judging finished"
        assert time.monotonic() < deadline, "judging did not finish in time"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the math verifier's workers go with it
    proc.wait()
    assert not (run / "round_1" / "eval.json").exists(), "killed too late to test a resume"
    before = _marker_times(run)
    shards = {p: p.read_bytes() for p in (run / "round_1" / "candidates").glob("shard-*.jsonl")}
    assert {"round_0/eval.json", "round_1/candidates/.complete", "round_1/verdicts/.complete"} <= set(before)

    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in ("round 0 · eval", "round 1 · sample", "round 1 · judge"):
        assert f"{stage}: complete already, skipped" in done.stderr
    assert "round 1 · train: done in" in done.stderr and "round 1 · eval: done in" in done.stderr
    after = _marker_times(run)
    assert {k: after[k] for k in before} == before, "a finished stage was redone"
    assert {p: p.read_bytes() for p in shards} == shards
    assert sorted(p.name for p in (run / "round_1" / "candidates").glob("shard-*.jsonl")) == sorted(
        p.name for p in shards
    )
    rows = list(read_jsonl(run / "metrics.jsonl"))
    assert {(r["round"], r["task"]) for r in rows if r["metric"] == "pass@1"} == {
        (k, t) for k in (0, 1) for t in TASKS
    }
