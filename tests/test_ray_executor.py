"""The Ray executor on a real two-node cluster: same results as local, faults retried, bad items recorded."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from thresher.config import JudgeConfig, ModelConfig
from thresher.errors import UserError
from thresher.executors import ChunkFailed, ChunkTask, LocalExecutor, Resources
from thresher.records import Candidate, Prompt
from thresher.sampling import SamplingParams

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What is 2 + 2?", "Hi", "Compute 123 * 7, then add 19 to the result.", "7 - 5?", "Name a prime.",
    "Spell the word 'seven' backwards, then count its letters.", "3 * 3?", "Is 91 a prime number? Explain.",
    "10 / 2?", "Add 45 and 55.", "What comes after 99?", "Write the number twelve in digits.",
]


def _prompts(questions: list[str] = QUESTIONS) -> list[Prompt]:
    return [Prompt.create("arith", [{"role": "user", "content": q}]) for q in questions]


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _model(tiny_lm: Path, max_tokens: int = 8) -> ModelConfig:
    return ModelConfig(name="tiny", path=str(tiny_lm), backend="hf", n=3, args={"batch_size": 4},
                       sampling=SamplingParams(temperature=1.0, max_tokens=max_tokens, seed=5))


def _texts(results: dict[int, list[list[Candidate]]]) -> dict[str, list[str]]:
    return {c.id: c.text for rows in results.values() for row in rows for c in row}


def _collect(executor, task: ChunkTask, chunks: list) -> tuple[dict[int, object], list[object]]:
    """Results by chunk position, and the chunks in the order they were yielded (duplicates kept)."""
    out: dict[int, object] = {}
    order = []
    for chunk, result in executor.map(task, chunks):
        index = next(i for i, c in enumerate(chunks) if c is chunk)
        order.append(index)
        out[index] = result
    return out, order


def test_two_hf_replicas_give_every_candidate_once_and_the_local_texts(ray_executor, tiny_lm: Path, tmp_path):
    from ray_tasks import sampling_task

    model = _model(tiny_lm)
    chunks = _chunks(_prompts(), 2)
    task = sampling_task(model, replicas=2, tag_pid=True, barrier=(str(tmp_path / "meet"), 2))
    tagged, order = _collect(ray_executor, task, chunks)
    assert sorted(order) == list(range(6))
    where = {tag for tag, _ in tagged.values()}
    assert len({pid for pid, _ in where}) == 2 and len({node for _, node in where}) == 2  # one replica per node
    on_ray = {i: rows for i, (_, rows) in tagged.items()}
    cands = [c for rows in on_ray.values() for row in rows for c in row]
    assert len(cands) == 12 * 3 and len({c.id for c in cands}) == 36

    local, _ = _collect(LocalExecutor(), sampling_task(model), chunks)
    assert _texts(on_ray) == _texts(local)
    # Chunking does not change answers either: one chunk of all twelve prompts, the same texts.
    whole, _ = _collect(LocalExecutor(), sampling_task(model), [_prompts()])
    assert _texts(whole) == _texts(local)
    assert len(set(_texts(local).values())) > 20  # sampled, not one answer repeated


def test_math_judging_spreads_over_both_nodes_and_equals_local(ray_executor, tmp_path: Path):
    from ray_tasks import judging_task

    prompts = [Prompt.create("arith", [{"role": "user", "content": f"{i} + {i}?"}], reference=str(2 * i))
               for i in range(40)]
    answers = ["The answer is \\boxed{%d}.", "I think it is %d.", "no idea"]
    items = []
    for i, p in enumerate(prompts):
        cands = [Candidate(p.id, "m", k, text % (2 * i + (k == 1) * (i % 2)) if "%d" in text else text)
                 for k, text in enumerate(answers)]
        items.append((p, cands))
    chunks = _chunks(items, 5)
    cfg = JudgeConfig(type="math", args={"workers": 1, "timeout": 30})
    tagged, order = _collect(ray_executor, judging_task(cfg, tag_pid=True, barrier=(str(tmp_path), 2)), chunks)
    assert sorted(order) == list(range(8))
    assert len({node for (_, node), _ in tagged.values()}) == 2
    on_ray = [v for i in range(8) for row in tagged[i][1] for v in row]
    local, _ = _collect(LocalExecutor(), judging_task(cfg), chunks)
    assert on_ray == [v for i in range(8) for row in local[i] for v in row]
    assert len(on_ray) == 120
    assert sum(v.correct is True for v in on_ray) == 40 + 20  # every boxed answer; "I think" right when i is even
    assert sum(v.error is not None for v in on_ray) == 0


def test_a_prompt_the_engine_rejects_becomes_error_candidates(ray_executor, tiny_lm: Path):
    from ray_tasks import error_candidates, sample_chunk_rejecting, sampling_task

    model = _model(tiny_lm)
    prompts = _prompts()[:8]
    prompts[5].metadata["reject"] = True
    task = sampling_task(model)
    task.run = partial(sample_chunk_rejecting, model)
    task.on_item_error = partial(error_candidates, model)
    chunks = _chunks(prompts, 4)
    on_ray, _ = _collect(ray_executor, task, chunks)
    rows = on_ray[0] + on_ray[1]
    assert [len(r) for r in rows] == [3] * 8
    bad = rows[5]
    assert {c.finish_reason for c in bad} == {"error"}
    assert bad[0].metadata["error"] == f"ValueError: prompt {prompts[5].id} is longer than the model's context"
    assert all(c.finish_reason != "error" for i, r in enumerate(rows) if i != 5 for c in r)
    local, _ = _collect(LocalExecutor(), task, chunks)
    assert _texts(on_ray) == _texts(local)
    # The good prompts of the failing chunk got the answers they get in a clean run.
    clean, _ = _collect(LocalExecutor(), sampling_task(model), [prompts[:5] + prompts[6:]])
    assert {k: v for k, v in _texts(on_ray).items() if not k.startswith(prompts[5].id)} == _texts(clean)


def test_a_lost_worker_is_rebuilt_and_its_chunk_retried_then_the_chunk_is_named(ray_executor, tmp_path: Path):
    from ray_tasks import build_counter, run_always_losing_worker, run_losing_worker_once

    task = ChunkTask("lossy", build=partial(build_counter, str(tmp_path)), run=run_losing_worker_once,
                     resources=Resources(replicas=2))
    chunks = [[1, 2], [3], [4, 5, 6]]
    out, order = _collect(ray_executor, task, chunks)
    assert sorted(order) == [0, 1, 2]
    assert out == {0: [1, 4], 1: [9], 2: [16, 25, 36]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lost-1", "lost-3", "lost-4"]

    doomed = ChunkTask("doomed", build=partial(build_counter, str(tmp_path)), run=run_always_losing_worker)
    with pytest.raises(ChunkFailed, match=r"doomed: chunk 1/1 \(2 items\) lost its replica 3 times \(max_retries=2\)"):
        list(ray_executor.map(doomed, [[7, 8]]))


def test_build_errors_and_impossible_resources_are_user_errors(ray_executor, tmp_path: Path):
    from ray_tasks import sampling_task

    missing = ModelConfig(name="gone", path=str(tmp_path / "missing"), backend="hf", n=1)
    with pytest.raises(UserError, match="model path '.*missing' does not exist"):
        list(ray_executor.map(sampling_task(missing, replicas=1), [_prompts()[:1]]))

    gpu = ChunkTask("judge big", build=dict, run=lambda w, c: c, resources=Resources(num_gpus=1))
    with pytest.raises(UserError, match="judge big: no node of the Ray cluster can hold a replica needing "
                                        r"num_cpus=1, num_gpus=1 \(nodes: 1 CPU / 0 GPU, 1 CPU / 0 GPU\)"):
        list(ray_executor.map(gpu, [[1]]))


def test_a_worker_node_killed_mid_run_leaves_a_complete_duplicate_free_result(
    ray_executor, ray_cluster, tiny_lm, tmp_path: Path
):
    import ray
    from ray_tasks import sampling_task

    model = _model(tiny_lm, max_tokens=24)
    prompts = _prompts(QUESTIONS + [q + " Answer briefly." for q in QUESTIONS])
    chunks = _chunks(prompts, 2)
    worker_proc = ray_cluster.procs[1]
    worker_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == "127.0.0.3")
    seen_nodes: set[str] = set()
    after_kill: list[str] = []
    results: dict[int, list[list[Candidate]]] = {}
    order: list[int] = []
    killed = False
    retried_before = ray_executor.retried_chunks
    task = sampling_task(model, replicas=2, tag_pid=True, barrier=(str(tmp_path), 2))
    for chunk, ((_, node), rows) in ray_executor.map(task, chunks):
        index = next(i for i, c in enumerate(chunks) if c is chunk)
        order.append(index)
        results[index] = rows
        if killed:
            after_kill.append(node)
        seen_nodes.add(node)
        if not killed and worker_node in seen_nodes and len(seen_nodes) == 2:
            ray_cluster.kill_node(worker_proc)  # its replica was given its next chunk before this one came back
            killed = True
    assert killed
    assert sorted(order) == list(range(len(chunks)))  # every chunk once: the lost one retried, none twice
    assert ray_executor.retried_chunks - retried_before == 1
    assert worker_proc.poll() is not None
    assert len(after_kill) >= 2 and set(after_kill[1:]) == {n for n in seen_nodes if n != worker_node}
    cands = [c for rows in results.values() for row in rows for c in row]
    assert len(cands) == 24 * 3 and len({c.id for c in cands}) == 24 * 3
    local, _ = _collect(LocalExecutor(), sampling_task(model), chunks)
    assert _texts(results) == _texts(local)
    ray_cluster.add_node()  # later tests get two nodes again
