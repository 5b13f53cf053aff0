"""`thresher sample` killed with SIGKILL mid-run and started again finishes exactly, without redoing work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thresher.prompts.arithmetic import arithmetic_suite
from thresher.records import Candidate, parse_line, write_jsonl
from thresher.store import ShardedJsonl


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


@pytest.mark.slow
def test_sigkill_then_rerun_gives_prompts_times_sum_n_without_duplicates(tiny_lm: Path, tmp_path: Path):
    prompts = arithmetic_suite("train", 12, seed=0)
    write_jsonl(tmp_path / "p.jsonl", prompts)
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "thresher",
        "sample",
        "--prompts",
        str(tmp_path / "p.jsonl"),
        "--model",
        f"teacher={tiny_lm}",
        "--student",
        f"student={tiny_lm}",
        "--n",
        "2",
        "--backend",
        "hf",
        "--max-tokens",
        "8",
        "--seed",
        "0",
        "--chunk-size",
        "1",
        "--run",
        str(run),
        "--quiet",
    ]
    first_shard = run / "round_1" / "candidates" / "shard-teacher-00000.jsonl"
    # One thread per process: small generate calls on a busy machine otherwise wait on OpenMP barriers.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    log = tmp_path / "first.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    deadline = time.monotonic() + 240
    while len(_lines(first_shard)) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    at_kill = first_shard.read_bytes()
    whole = at_kill[: at_kill.rfind(b"\n") + 1]  # the records that were fully written
    done_before = {parse_line(line, first_shard, 0, Candidate).id for line in whole.decode().splitlines()}
    expected = 12 * (2 + 2)
    assert 4 <= len(done_before) < expected  # killed midway, after some chunks were durable
    assert not json.loads((run / "round_1" / ".stages" / "sample.json").read_text())["finished"]

    again = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr

    cands = list(ShardedJsonl(run / "round_1" / "candidates", Candidate))
    ids = [c.id for c in cands]
    assert len(ids) == expected
    assert len(set(ids)) == expected
    assert set(ids) == {f"{p.id}/{m}/{i}" for p in prompts for m in ("teacher", "student") for i in range(2)}
    # The shard written before the kill is untouched (only a torn last line may have been cut) ...
    assert first_shard.read_bytes() == whole
    # ... and the rerun wrote only what was missing, into new shards.
    later = [c.id for c in cands if c.id not in done_before]
    assert len(later) == expected - len(done_before)
    marker = json.loads((run / "round_1" / ".stages" / "sample.json").read_text())
    assert marker["finished"] and marker["summary"]["candidates"] == expected
