"""The Ray executor: a stage's chunks run on replicas spread over a Ray cluster.

Each replica is a Ray actor holding one built worker (`task.build()`: a vLLM
engine with its own tensor_parallel_size, a transformers model, a reward
model, a math verifier's process pool), built once and reused for every
chunk it gets. How many replicas:

- `kind="model"`: `task.resources.replicas`, each asking for `num_gpus` and
  `num_cpus` (one model per GPU, or a share of one);
- `kind="cpu"` (math and code verifiers): one per `num_cpus` CPUs of every
  node, so the work covers the whole cluster.

Replicas are placed with Ray's SPREAD strategy. Chunks go out in the
caller's order (the stage sorts them longest first), one at a time to
whichever replica is idle, and results come back to the driver as they
finish, so the driver writes each finished chunk as one durable shard.

Faults: a replica whose process or node dies mid-chunk is replaced (Ray
places the new one wherever there is room) and its chunk goes back to the
front of the queue; a chunk that loses its replica more than `max_retries`
times fails the stage with `ChunkFailed` naming it. A task's own errors are
isolated per item inside the replica (`run_isolating`), so one bad prompt
becomes one error record; without `on_item_error` a task error ends the
stage (a `UserError` as itself, anything else as `ChunkFailed` naming the
chunk).

Why actors and not Ray Data (`ray.data.llm`): the stage runner must write each
finished chunk on the driver as a durable shard and, on a rerun, schedule
only the chunks that are missing. A Ray Data pipeline owns its own reading,
batching and writing (its checkpoints cover read -> write pipelines only),
gives the driver no per-chunk completion to write and resume by, and retries
or drops rows on its own terms. Its LLM processor runs vLLM only, while the
same chunks here run transformers samplers, reward models and CPU
verifiers. Actors fed by the driver keep chunk identity, retries and
durability with thresher's store, at the cost of writing the dispatch loop
below.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import ray
from ray.exceptions import NodeDiedError, ObjectLostError, RayActorError, RayTaskError, WorkerCrashedError

from thresher.errors import ConfigError, UserError
from thresher.executors.base import (
    ChunkFailed,
    ChunkTask,
    ExecutorConfig,
    WorkerLost,
    describe_chunk,
    error_text,
    run_isolating,
)

C = TypeVar("C")
R = TypeVar("R")
log = logging.getLogger(__name__)

PLACEMENT_TIMEOUT_S = 600.0
"""How long a stage waits with no replica placed at all (the cluster full, or an autoscaler adding nodes)."""
CLOSE_TIMEOUT_S = 60.0
POLL_S = 1.0

_LOST = (RayActorError, NodeDiedError, ObjectLostError, WorkerCrashedError)
"""What a dead replica, process or node looks like from the driver: retry the chunk elsewhere."""


class Replica:
    """The actor: holds one task's worker. Building is a method, not `__init__`, so the driver can
    tell a replica waiting for room on the cluster (not placed) from one loading a model (building)."""

    def __init__(self, task: ChunkTask[Any, Any, Any]):
        self.task = task
        self.worker: Any = None

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def build(self) -> str:
        self.worker = self.task.build()
        return self.node()

    def run(self, chunk: Any) -> Any:
        return run_isolating(self.task, self.worker, chunk)

    def close(self) -> None:
        if self.task.close is not None and self.worker is not None:
            self.task.close(self.worker)
        self.worker = None


@dataclass(slots=True)
class _Slot:
    """One replica as the driver tracks it: placing -> building -> idle <-> busy."""

    actor: Any
    state: str
    since: float


class RayExecutor:
    """Runs chunks on Ray actors; see the module docstring for placement, retries and errors."""

    name = "ray"

    def __init__(self, cfg: ExecutorConfig):
        self.cfg = cfg
        self._owns_connection = False
        self.lost_replicas = 0
        """Replicas that died (process or node) or raised WorkerLost, over this executor's life."""
        self.retried_chunks = 0
        """Chunks sent out again because their replica was lost while running them."""
        if ray.is_initialized():
            return
        options = {"log_to_driver": False, **cfg.args}
        try:
            ray.init(address=cfg.address, **options)
        except TypeError as e:
            raise ConfigError("executor.args", f"not an option of ray.init: {e}") from None
        except ConnectionError as e:
            raise UserError(f"executor.address {cfg.address!r}: cannot reach a Ray cluster ({e})") from None
        self._owns_connection = True

    # -- how many replicas, and whether any fits -----------------------------------------------------
    def _nodes(self) -> list[dict[str, float]]:
        return [n["Resources"] for n in ray.nodes() if n.get("Alive")]

    def replica_count(self, task: ChunkTask[Any, Any, Any], n_chunks: int) -> int:
        """Replicas to start for `task`: its `replicas` (model) or one per CPU share (cpu), never more than chunks."""
        res = task.resources
        nodes = self._nodes()
        fits = [n for n in nodes if n.get("CPU", 0.0) >= res.num_cpus and n.get("GPU", 0.0) >= res.num_gpus]
        if not fits:
            have = ", ".join(f"{n.get('CPU', 0):g} CPU / {n.get('GPU', 0):g} GPU" for n in nodes) or "no live nodes"
            raise UserError(
                f"{task.name}: no node of the Ray cluster can hold a replica needing num_cpus={res.num_cpus:g}, "
                f"num_gpus={res.num_gpus:g} (nodes: {have}); change the model's resources or add nodes"
            )
        if task.kind == "cpu" and res.num_cpus > 0:
            count = sum(int(n.get("CPU", 0.0) // res.num_cpus) for n in fits)
        else:
            count = res.replicas
        return max(1, min(count, n_chunks))

    def _start(self, task: ChunkTask[Any, Any, Any], waits: dict[Any, tuple[str, _Slot, int]]) -> _Slot:
        res = task.resources
        actor = (
            _remote_replica()
            .options(
                num_cpus=res.num_cpus,
                num_gpus=res.num_gpus,
                scheduling_strategy="SPREAD",
                max_restarts=0,
                max_task_retries=0,
            )
            .remote(task)
        )
        slot = _Slot(actor, "placing", time.monotonic())
        waits[actor.node.remote()] = ("placed", slot, -1)
        waits[actor.build.remote()] = ("built", slot, -1)
        return slot

    # -- the dispatch loop ----------------------------------------------------------------------------
    def map(self, task: ChunkTask[Any, C, R], chunks: Sequence[C]) -> Iterator[tuple[C, R]]:
        """Yield `(chunk, result)` as chunks finish on the cluster's replicas (any order)."""
        chunks = list(chunks)
        if not chunks:
            return
        n_replicas = self.replica_count(task, len(chunks))
        waits: dict[Any, tuple[str, _Slot, int]] = {}
        slots = [self._start(task, waits) for _ in range(n_replicas)]
        pending: deque[int] = deque(range(len(chunks)))
        losses = [0] * len(chunks)
        running = 0

        def dispatch() -> int:
            """Give idle replicas the next chunks; returns how many went out."""
            sent = 0
            for slot in slots:
                if slot.state == "idle" and pending:
                    index = pending.popleft()
                    slot.state, slot.since = "busy", time.monotonic()
                    waits[slot.actor.run.remote(chunks[index])] = ("ran", slot, index)
                    sent += 1
            return sent

        try:
            while pending or running:
                running += dispatch()
                ready, _ = ray.wait(list(waits), num_returns=1, timeout=POLL_S)
                if not ready:
                    self._check_placement(task, slots)
                    continue
                what, slot, index = waits.pop(ready[0])
                running -= what == "ran"
                try:
                    value = ray.get(ready[0])
                except Exception as e:  # noqa: BLE001 - sorted below: lost replica, task error, build error
                    cause = e.cause if isinstance(e, RayTaskError) else e
                    if not isinstance(e, _LOST) and not isinstance(cause, WorkerLost):
                        raise self._task_error(task, what, cause, chunks, index) from None
                    self._replace(task, slot, slots, waits)
                    self.lost_replicas += 1
                    if what == "ran":
                        losses[index] += 1
                        if losses[index] > self.cfg.max_retries:
                            where = describe_chunk(chunks[index], index, len(chunks))
                            raise ChunkFailed(
                                f"{task.name}: {where} lost its replica {losses[index]} times "
                                f"(max_retries={self.cfg.max_retries}); last: {error_text(cause)}"
                            ) from None
                        pending.appendleft(index)
                        self.retried_chunks += 1
                        log.warning("%s: a replica was lost (%s); %s goes to another one (retry %d of %d)",
                                    task.name, error_text(cause).split(". ")[0][:120],
                                    describe_chunk(chunks[index], index, len(chunks)), losses[index],
                                    self.cfg.max_retries)
                    continue
                if what == "placed":
                    slot.state = "building" if slot.state == "placing" else slot.state
                    continue
                slot.state = "idle"
                if what == "ran":
                    running += dispatch()  # the replica works on its next chunk while the driver writes this one
                    yield chunks[index], value
        finally:
            self._close_all(slots)

    def _task_error(self, task: ChunkTask[Any, Any, Any], what: str, cause: BaseException, chunks: list[Any],
                    index: int) -> Exception:
        """The error that ends the stage when a task (not a replica) failed."""
        if isinstance(cause, UserError):
            return cause
        if what != "ran":
            return UserError(f"{task.name}: building a replica failed: {error_text(cause)}")
        where = describe_chunk(chunks[index], index, len(chunks))
        return ChunkFailed(f"{task.name}: {where} failed: {error_text(cause)}")

    def _replace(self, task: ChunkTask[Any, Any, Any], slot: _Slot, slots: list[_Slot],
                 waits: dict[Any, tuple[str, _Slot, int]]) -> None:
        """Drop a lost replica (and its pending placement or build) and start another; Ray places it
        where there is room. A replica runs one chunk at a time, so it owes no other chunk."""
        slots.remove(slot)
        for ref in [r for r, (_, s, _) in waits.items() if s is slot]:
            del waits[ref]
        _kill(slot.actor)
        slots.append(self._start(task, waits))

    def _check_placement(self, task: ChunkTask[Any, Any, Any], slots: list[_Slot]) -> None:
        """Fail, rather than wait forever, when no replica at all could be placed for a long time."""
        if any(s.state != "placing" for s in slots):
            return
        waited = time.monotonic() - min(s.since for s in slots)
        if waited > PLACEMENT_TIMEOUT_S:
            res = task.resources
            raise UserError(
                f"{task.name}: no replica (num_cpus={res.num_cpus:g}, num_gpus={res.num_gpus:g}) could be "
                f"placed on the Ray cluster in {waited:.0f} s; it is busy or too small"
            )

    def _close_all(self, slots: list[_Slot]) -> None:
        """Let built workers free their engines, then end every replica (also those still waiting for room)."""
        closing = [s.actor.close.remote() for s in slots if s.state in ("idle", "busy")]
        if closing:
            try:
                ray.wait(closing, num_returns=len(closing), timeout=CLOSE_TIMEOUT_S)
            except Exception:  # noqa: BLE001, S110 - best effort: the actors are killed next either way
                pass
        for s in slots:
            _kill(s.actor)

    def close(self) -> None:
        """Disconnect from the cluster if this executor connected (or started) it."""
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
        self._owns_connection = False


@functools.cache
def _remote_replica() -> Any:
    return ray.remote(Replica)


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001, S110 - already dead, or its node is gone
        pass
