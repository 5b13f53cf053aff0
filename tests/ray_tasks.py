"""Helpers the executor tests ship to Ray workers along with the stages' own chunk tasks.

Module-level functions (and `functools.partial` of them), so they pickle by
reference: the test cluster's nodes have this directory on their PYTHONPATH.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from thresher.executors import WorkerLost

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


def rejecting(run: Any, worker: Any, chunk: Any) -> Any:
    """`run`, except that the whole call fails when one of the chunk's prompts is marked `reject`.

    The stand-in, on the transformers backend, for an engine refusing a
    prompt longer than its context: one bad prompt fails the batch it is in.
    """
    bad = [p.id for p in chunk.prompts if p.metadata.get("reject")]
    if bad:
        raise ValueError(f"prompt {bad[0]} is longer than the model's context")
    return run(worker, chunk)


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
