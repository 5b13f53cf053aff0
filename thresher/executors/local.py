"""The local executor: one worker, built once per task, runs every chunk in this process."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from thresher.executors.base import ChunkFailed, ChunkTask, WorkerLost, describe_chunk, error_text, run_isolating

C = TypeVar("C")
R = TypeVar("R")


class LocalExecutor:
    """In-process, in order: today's behaviour, and what tests compare a cluster run against.

    Failing items are isolated as on a cluster (`run_isolating`); a worker
    that raises `WorkerLost` is closed, built again and given its chunk again,
    at most `max_retries` times per chunk.
    """

    name = "local"

    def __init__(self, max_retries: int = 3):
        self.max_retries = max_retries

    def map(self, task: ChunkTask[Any, C, R], chunks: Sequence[C]) -> Iterator[tuple[C, R]]:
        if not chunks:
            return
        worker = task.build()
        try:
            for index, chunk in enumerate(chunks):
                for attempt in range(self.max_retries + 1):
                    try:
                        result = run_isolating(task, worker, chunk)
                        break
                    except WorkerLost as e:
                        if attempt == self.max_retries:
                            where = describe_chunk(chunk, index, len(chunks))
                            raise ChunkFailed(
                                f"{task.name}: {where} lost its worker {attempt + 1} times; last: {error_text(e)}"
                            ) from None
                        if task.close is not None:
                            task.close(worker)
                        worker = None
                        worker = task.build()
                yield chunk, result
        finally:
            if task.close is not None and worker is not None:
                task.close(worker)

    def close(self) -> None:
        pass
