"""The run store keeps every completed record across a SIGKILL and discards only a torn last line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from thresher.errors import RecordError
from thresher.records import Candidate
from thresher.store import RunDir, ShardedJsonl, read_records, repair_tail


def _cands(prompt, n, model="m"):
    return [Candidate(prompt, model, i, f"answer {i} " * 20) for i in range(n)]


def test_writer_rotates_shards_and_reads_back_in_order(tmp_path):
    shards = ShardedJsonl(tmp_path / "c", Candidate, shard_size=5)
    with shards.writer() as w:
        for p in range(4):
            w.write_many(_cands(f"p{p}", 3))
    assert len(shards.shard_paths()) == 3
    got = list(shards)
    assert [c.id for c in got] == [c.id for p in range(4) for c in _cands(f"p{p}", 3)]
    assert shards.done(lambda c: c.prompt_id, 3) == {"p0", "p1", "p2", "p3"}


def test_torn_last_line_is_cut_and_complete_records_kept(tmp_path):
    shards = ShardedJsonl(tmp_path / "c", Candidate)
    with shards.writer() as w:
        w.write_many(_cands("p0", 4))
    path = shards.shard_paths()[0]
    with open(path, "a") as f:
        f.write('{"prompt_id": "p1", "model": "m", "ind')  # the kill came mid-line
    reopened = ShardedJsonl(tmp_path / "c", Candidate)
    assert reopened.repaired_bytes > 0
    assert [c.index for c in reopened] == [0, 1, 2, 3]
    # a resumed writer appends to a new shard; the old one is not rewritten
    with reopened.writer() as w:
        w.write_many(_cands("p1", 2))
    assert len(reopened.shard_paths()) == 2
    assert reopened.counts(lambda c: c.prompt_id) == {"p0": 4, "p1": 2}


def test_whole_last_record_without_newline_is_kept(tmp_path):
    path = tmp_path / "shard-00000.jsonl"
    rec = json.dumps({"prompt_id": "p", "model": "m", "index": 0, "text": "x"})
    path.write_text(rec + "\n" + rec.replace('"index": 0', '"index": 1'))
    assert repair_tail(path) == 0
    assert path.read_text().endswith("}\n")
    assert len(list(read_records(tmp_path, Candidate))) == 2


def test_damage_in_the_middle_is_an_error_not_a_silent_drop(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    good = json.dumps({"prompt_id": "p", "model": "m", "index": 0, "text": "x"})
    (d / "shard-00000.jsonl").write_text(f"{good}\nnot json\n{good}\n")
    with pytest.raises(RecordError, match=r"shard-00000.jsonl:2: invalid JSON"):
        list(ShardedJsonl(d, Candidate))


WRITER = textwrap.dedent(
    """
    import sys
    from thresher.records import Candidate
    from thresher.store import ShardedJsonl
    shards = ShardedJsonl(sys.argv[1], Candidate, shard_size=50)
    w = shards.writer()
    for p in range(10**6):
        w.write_many(Candidate(f"p{p}", "m", i, "x" * 300) for i in range(4))
        if p == 20:
            print("ready", flush=True)
    """
)


def test_resume_after_sigkill_mid_write(tmp_path):
    out = tmp_path / "cands"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    shards = ShardedJsonl(out, Candidate)
    records = list(shards)
    assert len(records) >= 84
    assert len({c.id for c in records}) == len(records)  # no duplicates
    counts = shards.counts(lambda c: c.prompt_id)
    done = shards.done(lambda c: c.prompt_id, 4)
    # every prompt but possibly the last one written is complete, in order
    partial = set(counts) - done
    assert len(partial) <= 1
    n_done = len(done)
    assert done == {f"p{p}" for p in range(n_done)}
    # resume: finish the partial prompt's missing candidates and a few more prompts
    have = {c.id for c in records}
    with shards.writer() as w:
        for p in range(n_done, n_done + 3):
            w.write_many(c for c in (Candidate(f"p{p}", "m", i, "x" * 300) for i in range(4)) if c.id not in have)
    final = ShardedJsonl(out, Candidate)
    ids = [c.id for c in final]
    assert len(ids) == len(set(ids)) == 4 * (n_done + 3)


def test_parts_and_run_dir_layout(tmp_path):
    run = RunDir(tmp_path / "runs" / "demo")
    r1 = run.round(1)
    shards = ShardedJsonl(r1.candidates, Candidate)
    with shards.writer("teacher") as w:
        w.write_many(_cands("p", 2))
    with shards.writer("student/7b") as w:  # a name that cannot stand in a file name as it is
        w.write_many(_cands("q", 3))
    assert [p.name for p in shards.shard_paths("teacher")] == ["shard-teacher-00000.jsonl"]
    assert len(list(ShardedJsonl(r1.candidates, Candidate))) == 5
    assert shards.drop("student/7b") == 1
    assert [c.prompt_id for c in ShardedJsonl(r1.candidates, Candidate)] == ["p", "p"]
    assert r1.marker("judge") == r1.path / ".stages" / "judge.json"
    run.round(0).path.mkdir(parents=True)
    assert [r.index for r in run.rounds()] == [0, 1]
    assert r1.sft.name == "sft.jsonl" and r1.eval.name == "eval.json" and r1.model.name == "model"


def test_metrics_rows_are_replaced_not_duplicated(tmp_path):
    run = RunDir(tmp_path)
    run.append_metrics([{"round": 0, "task": "add", "metric": "pass@1", "value": 0.1}])
    run.append_metrics([{"round": 0, "task": "add", "metric": "pass@1", "value": 0.2},
                        {"round": 1, "task": "add", "metric": "pass@1", "value": 0.4}])
    rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert rows == [{"round": 0, "task": "add", "metric": "pass@1", "value": 0.2},
                    {"round": 1, "task": "add", "metric": "pass@1", "value": 0.4}]
