"""The one stage runner, on a toy stage: skip, resume, recompute exactly the changed part, never trust strays.

Plus the run lock (a second writer gets exit 2 naming the holder; a dead
holder's lock is taken over) and the judge-then-export flow of the CLI on
candidates that start outside the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from thresher.errors import UserError
from thresher.runner import changes, run_stage


class Toy:
    """A stage with one output file per part; `work` counts how often each part was computed."""

    name = "toy"

    def __init__(self, root: Path, settings: dict[str, Any], fail_on: str | None = None):
        self.root, self.settings, self.fail_on = root, settings, fail_on
        self.marker = root / ".stages" / "toy.json"
        self.work: list[str] = []

    def parts(self) -> dict[str, Any]:
        return {p: {"value": v} for p, v in self.settings.items()}

    def has_outputs(self, part: str) -> bool:
        return (self.root / f"{part}.txt").exists()

    def drop(self, part: str) -> None:
        (self.root / f"{part}.txt").unlink(missing_ok=True)

    def run(self, todo: list[str]) -> dict[str, Any]:
        for part in todo:
            if part == self.fail_on:
                raise KeyboardInterrupt  # a kill in the middle of the stage
            (self.root / f"{part}.txt").write_text(str(self.settings[part]))
            self.work.append(part)
        return {"parts": sorted(self.settings)}

    def describe(self, summary: dict[str, Any]) -> str:
        return f"{len(summary['parts'])} parts"


def test_skip_recompute_and_resume(tmp_path):
    said: list[str] = []
    first = Toy(tmp_path, {"a": 1, "b": 2})
    out = run_stage(first, say=said.append)
    assert first.work == ["a", "b"] and out.ran == ["a", "b"] and said[-1].startswith("toy: done in")

    same = Toy(tmp_path, {"a": 1, "b": 2})
    out = run_stage(same, say=said.append)
    assert same.work == [] and out.skipped == ["a", "b"] and said[-1] == "toy: complete already, skipped"

    changed = Toy(tmp_path, {"a": 1, "b": 3})
    out = run_stage(changed, say=said.append)
    assert changed.work == ["b"] and out.recomputed == {"b": ["value: 2 -> 3"]}
    assert "toy b: recomputing (value: 2 -> 3)" in said and (tmp_path / "b.txt").read_text() == "3"

    killed = Toy(tmp_path, {"a": 1, "b": 3, "c": 4}, fail_on="c")
    with pytest.raises(KeyboardInterrupt):
        run_stage(killed, say=said.append)
    marker = json.loads((tmp_path / ".stages" / "toy.json").read_text())
    assert marker["finished"] is False and marker["parts"]["c"]["done"] is False and marker["parts"]["a"]["done"]
    resumed = Toy(tmp_path, {"a": 1, "b": 3, "c": 4})
    out = run_stage(resumed, say=said.append)
    assert resumed.work == ["c"] and out.skipped == ["a", "b"]

    fewer = Toy(tmp_path, {"a": 1})  # a part no longer asked for is removed, not left to be read
    run_stage(fewer, say=said.append)
    assert fewer.work == [] and not (tmp_path / "b.txt").exists() and not (tmp_path / "c.txt").exists()


def test_outputs_without_a_marker_are_never_trusted(tmp_path):
    (tmp_path / "a.txt").write_text("made by someone else")
    said: list[str] = []
    stage = Toy(tmp_path, {"a": 1})
    out = run_stage(stage, say=said.append)
    assert stage.work == ["a"] and (tmp_path / "a.txt").read_text() == "1"
    assert out.recomputed == {"a": ["outputs on disk with no record of what made them"]}
    (tmp_path / "a.txt").unlink()  # removed by hand after it finished: made again
    again = Toy(tmp_path, {"a": 1})
    assert run_stage(again, say=said.append).ran == ["a"] and again.work == ["a"]


def test_changes_name_the_key_paths():
    old = {"model": {"dir": "/m", "checkpoint": "x"}, "sampling": {"temperature": 1.0, "n": 2}}
    new = {"model": {"dir": "/m", "checkpoint": "y"}, "sampling": {"temperature": 0.5, "n": 2}, "args": {}}
    assert changes(old, new) == ["args: added", 'model.checkpoint: "x" -> "y"', "sampling.temperature: 1.0 -> 0.5"]


def test_lock_names_the_holder_and_is_taken_over_after_its_death(tmp_path):
    from thresher.lock import run_lock

    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from thresher.lock import run_lock\n"
                                "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)"),
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        taken = rf"another thresher process \(PID {holder.pid}\) is writing this run"
        with pytest.raises(UserError, match=taken), run_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path) as path:  # the holder died (SIGKILL): its lock is taken over
        assert path.read_text().strip() == str(os.getpid())


def _cli(*args: str, **kw: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "thresher", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_two_concurrent_samplers_one_works_the_other_exits_2(tiny_lm, tmp_path):
    from thresher.prompts.arithmetic import arithmetic_suite
    from thresher.records import Candidate, write_jsonl
    from thresher.store import read_records

    write_jsonl(tmp_path / "p.jsonl", arithmetic_suite("train", 6, seed=0))
    args = ["sample", "--prompts", str(tmp_path / "p.jsonl"), "--model", f"t={tiny_lm}", "--n", "2",
            "--backend", "hf", "--max-tokens", "6", "--seed", "0", "--chunk-size", "1", "--run", str(tmp_path / "run")]
    first = _cli(*args)
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / ".lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = _cli(*args)
    err2 = second.communicate(timeout=300)[1]
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert second.returncode == 2 and "Traceback" not in err2
    assert err2.strip().splitlines()[-1].startswith(
        f"thresher sample: error: {tmp_path / 'run'}: another thresher process (PID {first.pid}) is writing this run"
    )
    ids = [c.id for c in read_records(tmp_path / "run" / "round_1" / "candidates", Candidate)]
    assert len(ids) == len(set(ids)) == 12


def test_judge_outside_candidates_then_export_writes_honest_pairs(tmp_path):
    """`judge --prompts P --candidates C --run RUN` records them in the round, so `export --run RUN` works."""
    from thresher.cli import main
    from thresher.records import Candidate, Prompt, read_jsonl, write_jsonl

    prompts = [Prompt.create("add", [{"role": "user", "content": f"What is {i} + {i}?"}], reference=str(2 * i))
               for i in range(1, 5)]
    cands = []
    for p in prompts:
        n = int(p.reference)
        for j, answer in enumerate([n, n + 1, n, n - 1]):
            cands.append(Candidate(p.id, "m", j, f"Adding gives {answer}. The answer is {answer}." + " ok" * j))
    write_jsonl(tmp_path / "p.jsonl", prompts)
    write_jsonl(tmp_path / "c.jsonl", cands)
    run = tmp_path / "run"
    assert main(["judge", "--prompts", str(tmp_path / "p.jsonl"), "--candidates", str(tmp_path / "c.jsonl"),
                 "--judge", "math", "--run", str(run), "--quiet"]) == 0
    assert main(["export", "--run", str(run), "--dpo", "best-vs-worst", "--policy", "best", "--quiet"]) == 0
    pairs = list(read_jsonl(run / "round_1" / "dpo.jsonl"))
    assert len(pairs) == 4
    for row in pairs:
        ref = next(p.reference for p in prompts if p.id == row["prompt_id"])
        assert f"The answer is {ref}." in row["chosen"][0]["content"]
        assert f"The answer is {ref}." not in row["rejected"][0]["content"]
        assert row["chosen_score"] == 1.0 and row["rejected_score"] == 0.0
