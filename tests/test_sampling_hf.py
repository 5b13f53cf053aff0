"""The transformers backend on a tiny real model: shape, order, batching, greedy, stop strings, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thresher.errors import UserError
from thresher.records import Prompt
from thresher.sampling import SamplingParams


def _prompts() -> list[Prompt]:
    # Different lengths, so sorting by length really reorders them inside the backend.
    questions = ["What is 2 + 2?", "Hi", "Compute 123 * 7, then add 19 to the result.", "7 - 5?", "Name a prime."]
    return [Prompt.create("arith", [{"role": "user", "content": q}]) for q in questions]


@pytest.fixture(scope="module")
def hf_sampler(tiny_lm: Path):
    from thresher.sampling.hf import HFSampler

    return HFSampler(str(tiny_lm), "tiny", batch_size=6)


def test_returns_n_candidates_per_prompt_in_input_order(hf_sampler):
    prompts = _prompts()
    out = hf_sampler.sample(prompts, SamplingParams(n=3, temperature=1.0, max_tokens=6, seed=0))
    assert len(out) == 5
    for prompt, row in zip(prompts, out, strict=True):
        assert [c.index for c in row] == [0, 1, 2]
        assert {c.prompt_id for c in row} == {prompt.id}
        assert {c.model for c in row} == {"tiny"}
        for c in row:
            assert 1 <= c.num_tokens <= 6
            assert c.finish_reason in ("stop", "length")
            assert (c.finish_reason == "length") == (c.num_tokens == 6)


def test_batched_greedy_equals_one_prompt_at_a_time(hf_sampler):
    """Left padding and length sorting must not change any prompt's answer."""
    prompts = _prompts()
    params = SamplingParams(n=1, temperature=0, max_tokens=8)
    batched = hf_sampler.sample(prompts, params)
    singles = [hf_sampler.sample([p], params)[0] for p in prompts]
    assert [r[0].text for r in batched] == [r[0].text for r in singles]


def test_greedy_n_gives_n_identical_copies(hf_sampler):
    out = hf_sampler.sample(_prompts()[:2], SamplingParams(n=4, temperature=0, max_tokens=5))
    for row in out:
        assert [c.index for c in row] == [0, 1, 2, 3]
        assert len({c.text for c in row}) == 1


def test_seed_makes_sampling_reproducible(hf_sampler):
    params = SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=7)
    a = hf_sampler.sample(_prompts(), params)
    b = hf_sampler.sample(_prompts(), params)
    assert [[c.text for c in r] for r in a] == [[c.text for c in r] for r in b]
    assert len({c.text for r in a for c in r}) > 5  # sampling, not the same answer everywhere


def test_a_prompts_answers_do_not_depend_on_its_batch(tiny_lm: Path, hf_sampler):
    """Each answer has its own seeded stream: other chunks, other batch sizes, the same answers."""
    from thresher.sampling.hf import HFSampler

    prompts = _prompts()
    params = SamplingParams(n=2, temperature=0.9, top_p=0.95, max_tokens=8, seed=3)
    whole = hf_sampler.sample(prompts, params)
    small_batches = HFSampler(str(tiny_lm), "tiny", batch_size=2)
    chunked = small_batches.sample(prompts[3:], params) + small_batches.sample(prompts[:3], params)
    chunked = chunked[2:] + chunked[:2]
    assert [[c.text for c in r] for r in chunked] == [[c.text for c in r] for r in whole]
    assert len({c.text for r in whole for c in r}) > 5
    other_seed = hf_sampler.sample(prompts, SamplingParams(n=2, temperature=0.9, top_p=0.95, max_tokens=8, seed=4))
    assert [[c.text for c in r] for r in other_seed] != [[c.text for c in r] for r in whole]


def test_stop_string_ends_the_answer_and_is_dropped(hf_sampler):
    # The tiny model's greedy answer to this prompt is a run of newlines (seen in the test below).
    prompt = _prompts()[:1]
    free = hf_sampler.sample(prompt, SamplingParams(n=1, temperature=0, max_tokens=8))[0][0]
    assert free.text.startswith("\n\n")
    stopped = hf_sampler.sample(prompt, SamplingParams(n=1, temperature=0, max_tokens=8, stop=["\n\n"]))[0][0]
    # The prompt itself ends in a newline; the stop string must match the answer only.
    assert (stopped.text, stopped.num_tokens, stopped.finish_reason) == ("", 2, "stop")


def test_bad_model_path_is_a_user_error(tmp_path: Path):
    from thresher.sampling.hf import HFSampler

    with pytest.raises(UserError, match="model path '.*missing' does not exist"):
        HFSampler(str(tmp_path / "missing"))


def test_tokenizer_without_chat_template_is_a_user_error(tmp_path: Path):
    from thresher.sampling.hf import HFSampler
    from thresher.tiny_models import build_causal_lm

    path = build_causal_lm(tmp_path / "plain")
    (path / "chat_template.jinja").unlink(missing_ok=True)
    cfg_path = path / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="has no chat template"):
        HFSampler(str(path))
