"""The local executor: one worker, built once per task, runs every chunk in this process."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from thresher.executors.base import ChunkTask

C = TypeVar("C")
R = TypeVar("R")


class LocalExecutor:
    """In-process, in order: today's behaviour, and what tests compare a cluster run against."""

    name = "local"

    def map(self, task: ChunkTask[Any, C, R], chunks: Sequence[C]) -> Iterator[tuple[C, R]]:
        if not chunks:
            return
        worker = task.build()
        try:
            for chunk in chunks:
                yield chunk, task.run(worker, chunk)
        finally:
            if task.close is not None:
                task.close(worker)

    def close(self) -> None:
        pass
