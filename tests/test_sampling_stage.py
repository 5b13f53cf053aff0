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
from thresher.sampling import SamplingParams, build_sampler, sample_stage
from thresher.store import ShardedJsonl


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
    assert (tmp_path / "cand" / ".complete").is_file()


def test_complete_stage_skips_without_loading_a_model(tiny_lm: Path, tmp_path: Path):
    prompts = arithmetic_suite("train", 3, seed=0)
    models = _pool(tiny_lm)[:1]
    first = sample_stage(prompts, models, tmp_path / "cand", progress=False)
    shard = (tmp_path / "cand" / "shard-00000.jsonl").read_bytes()
    # Same prompts and pool, but the model path now points nowhere: a skip must not even look.
    gone = [ModelConfig(name="teacher", path=str(tmp_path / "gone"), backend="hf", n=2)]
    assert sample_stage(prompts, gone, tmp_path / "cand", progress=False) == first
    assert (tmp_path / "cand" / "shard-00000.jsonl").read_bytes() == shard


def test_complete_stage_asked_for_other_work_is_an_error(tiny_lm: Path, tmp_path: Path):
    prompts = arithmetic_suite("train", 3, seed=0)
    sample_stage(prompts, _pool(tiny_lm)[:1], tmp_path / "cand", progress=False)
    with pytest.raises(UserError, match="already holds finished sampling of other prompts or models"):
        sample_stage(prompts[:2], _pool(tiny_lm)[:1], tmp_path / "cand", progress=False)


def test_resume_samples_only_the_missing_indices(tiny_lm: Path, tmp_path: Path):
    """A shard cut short mid-prompt (as a kill leaves it) is completed, and nothing on disk is redone."""
    prompts = arithmetic_suite("train", 4, seed=0)
    models = _pool(tiny_lm)
    out = tmp_path / "cand"
    sample_stage(prompts, models, out, progress=False)
    shard = out / "shard-00000.jsonl"
    lines = shard.read_bytes().splitlines(keepends=True)
    kept = lines[:7] + [lines[7][:25]]  # 7 whole records, then a torn one, no .complete
    shard.write_bytes(b"".join(kept))
    (out / ".complete").unlink()
    before = {c.id: c.text for c in _read(out)}
    assert len(before) == 7

    summary = sample_stage(prompts, models, out, progress=False)
    after = _read(out)
    assert len(after) == 4 * 5 == summary["candidates"]
    assert len({c.id for c in after}) == 20
    assert shard.read_bytes() == b"".join(lines[:7])  # the earlier shard is left as it was (repaired tail)
    new_shards = ShardedJsonl(out, Candidate).shard_paths()[1:]
    new = [parse_line(line, p, 0, Candidate) for p in new_shards for line in p.read_text().splitlines()]
    assert {c.id for c in new}.isdisjoint(before)
    # Lines 0-6 hold teacher answers 0-1 of prompts 0-2 and answer 0 of prompt 3; the torn line was
    # prompt 3's answer 1. The rerun draws exactly that one, then all 12 student answers.
    assert sorted(c.id for c in new) == sorted(
        [f"{prompts[3].id}/teacher/1"] + [f"{p.id}/student/{i}" for p in prompts for i in range(3)]
    )
    assert {c.id: c.text for c in after if c.id in before} == before


def test_resume_fills_holes_anywhere_and_keeps_every_other_record(tiny_lm: Path, tmp_path: Path):
    prompts = arithmetic_suite("train", 4, seed=0)
    models = _pool(tiny_lm)[:1]
    out = tmp_path / "cand"
    sample_stage(prompts, models, out, progress=False)
    shard = out / "shard-00000.jsonl"
    holes = {f"{prompts[0].id}/teacher/1", f"{prompts[2].id}/teacher/1", f"{prompts[1].id}/teacher/0"}
    kept = [
        ln for ln in shard.read_text().splitlines(keepends=True) if parse_line(ln, shard, 0, Candidate).id not in holes
    ]
    shard.write_text("".join(kept))
    (out / ".complete").unlink()
    before = {c.id: c.text for c in _read(out)}

    sample_stage(prompts, models, out, progress=False)
    after = {c.id: c.text for c in _read(out)}
    assert len(after) == 8 and set(after) - set(before) == holes
    assert {k: after[k] for k in before} == before


def test_build_sampler_rejects_unknown_backend_args(tiny_lm: Path):
    from thresher.errors import ConfigError

    model = ModelConfig(name="t", path=str(tiny_lm), backend="hf", args={"batchsize": 4})
    with pytest.raises(ConfigError, match=r"models\[t\]\.args\.batchsize: unknown argument for HFSampler"):
        build_sampler(model)


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
        "--out",
        str(tmp_path / "run"),
    ]
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    assert "sampled 12 candidates for 3 prompts" in r.stderr
    cands = _read(tmp_path / "run" / "candidates")
    assert Counter(c.model for c in cands) == {"t": 6, "lm": 6}
    assert (tmp_path / "run" / "prompts.jsonl").read_text().count("\n") == 3
    again = _cli(*args)
    assert again.returncode == 0 and "sample t" not in again.stderr  # complete: no model loaded
    assert len(_read(tmp_path / "run" / "candidates")) == 12


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
