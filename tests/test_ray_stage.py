"""The sample and judge stages on a real two-node Ray cluster: the same files as local, and a killed
driver's rerun that samples only the chunks that are missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thresher.config import JudgeConfig, ModelConfig
from thresher.executors import LocalExecutor, Resources
from thresher.records import Candidate, Prompt, Verdict, write_jsonl
from thresher.sampling import SamplingParams
from thresher.store import read_records

pytestmark = pytest.mark.slow

QUESTIONS = [f"What is {a} + {b}?" for a, b in [(2, 2), (13, 29), (7, 5), (40, 2), (11, 11), (99, 1), (3, 4), (8, 8)]]
QUESTIONS += ["Name a prime.", "Spell 'seven' backwards.", "Is 91 a prime number? Explain.", "Count to five."]


def _prompts() -> list[Prompt]:
    return [Prompt.create("arith", [{"role": "user", "content": q}], reference=q.split()[-1].strip("?"))
            for q in QUESTIONS]


def _model(tiny_lm: Path) -> ModelConfig:
    return ModelConfig(name="tiny", path=str(tiny_lm), backend="hf", n=3, args={"batch_size": 4},
                       sampling=SamplingParams(temperature=1.0, max_tokens=16, seed=5),
                       resources=Resources(replicas=2, num_cpus=1))


def _texts(candidates_dir: Path) -> dict[str, str]:
    cands = list(read_records(candidates_dir, Candidate))
    texts = {c.id: c.text for c in cands}
    assert len(texts) == len(cands)  # no candidate written twice
    return texts


def test_sample_and_judge_stages_on_ray_write_what_local_writes(ray_executor, tiny_lm: Path, tmp_path: Path):
    from thresher.judges.stage import judge_stage
    from thresher.sampling.stage import sample_stage

    prompts, model = _prompts(), _model(tiny_lm)
    judges = [JudgeConfig(type="math", args={"workers": 1})]
    out = {}
    for name, executor, chunk in (("ray", ray_executor, 2), ("local", LocalExecutor(), 5)):
        rd = tmp_path / name / "round_1"
        summary = sample_stage(prompts, [model], rd / "candidates", progress=False, chunk_size=chunk,
                               executor=executor)
        assert summary["candidates"] == 12 * 3 and summary["this_run"]["candidates"] == 36
        verdicts = judge_stage(prompts, rd / "candidates", judges, rd / "verdicts", progress=False, chunk_size=3,
                               executor=executor)
        assert verdicts["judges"]["math"]["verdicts"] == 36 and verdicts["judges"]["math"]["errors"] == 0
        out[name] = rd
    # Other chunk sizes, other replicas: the same answers (each answer has its own seeded stream).
    assert _texts(out["ray"] / "candidates") == _texts(out["local"] / "candidates")

    def verdict_map(rd: Path) -> dict[str, tuple]:
        return {v.candidate_id: (v.score, v.correct, v.critique) for v in read_records(rd / "verdicts", Verdict)}

    assert verdict_map(out["ray"]) == verdict_map(out["local"])


def test_a_killed_driver_reruns_only_the_missing_chunks(ray_cluster, ray_executor, tiny_lm: Path, tmp_path: Path):
    """SIGKILL the `thresher sample --executor ray` driver half way; the same command then samples only the rest."""
    from thresher.sampling.stage import sample_stage

    prompts, model = _prompts(), _model(tiny_lm)
    write_jsonl(tmp_path / "prompts.jsonl", prompts)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "thresher.cli", "sample", "--prompts", str(tmp_path / "prompts.jsonl"),
           "--model", f"tiny={tiny_lm}", "--backend", "hf", "--n", "3", "--max-tokens", "16", "--seed", "5",
           "--model-arg", "batch_size=4", "--chunk-size", "1", "--run", str(run), "--executor", "ray", "--quiet"]
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.address}
    candidates = run / "round_1" / "candidates"

    def on_disk() -> int:
        return sum(1 for _ in read_records(candidates, Candidate)) if candidates.is_dir() else 0

    driver = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while on_disk() < 3 * 3 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert driver.poll() is None, f"the driver ended before it was killed:\n{driver.stdout.read().decode()}"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    before = on_disk()
    assert 9 <= before < 36 and before % 3 == 0  # whole chunks only: a chunk is written in one flush

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    marker = json.loads((run / "round_1" / ".stages" / "sample.json").read_text())
    assert marker["finished"] and marker["summary"]["this_run"]["candidates"] == 36 - before
    resumed = _texts(candidates)
    assert len(resumed) == 36

    straight = sample_stage(prompts, [model], tmp_path / "straight" / "round_1" / "candidates", progress=False,
                            executor=LocalExecutor())
    assert straight["candidates"] == 36
    assert resumed == _texts(tmp_path / "straight" / "round_1" / "candidates")
