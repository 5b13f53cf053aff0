"""The Ray executor on a real two-node cluster, with the stages' own chunk tasks: same results as local,
a lost node's chunk retried, a failing prompt recorded as an error, clear errors for what cannot run."""

from __future__ import annotations

import itertools
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from thresher.config import JudgeConfig, ModelConfig
from thresher.errors import UserError
from thresher.executors import ChunkFailed, ChunkTask, LocalExecutor, Resources
from thresher.judges.stage import JudgeChunk, judge_task
from thresher.records import Candidate, Prompt
from thresher.sampling import SamplingParams
from thresher.sampling.stage import plan_chunks, sampler_task

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What is 2 + 2?", "Hi", "Compute 123 * 7, then add 19 to the result.", "7 - 5?", "Name a prime.",
    "Spell the word 'seven' backwards, then count its letters.", "3 * 3?", "Is 91 a prime number? Explain.",
    "10 / 2?", "Add 45 and 55.", "What comes after 99?", "Write the number twelve in digits.",
]


def _prompts(questions: list[str] = QUESTIONS) -> list[Prompt]:
    return [Prompt.create("arith", [{"role": "user", "content": q}]) for q in questions]


def _model(tiny_lm: Path, max_tokens: int = 8, replicas: int = 2) -> ModelConfig:
    return ModelConfig(name="tiny", path=str(tiny_lm), backend="hf", n=3, args={"batch_size": 4},
                       sampling=SamplingParams(temperature=1.0, max_tokens=max_tokens, seed=5),
                       resources=Resources(replicas=replicas, num_cpus=1))


def _plan(model: ModelConfig, prompts: list[Prompt], size: int) -> list:
    return plan_chunks(model, [(p, list(range(model.n))) for p in prompts], size)


def _tagged(task: ChunkTask, barrier: Path) -> ChunkTask:
    """The task with each result tagged by the replica (process, node) that computed it."""
    from ray_tasks import with_pid

    return replace(task, run=partial(with_pid, task.run, barrier=(str(barrier), 2)))


def _collect(executor, task: ChunkTask, chunks: list) -> tuple[dict[int, object], list[int]]:
    """Results by chunk position, and the positions in the order they were yielded (duplicates kept)."""
    out: dict[int, object] = {}
    order = []
    for chunk, result in executor.map(task, chunks):
        index = next(i for i, c in enumerate(chunks) if c is chunk)
        order.append(index)
        out[index] = result
    return out, order


def _texts(results: dict[int, list[Candidate]]) -> dict[str, str]:
    return {c.id: c.text for cands in results.values() for c in cands}


def test_two_hf_replicas_give_every_candidate_once_and_the_local_texts(ray_executor, tiny_lm: Path, tmp_path):
    model = _model(tiny_lm)
    chunks = _plan(model, _prompts(), 2)
    tagged, order = _collect(ray_executor, _tagged(sampler_task(model), tmp_path), chunks)
    assert sorted(order) == list(range(6))
    where = {tag for tag, _ in tagged.values()}
    assert len({pid for pid, _ in where}) == 2 and len({node for _, node in where}) == 2  # one replica per node
    on_ray = {i: cands for i, (_, cands) in tagged.items()}
    cands = [c for cs in on_ray.values() for c in cs]
    assert len(cands) == 12 * 3 and len({c.id for c in cands}) == 36

    local, _ = _collect(LocalExecutor(), sampler_task(model), chunks)
    assert _texts(on_ray) == _texts(local)
    # Chunking does not change answers either: one chunk of all twelve prompts, the same texts.
    whole, _ = _collect(LocalExecutor(), sampler_task(model), _plan(model, _prompts(), 12))
    assert _texts(whole) == _texts(local)
    assert len(set(_texts(local).values())) > 20  # sampled, not one answer repeated


def test_math_judging_spreads_over_both_nodes_and_equals_local(ray_executor, tmp_path: Path):
    prompts = [Prompt.create("arith", [{"role": "user", "content": f"{i} + {i}?"}], reference=str(2 * i))
               for i in range(40)]
    answers = ["The answer is \\boxed{%d}.", "I think it is %d.", "no idea"]
    cands = [[Candidate(p.id, "m", k, text % (2 * i + (k == 1) * (i % 2)) if "%d" in text else text)
              for k, text in enumerate(answers)] for i, p in enumerate(prompts)]
    chunks = [JudgeChunk(prompts[s : s + 5], cands[s : s + 5]) for s in range(0, 40, 5)]
    cfg = JudgeConfig(type="math", args={"workers": 1, "timeout": 30})
    task = judge_task(cfg)
    assert task.kind == "cpu"
    tagged, order = _collect(ray_executor, _tagged(task, tmp_path), chunks)
    assert sorted(order) == list(range(8))
    assert len({node for (_, node), _ in tagged.values()}) == 2  # one verifier per node's CPU
    on_ray = [v for i in range(8) for v in tagged[i][1]]
    local, _ = _collect(LocalExecutor(), task, chunks)
    assert on_ray == [v for i in range(8) for v in local[i]]
    assert len(on_ray) == 120
    assert sum(v.correct is True for v in on_ray) == 40 + 20  # every boxed answer; "I think" right when i is even
    assert sum(v.error is not None for v in on_ray) == 0


