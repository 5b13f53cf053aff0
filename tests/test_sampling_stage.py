"""The resumable sampling stage with the transformers backend: counts, resume, skip, errors, CLI."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from thresher.config import ModelConfig
from thresher.errors import UserError
from thresher.prompts.arithmetic import arithmetic_suite
from thresher.records import Candidate, parse_line, write_jsonl
from thresher.sampling import SamplingParams, sample_stage
from thresher.store import ShardedJsonl


def unfinish(marker: Path) -> None:
    """Make a stage marker look as a kill mid-stage leaves it: written before the work, nothing done."""
    import json

    data = json.loads(marker.read_text())
    data["finished"] = False
    for part in data["parts"].values():
        part["done"] = False
    marker.write_text(json.dumps(data))


def _pool(lm: Path) -> list[ModelConfig]:
    sampling = SamplingParams(temperature=1.0, max_tokens=6, seed=3)
    return [
        ModelConfig(name="teacher", path=str(lm), backend="hf", n=2, sampling=sampling),
        ModelConfig(name="student", path=str(lm), role="student", backend="hf", n=3, sampling=sampling),
    ]


def _read(out: Path) -> list[Candidate]:
    return list(ShardedJsonl(out, Candidate))


def test_stage_writes_prompts_times_sum_of_n_and_records_models(tiny_lm: Path, tmp_path: Path):
    prompts = arithmetic_suite("train", 6, seed=0)
    summary = sample_stage(prompts, _pool(tiny_lm), tmp_path / "cand", progress=False, chunk_size=4)
    cands = _read(tmp_path / "cand")
    assert len(cands) == 6 * (2 + 3)
    assert len({c.id for c in cands}) == len(cands)
    assert Counter(c.model for c in cands) == {"teacher": 12, "student": 18}
    assert {c.metadata["role"] for c in cands if c.model == "student"} == {"student"}
    assert {(c.prompt_id, c.model, c.index) for c in cands} == {
        (p.id, m, i) for p in prompts for m, n in (("teacher", 2), ("student", 3)) for i in range(n)
    }
    assert summary["candidates"] == 30
    assert summary["models"]["student"]["candidates"] == 18
    assert summary["tokens"] == sum(c.num_tokens for c in cands)
    assert summary["this_run"]["candidates"] == 30
    assert (tmp_path / ".stages" / "sample.json").is_file()


class _Untouchable:
    name = "teacher"

    def sample(self, prompts, params):
        raise AssertionError("a finished stage must not sample")


def test_complete_stage_skips_without_loading_a_model(tiny_lm: Path, tmp_path: Path):
    from thresher.sampling.stage import sample_outcome

    prompts = arithmetic_suite("train", 3, seed=0)
    models = _pool(tiny_lm)[:1]
    first = sample_stage(prompts, models, tmp_path / "cand", progress=False)
    shard = (tmp_path / "cand" / "shard-teacher-00000.jsonl").read_bytes()
    again = sample_outcome(prompts, models, tmp_path / "cand", {"teacher": _Untouchable()}, progress=False)
    assert again.skipped == ["teacher"] and not again.ran and again.summary == first
    assert (tmp_path / "cand" / "shard-teacher-00000.jsonl").read_bytes() == shard


def test_changed_request_resamples_only_what_changed(tiny_lm: Path, tmp_path: Path, capsys):
    """Other sampling settings for one model: that model's candidates are redone, the other's kept."""
    from dataclasses import replace

    from thresher.sampling.stage import sample_outcome

    prompts = arithmetic_suite("train", 3, seed=0)
    pool = _pool(tiny_lm)
    out = tmp_path / "cand"
    sample_stage(prompts, pool, out, progress=False)
    teacher = {c.id: c.text for c in _read(out) if c.model == "teacher"}
    hotter = [pool[0], replace(pool[1], sampling=replace(pool[1].sampling, temperature=0.5))]
    outcome = sample_outcome(prompts, hotter, out, progress=True)
    assert outcome.ran == ["student"] and outcome.skipped == ["teacher"]
    assert "sampling.temperature: 1.0 -> 0.5" in capsys.readouterr().err
    after = _read(out)
    assert len(after) == 15 and {c.id: c.text for c in after if c.model == "teacher"} == teacher
    fewer = sample_outcome(prompts[:2], hotter, out, progress=False)  # another prompt set: everything again
    assert sorted(fewer.ran) == ["student", "teacher"] and len(_read(out)) == 10


def test_resume_samples_only_the_missing_indices(tiny_lm: Path, tmp_path: Path):
    """A shard cut short mid-prompt (as a kill leaves it) is completed, and nothing on disk is redone."""
    prompts = arithmetic_suite("train", 4, seed=0)
    models = _pool(tiny_lm)
    out = tmp_path / "cand"
    sample_stage(prompts, models, out, progress=False)
    shard = out / "shard-teacher-00000.jsonl"
    lines = shard.read_bytes().splitlines(keepends=True)
    kept = lines[:7] + [lines[7][:25]]  # 7 whole records, then a torn one, as a kill leaves them
    shard.write_bytes(b"".join(kept))
    ShardedJsonl(out).drop("student")
    unfinish(tmp_path / ".stages" / "sample.json")
    before = {c.id: c.text for c in _read(out)}
    assert len(before) == 7

    summary = sample_stage(prompts, models, out, progress=False)
    after = _read(out)
    assert len(after) == 4 * 5 == summary["candidates"]
    assert len({c.id for c in after}) == 20
    assert shard.read_bytes() == b"".join(lines[:7])  # the earlier shard is left as it was (repaired tail)
    new_shards = [p for p in ShardedJsonl(out, Candidate).shard_paths() if p != shard]
    new = [parse_line(line, p, 0, Candidate) for p in new_shards for line in p.read_text().splitlines()]
    assert {c.id for c in new}.isdisjoint(before)
    # The 7 whole lines hold 3 prompts' two teacher answers and one answer of the 4th; the torn line
    # was that prompt's other answer. The rerun draws exactly that one, then all 12 student answers.
    torn = {f"{p.id}/teacher/{i}" for p in prompts for i in range(2)} - set(before)
    assert len(torn) == 1
    assert sorted(c.id for c in new) == sorted([*torn] + [f"{p.id}/student/{i}" for p in prompts for i in range(3)])
    assert {c.id: c.text for c in after if c.id in before} == before


def test_resume_fills_holes_anywhere_and_keeps_every_other_record(tiny_lm: Path, tmp_path: Path):
    prompts = arithmetic_suite("train", 4, seed=0)
    models = _pool(tiny_lm)[:1]
    out = tmp_path / "cand"
    sample_stage(prompts, models, out, progress=False)
    shard = out / "shard-teacher-00000.jsonl"
    holes = {f"{prompts[0].id}/teacher/1", f"{prompts[2].id}/teacher/1", f"{prompts[1].id}/teacher/0"}
    kept = [
        ln for ln in shard.read_text().splitlines(keepends=True) if parse_line(ln, shard, 0, Candidate).id not in holes
    ]
    shard.write_text("".join(kept))
    unfinish(tmp_path / ".stages" / "sample.json")
    before = {c.id: c.text for c in _read(out)}

    sample_stage(prompts, models, out, progress=False)
    after = {c.id: c.text for c in _read(out)}
    assert len(after) == 8 and set(after) - set(before) == holes
    assert {k: after[k] for k in before} == before


def test_build_sampler_rejects_unknown_backend_args(tiny_lm: Path):
    from thresher.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^args\.batchsize: unknown key \(expected one of: batch_size, device"):
        ModelConfig(name="t", path=str(tiny_lm), backend="hf", args={"batchsize": 4})


def test_duplicate_prompt_ids_are_an_error(tiny_lm: Path, tmp_path: Path):
    prompts = arithmetic_suite("train", 2, seed=0)
    with pytest.raises(UserError, match="appears twice"):
        sample_stage(prompts + prompts[:1], _pool(tiny_lm), tmp_path / "cand", progress=False)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "thresher", "sample", *args], check=False, capture_output=True, text=True, timeout=300
    )


def test_cli_bad_model_path_exits_2_with_one_line(tmp_path: Path):
    prompts = tmp_path / "p.jsonl"
    write_jsonl(prompts, arithmetic_suite("train", 2, seed=0))
    r = _cli(
        "--prompts", str(prompts), "--model", str(tmp_path / "nope"), "--backend", "hf", "--out", str(tmp_path / "run")
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"thresher sample: error: model path '{tmp_path / 'nope'}' does not exist"
    )


def test_cli_unreachable_server_exits_2_naming_it(tmp_path: Path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prompts = tmp_path / "p.jsonl"
    write_jsonl(prompts, arithmetic_suite("train", 2, seed=0))
    url = f"http://127.0.0.1:{port}/v1"
    r = _cli(
        "--prompts",
        str(prompts),
        "--model",
        "tiny",
        "--backend",
        "openai",
        "--base-url",
        url,
        "--model-arg",
        "max_retries=1",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    )
    assert r.returncode == 2
    assert f"cannot reach the OpenAI-compatible server at {url}" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_hf_run_and_rerun(tiny_lm: Path, tmp_path: Path):
    prompts = tmp_path / "p.jsonl"
    write_jsonl(prompts, arithmetic_suite("train", 3, seed=0))
    args = [
        "--prompts",
        str(prompts),
        "--model",
        f"t={tiny_lm}",
        "--student",
        str(tiny_lm),
        "--n",
        "2",
        "--backend",
        "hf",
        "--max-tokens",
        "4",
        "--run",
        str(tmp_path / "run"),
    ]
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    assert "sample: done in" in r.stderr and "12 candidates for 3 prompts" in r.stderr
    cands = _read(tmp_path / "run" / "round_1" / "candidates")
    assert Counter(c.model for c in cands) == {"t": 6, "lm": 6}
    assert (tmp_path / "run" / "round_1" / "prompts.jsonl").read_text().count("\n") == 3
    again = _cli(*args)
    assert again.returncode == 0 and "sample t" not in again.stderr  # complete: no model loaded
    assert "sample: complete already, skipped" in again.stderr
    assert len(_read(tmp_path / "run" / "round_1" / "candidates")) == 12
    hotter = _cli(*args, "--temperature", "0.5")  # another request: resampled, and said so
    assert hotter.returncode == 0 and "sampling.temperature: 1.0 -> 0.5" in hotter.stderr


@pytest.mark.slow
def test_cli_from_a_recipe(tiny_lm: Path, tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"""
name: pool
out_dir: {tmp_path / "runs"}
prompts:
  train: {{source: arithmetic, count: 3}}
models:
  - {{name: teacher, path: {tiny_lm}, backend: hf, n: 2, sampling: {{max_tokens: 4, seed: 0}}}}
  - {{name: student, path: {tiny_lm}, role: student, backend: hf, n: 1, sampling: {{max_tokens: 4}}}}
judges: [{{type: math}}]
""",
        encoding="utf-8",
    )
    r = _cli("--recipe", str(recipe), "--set", "models[1].n=3", "--no-progress")
    assert r.returncode == 0, r.stderr
    cands = _read(tmp_path / "runs" / "pool" / "round_1" / "candidates")
    assert Counter(c.model for c in cands) == {"teacher": 6, "student": 9}
