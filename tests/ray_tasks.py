"""Chunk tasks the executor tests ship to Ray workers, built from thresher's real builders.

Module-level functions (and `functools.partial` of them), so they pickle by
reference: the test cluster's nodes have this directory on their PYTHONPATH.
"""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from thresher.config import JudgeConfig, ModelConfig
from thresher.executors import ChunkTask, Resources, WorkerLost
from thresher.judges.base import close_judge
from thresher.judges.registry import build_judge
from thresher.records import Candidate, Prompt, Verdict
from thresher.sampling.pool import build_sampler, close_sampler
from thresher.sampling.stage import model_params


def sample_chunk(model: ModelConfig, sampler: Any, prompts: list[Prompt]) -> list[list[Candidate]]:
    """One chunk of sampling: every prompt's n candidates, in prompt order."""
    return sampler.sample(prompts, model_params(model))


def sample_chunk_rejecting(model: ModelConfig, sampler: Any, prompts: list[Prompt]) -> list[list[Candidate]]:
    """Like `sample_chunk`, but the whole call fails when one prompt is one the engine rejects.

    The stand-in for vLLM refusing a prompt longer than the model's context:
    one bad prompt fails the whole batch it is in, as engines do.
    """
    bad = [p.id for p in prompts if p.metadata.get("reject")]
    if bad:
        raise ValueError(f"prompt {bad[0]} is longer than the model's context")
    return sample_chunk(model, sampler, prompts)


def error_candidates(model: ModelConfig, prompt: Prompt, error: str) -> list[Candidate]:
    """A prompt the engine failed on: its n candidates record the error instead of an answer."""
    return [
        Candidate(prompt.id, model.name, i, "", num_tokens=0, finish_reason="error", metadata={"error": error})
        for i in range(model.n)
    ]


_MET: set[str] = set()


def meet(barrier_dir: str, parties: int, timeout: float = 300.0) -> None:
    """Wait (once per process) until `parties` processes have reached this point.

    Replicas finish building at different times (importing torch takes half
    a minute on a busy CPU), and the first one built would otherwise do all
    of a small test's work: the tests that check the work was spread meet here.
    """
    if barrier_dir in _MET:
        return
    folder = Path(barrier_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + timeout
    while len(list(folder.iterdir())) < parties and time.monotonic() < deadline:
        time.sleep(0.1)
    _MET.add(barrier_dir)


def with_pid(run: Any, worker: Any, chunk: Any, barrier: tuple[str, int] | None = None) -> tuple[tuple[int, str], Any]:
    """A run that also says which process (which replica) on which Ray node computed the chunk."""
    import ray

    if barrier is not None:
        meet(*barrier)
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    return (os.getpid(), node), run(worker, chunk)


def sampling_task(
    model: ModelConfig, replicas: int = 2, tag_pid: bool = False, barrier: tuple[str, int] | None = None
) -> ChunkTask:
    run = partial(sample_chunk, model)
    return ChunkTask(
        name=f"sample {model.name}",
        build=partial(build_sampler, model),
        run=partial(with_pid, run, barrier=barrier) if tag_pid else run,
        close=close_sampler,
        resources=Resources(replicas=replicas, num_cpus=1),
    )


def judge_chunk(judge: Any, items: list[tuple[Prompt, list[Candidate]]]) -> list[list[Verdict]]:
    """One chunk of judging: each prompt with all its candidates."""
    return judge.judge([p for p, _ in items], [cs for _, cs in items])


def judging_task(cfg: JudgeConfig, tag_pid: bool = False, barrier: tuple[str, int] | None = None) -> ChunkTask:
    return ChunkTask(
        name=f"judge {cfg.name or cfg.type}",
        build=partial(build_judge, cfg),
        run=partial(with_pid, judge_chunk, barrier=barrier) if tag_pid else judge_chunk,
        close=close_judge,
        kind="cpu",
        resources=Resources(num_cpus=1),
    )


def build_counter(marker_dir: str) -> dict[str, Any]:
    """A cheap worker for fault tests: remembers where its markers go."""
    return {"dir": Path(marker_dir)}


def run_losing_worker_once(worker: dict[str, Any], chunk: list[int]) -> list[int]:
    """Say the worker broke the first time a chunk runs (a dead engine), then compute it."""
    marker = worker["dir"] / f"lost-{chunk[0]}"
    if not marker.exists():
        marker.touch()
        raise WorkerLost("engine died")
    return [x * x for x in chunk]


def run_always_losing_worker(worker: dict[str, Any], chunk: list[int]) -> list[int]:
    raise WorkerLost("engine died again")
