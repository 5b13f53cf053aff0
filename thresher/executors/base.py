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

One bad item must not end a job (one over-long prompt, one answer that
crashes a parser): a task with `on_item_error` has its failing chunks split
in halves (`split`) down to the single items that fail, and each of those
gets the hook's error records as its result (`run_isolating`, the same in
every executor). Results are lists, so the halves' results concatenate.
A worker that can no longer work at all (a dead engine) is not an item's
fault: `run` raises `WorkerLost`, and the executor builds a fresh worker and
retries the chunk, as if the worker had died.
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
    """`model`: `resources.replicas` workers each hold a loaded model; `cpu`: one worker per
    `resources.num_cpus` CPUs of the cluster (verifiers), spread over its nodes."""
    on_item_error: Callable[[C, str], R] | None = None
    """`on_item_error(chunk_of_one_item, error_text)`: the result for one item whose `run` raised
    (candidates or verdicts recording the error), so the rest of its chunk is kept. Results must
    then be lists (halves concatenate). Without it, an error fails the stage."""
    split: Callable[[C], Sequence[C]] | None = None
    """Halves of a chunk, or nothing for a chunk of one item (default: halves of a list or tuple)."""


class ChunkFailed(UserError):
    """A chunk failed on every retry; the message names the task and the chunk."""


class WorkerLost(RuntimeError):
    """Raised by a task's `run` when its worker is broken for good (a dead engine): rebuild and retry."""


def error_text(e: BaseException) -> str:
    """One line for an error record: the exception's type and the first line of its message."""
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0]}" if msg else type(e).__name__


def halves(chunk: Any) -> list[Any]:
    """The default `split`: a list or tuple cut in two; nothing for one item."""
    items = list(chunk)
    if len(items) <= 1:
        return []
    mid = len(items) // 2
    return [items[:mid], items[mid:]]


def run_isolating(task: ChunkTask[W, C, R], worker: W, chunk: C) -> R:
    """`task.run(worker, chunk)`; with `on_item_error`, a failing chunk is split down to its failing items.

    Halving finds k bad items among n in about k * log2(n) extra runs, and a
    chunk that failed only because it was too big (out of memory) succeeds
    in halves. Not isolated: `WorkerLost` (the worker, not an item, failed)
    and `UserError` (a setting or the environment is wrong, an unreachable
    server: every item would fail the same way, so the stage stops and says so).
    """
    try:
        return task.run(worker, chunk)
    except (WorkerLost, UserError):
        raise
    except Exception as e:
        if task.on_item_error is None:
            raise
        parts = (task.split or halves)(chunk)
        if not parts:
            return task.on_item_error(chunk, error_text(e))
        out: list[Any] = []
        for part in parts:
            out.extend(run_isolating(task, worker, part))  # type: ignore[call-overload]
        return out  # type: ignore[return-value]


def describe_chunk(chunk: Any, index: int, total: int) -> str:
    """`chunk 3/12 (256 items: p1f3.. to 9ac0..)`: where a failure happened, in words a user can search for.

    A stage's chunk record (`SampleChunk`, `JudgeChunk`) is named by its prompts.
    """
    prompts = getattr(chunk, "prompts", None)
    try:
        items = list(prompts if prompts is not None else chunk)
    except TypeError:
        return f"chunk {index + 1}/{total}"

    def ident(item: Any) -> str | None:
        if isinstance(item, (tuple, list)) and item:
            item = item[0]
        value = getattr(item, "id", None)
        return str(value) if value is not None else None

    ids = [i for i in (ident(items[0]), ident(items[-1])) if i] if items else []
    span = f": {ids[0]} to {ids[-1]}" if len(ids) == 2 and len(items) > 1 else (f": {ids[0]}" if ids else "")
    return f"chunk {index + 1}/{total} ({len(items)} item{'s' if len(items) != 1 else ''}{span})"


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
    """Ray: `auto` (the cluster this machine belongs to), `HOST:PORT`, `ray://HOST:PORT` (Ray Client), or None:
    `RAY_ADDRESS` if set, else a new local cluster."""
    max_retries: int = 3
    """Times a chunk is retried after its worker or node died (or raised `WorkerLost`), before the
    stage fails naming it."""
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

        return LocalExecutor(max_retries=cfg.max_retries)
    try:
        from thresher.executors.ray import RayExecutor
    except ImportError as e:
        raise UserError(f"executor.type ray needs Ray: pip install 'thresher[ray]' ({e})") from None
    return RayExecutor(cfg)
