"""The executor contract in this process: item isolation, chunk names, a lost worker rebuilt (no Ray needed)."""

from __future__ import annotations

from functools import partial

import pytest

from thresher.errors import UserError
from thresher.executors import ChunkFailed, ChunkTask, ExecutorConfig, LocalExecutor, WorkerLost, build_executor
from thresher.executors.base import describe_chunk, run_isolating
from thresher.records import Prompt


def _square_unless_negative(calls: list[int], worker: object, chunk: list[int]) -> list[int]:
    calls.append(len(chunk))
    if any(x < 0 for x in chunk):
        raise ValueError(f"negative item among {len(chunk)}")
    return [x * x for x in chunk]


def test_failing_items_are_isolated_into_error_records():
    calls: list[int] = []
    task = ChunkTask("square", build=dict, run=partial(_square_unless_negative, calls),
                     on_item_error=lambda one, err: [f"error on {one[0]}: {err}"])
    out = run_isolating(task, None, [1, 2, -3, 4, 5, 6, -7, 8])
    assert out == [1, 4, "error on -3: ValueError: negative item among 1", 16, 25, 36,
                   "error on -7: ValueError: negative item among 1", 64]
    # 8 fails; [1,2,-3,4] fails; [1,2] passes; [-3,4] fails; -3 and 4 alone; the same on the right half.
    assert calls == [8, 4, 2, 2, 1, 1, 4, 2, 2, 1, 1]


def test_user_errors_are_not_isolated():
    def unreachable(worker: object, chunk: list[int]) -> list[int]:
        raise UserError("server http://127.0.0.1:9/v1 is unreachable")

    task = ChunkTask("ask", build=dict, run=unreachable, on_item_error=lambda one, err: ["recorded"])
    with pytest.raises(UserError, match="unreachable"):
        run_isolating(task, None, [1, 2, 3])


def test_without_a_hook_the_error_propagates():
    task = ChunkTask("square", build=dict, run=partial(_square_unless_negative, []))
    with pytest.raises(ValueError, match="negative item among 3"):
        run_isolating(task, None, [1, -2, 3])
    assert list(LocalExecutor().map(task, [[1, 2], [3]])) == [([1, 2], [1, 4]), ([3], [9])]


def test_worker_lost_is_not_isolated_and_the_local_executor_rebuilds(tmp_path):
    builds: list[int] = []

    def build() -> dict:
        builds.append(1)
        return {"dir": tmp_path}

    from ray_tasks import run_always_losing_worker, run_losing_worker_once

    task = ChunkTask("lossy", build=build, run=run_losing_worker_once, on_item_error=lambda one, e: [None])
    assert list(LocalExecutor(max_retries=1).map(task, [[2, 3], [4]])) == [([2, 3], [4, 9]), ([4], [16])]
    assert len(builds) == 3  # the first worker, then one per chunk whose first run lost it

    doomed = ChunkTask("doomed", build=build, run=run_always_losing_worker)
    with pytest.raises(ChunkFailed, match=r"doomed: chunk 2/2 \(1 item\) lost its worker 3 times"):
        list(LocalExecutor(max_retries=2).map(ChunkTask("doomed", build=build, run=_lose_on_five), [[1], [5]]))
    assert len(builds) == 3 + 1 + 2  # a new worker for the task, then two rebuilds before giving up
    with pytest.raises(ChunkFailed, match="lost its worker 1 times"):
        list(LocalExecutor(max_retries=0).map(doomed, [[1]]))


def _lose_on_five(worker: object, chunk: list[int]) -> list[int]:
    if 5 in chunk:
        raise WorkerLost("engine died")
    return chunk


def test_chunks_are_named_by_position_and_item_ids():
    prompts = [Prompt.create("t", [{"role": "user", "content": f"q{i}"}], id=f"p{i}") for i in range(3)]
    assert describe_chunk(prompts, 2, 9) == "chunk 3/9 (3 items: p0 to p2)"
    assert describe_chunk([(prompts[1], [])], 0, 1) == "chunk 1/1 (1 item: p1)"
    assert describe_chunk([7, 8], 1, 2) == "chunk 2/2 (2 items)"


def test_build_executor_local_takes_the_retry_bound():
    ex = build_executor(ExecutorConfig(type="local", max_retries=5))
    assert isinstance(ex, LocalExecutor) and ex.max_retries == 5

