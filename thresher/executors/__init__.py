"""Where a stage's chunks run: in this process (`local`) or on a Ray cluster (`ray`).

A stage says what to compute for one chunk (`ChunkTask`); an executor decides
where each chunk runs and hands the results back to the driver, which writes
each finished chunk as one durable shard. Stages never import Ray.
"""

from thresher.executors.base import (
    ChunkFailed,
    ChunkTask,
    Executor,
    ExecutorConfig,
    Resources,
    WorkerLost,
    build_executor,
    run_isolating,
)
from thresher.executors.local import LocalExecutor

__all__ = [
    "ChunkFailed",
    "ChunkTask",
    "Executor",
    "ExecutorConfig",
    "LocalExecutor",
    "Resources",
    "WorkerLost",
    "build_executor",
    "run_isolating",
]
