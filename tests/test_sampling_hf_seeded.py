"""Per-answer seeded sampling for transformers: the right distribution, independent rows, no shared state."""

from __future__ import annotations

import torch

from thresher.sampling.hf_seeded import SeededSampling, uniforms


def _draw(seeds: list[int], logits: list[float], step: int = 0, **kw: float) -> torch.Tensor:
    proc = SeededSampling(seeds, prompt_len=5, temperature=kw.get("temperature", 1.0), top_p=kw.get("top_p", 1.0))
    scores = torch.tensor([logits] * len(seeds))
    out = proc(torch.zeros(len(seeds), 5 + step, dtype=torch.long), scores)
    assert torch.isfinite(out).sum(dim=-1).tolist() == [1] * len(seeds)  # one token left per row
    return out.argmax(dim=-1)


def test_uniforms_are_uniform_and_differ_by_seed_and_step():
    seeds = torch.arange(20_000, dtype=torch.int64)
    u0, u1 = uniforms(seeds, 0), uniforms(seeds, 1)
    assert 0.0 <= float(u0.min()) and float(u0.max()) < 1.0
    assert abs(float(u0.mean()) - 0.5) < 0.01
    hist = torch.histc(u0, bins=10, min=0, max=1) / len(seeds)
    assert float((hist - 0.1).abs().max()) < 0.01
    assert float((u0 - u1).abs().mean()) > 0.3  # another step, another number
    assert abs(float(torch.corrcoef(torch.stack([u0, u1]))[0, 1])) < 0.03


def test_draws_follow_the_softmax_distribution():
    logits = [0.0, 1.0, 2.0, 3.0]
    tokens = _draw(list(range(40_000)), logits)
    freq = torch.bincount(tokens, minlength=4).float() / len(tokens)
    want = torch.softmax(torch.tensor(logits), dim=-1)
    assert float((freq - want).abs().max()) < 0.01


def test_temperature_and_top_p_shape_the_distribution():
    logits = [0.0, 1.0, 2.0, 3.0]
    hot = _draw(list(range(40_000)), logits, temperature=2.0)
    want = torch.softmax(torch.tensor(logits) / 2.0, dim=-1)
    assert float((torch.bincount(hot, minlength=4).float() / 40_000 - want).abs().max()) < 0.01
    # top_p 0.7: softmax is [0.032, 0.087, 0.237, 0.644]; the nucleus is tokens 3 and 2.
    nucleus = _draw(list(range(10_000)), logits, top_p=0.7)
    assert set(nucleus.tolist()) == {2, 3}


def test_a_row_draws_the_same_token_whatever_else_is_in_the_batch():
    logits = [0.5, 0.1, 0.9, 0.3, 0.7]
    alone = [int(_draw([seed], logits, step=3)[0]) for seed in (11, 12, 13, 14)]
    together = _draw([14, 13, 99, 12, 11], logits, step=3).tolist()
    assert [together[4], together[3], together[1], together[0]] == alone