def test_a_prompt_the_engine_rejects_becomes_error_candidates(ray_executor, tiny_lm: Path):
    from ray_tasks import rejecting

    model = _model(tiny_lm)
    prompts = _prompts()[:8]
    prompts[5].metadata["reject"] = True
    task = sampler_task(model)
    task = replace(task, run=partial(rejecting, task.run))
    chunks = _plan(model, prompts, 4)
    on_ray, _ = _collect(ray_executor, task, chunks)
    cands = [c for cs in on_ray.values() for c in cs]
    assert len(cands) == 8 * 3
    bad = [c for c in cands if c.prompt_id == prompts[5].id]
    assert [c.finish_reason for c in bad] == ["error"] * 3 and {c.text for c in bad} == {""}
    assert bad[0].metadata["error"] == f"ValueError: prompt {prompts[5].id} is longer than the model's context"
    assert all(c.finish_reason != "error" for c in cands if c.prompt_id != prompts[5].id)
    local, _ = _collect(LocalExecutor(), task, chunks)
    assert _texts(on_ray) == _texts(local)
    # The other prompts got the answers they get in a run without the bad one.
    clean, _ = _collect(LocalExecutor(), sampler_task(model), _plan(model, prompts[:5] + prompts[6:], 8))
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
    missing = ModelConfig(name="gone", path=str(tmp_path / "missing"), backend="hf", n=1)
    with pytest.raises(UserError, match="model path '.*missing' does not exist"):
        list(ray_executor.map(sampler_task(missing), _plan(missing, _prompts()[:1], 1)))

    gpu = ChunkTask("judge big", build=dict, run=lambda w, c: c, resources=Resources(num_gpus=1))
    with pytest.raises(UserError, match="judge big: no node of the Ray cluster can hold a replica needing "
                                        r"num_cpus=1, num_gpus=1 \(nodes: 1 CPU / 0 GPU, 1 CPU / 0 GPU\)"):
        list(ray_executor.map(gpu, [[1]]))


def test_a_worker_node_killed_mid_run_leaves_a_complete_duplicate_free_result(
    ray_executor, ray_cluster, tiny_lm, tmp_path: Path
):
    import ray

    model = _model(tiny_lm, max_tokens=24)
    prompts = _prompts(QUESTIONS + [q + " Answer briefly." for q in QUESTIONS])
    chunks = _plan(model, prompts, 2)
    worker_proc = ray_cluster.procs[1]
    worker_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == "127.0.0.3")
    seen_nodes: set[str] = set()
    after_kill: list[str] = []
    results: dict[int, list[Candidate]] = {}
    order: list[int] = []
    killed = False
    retried_before = ray_executor.retried_chunks
    for chunk, ((_, node), cands) in ray_executor.map(_tagged(sampler_task(model), tmp_path), chunks):
        index = next(i for i, c in enumerate(chunks) if c is chunk)
        order.append(index)
        results[index] = cands
        if killed:
            after_kill.append(node)
        seen_nodes.add(node)
        if not killed and worker_node in seen_nodes and len(seen_nodes) == 2:
            ray_cluster.kill_node(worker_proc)  # its replica was given its next chunk before this one came back
            killed = True
    assert killed and worker_proc.poll() is not None
    assert sorted(order) == list(range(len(chunks)))  # every chunk once: the lost one retried, none twice
    assert ray_executor.retried_chunks - retried_before == 1
    # A chunk the worker finished just before dying may still arrive; everything after it comes from the head.
    rest = list(itertools.dropwhile(lambda n: n == worker_node, after_kill))
    assert rest and set(rest) == {n for n in seen_nodes if n != worker_node} and len(after_kill) - len(rest) <= 1
    cands = [c for cs in results.values() for c in cs]
    assert len(cands) == 24 * 3 and len({c.id for c in cands}) == 24 * 3
    local, _ = _collect(LocalExecutor(), sampler_task(model), chunks)
    assert _texts(results) == _texts(local)
    ray_cluster.add_node()  # later tests get two nodes again
