"""The executor contract: a stage's chunked work, and where it runs.

A `ChunkTask` is what a stage asks for: `build()` makes the heavy thing a
worker holds (a sampler with its engine, a judge with its model or worker
pool) once per replica, `run(worker, chunk)` computes one chunk with it, and
`close(worker)` frees it. All three must be picklable (module-level
functions or `functools.partial` of them), so a Ray executor can ship them to
actors on other nodes; the local executor simply calls them in turn.

`Executor.map(task, chunks)` yields `(chunk, result)` pairs as chunks finish,
in any order; the driver writes each result as it arrives, so a kill loses
at most the chunks in flight. An executor retries a chunk whose worker died
(bounded) and raises `ChunkFailed` naming the chunk when retries run out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from thresher.errors import ConfigError, UserError

C = TypeVar("C")
R = TypeVar("R")
W = TypeVar("W")


@dataclass(slots=True)
class Resources:
    """What one replica of a worker needs, and how many replicas to run (Ray only; local runs one)."""

    replicas: int = 1
    num_gpus: float = 0.0
    num_cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ConfigError("replicas", f"must be at least 1, got {self.replicas}")
        if self.num_gpus < 0:
            raise ConfigError("num_gpus", f"must be >= 0, got {self.num_gpus}")
        if self.num_cpus < 0:
            raise ConfigError("num_cpus", f"must be >= 0, got {self.num_cpus}")


@dataclass(slots=True)
class ChunkTask(Generic[W, C, R]):
    """One stage's unit of distributed work: build a worker, run chunks on it, close it."""

    name: str
    """Shown in progress bars and errors: `sample teacher`, `judge math`."""
    build: Callable[[], W]
    run: Callable[[W, C], R]
    close: Callable[[W], None] | None = None
    resources: Resources = field(default_factory=Resources)
    kind: Literal["model", "cpu"] = "model"
    """`model`: a replica holds a loaded model (an actor on Ray); `cpu`: stateless-ish CPU work (tasks on Ray)."""


class ChunkFailed(UserError):
    """A chunk failed on every retry; the message names the task and the chunk."""


class Executor(Protocol):
    """Runs a task's chunks somewhere and yields `(chunk, result)` as each finishes."""

    name: str

    def map(self, task: ChunkTask[Any, C, R], chunks: Sequence[C]) -> Iterator[tuple[C, R]]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class ExecutorConfig:
    """`executor:` in a recipe (`--executor` on the command line)."""

    type: Literal["local", "ray"] = "local"
    address: str | None = None
    """Ray: `auto` (a running cluster), `ray://host:port`, or None to start a local one."""
    max_retries: int = 3
    """Ray: times a chunk is retried after its worker or node died, before the stage fails naming it."""
    chunk_size: int | None = None
    """Prompts per chunk (default: the stage's own)."""
    args: dict[str, Any] = field(default_factory=dict)
    """Ray: extra `ray.init` options (runtime_env, namespace, ...)."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError("max_retries", f"must be >= 0, got {self.max_retries}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ConfigError("chunk_size", f"must be at least 1, got {self.chunk_size}")


def build_executor(cfg: ExecutorConfig | None = None) -> Executor:
    """The executor a config names (local when None)."""
    cfg = cfg or ExecutorConfig()
    if cfg.type == "local":
        from thresher.executors.local import LocalExecutor

        return LocalExecutor()
    try:
        from thresher.executors.ray import RayExecutor
    except ImportError as e:
        raise UserError(f"executor.type ray needs Ray: pip install 'thresher[ray]' ({e})") from None
    return RayExecutor(cfg)
