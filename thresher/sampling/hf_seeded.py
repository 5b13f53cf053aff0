"""Per-answer random streams for transformers `generate`: a prompt's answers do not depend on its batch.

`generate(do_sample=True)` draws every row's next token from one torch
generator, so an answer depends on which rows share its batch: split the
same prompts into other chunks (a resumed stage, a cluster's replicas, a
different `batch_size`) and every answer changes. vLLM seeds each request on
its own; this gives the transformers backend the same property.

Each row (one answer of one prompt) gets a seed derived from the base seed,
the prompt id and the answer's index. At every step the row's token is drawn
by inverse CDF from the temperature / top-p distribution with one uniform
number that is a hash of (row seed, step): a counter-based stream, so no
generator state is shared between rows and nothing depends on batch order.
The draw is exactly a sample from the same distribution `do_sample` uses;
the processor hands `generate` a distribution with all mass on the chosen
token, and greedy decoding picks it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper

_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """`x * c mod 2**32` for x < 2**32 in int64, split so no product overflows int64."""
    lo = x * (c & 0xFFFF)
    hi = ((x * (c >> 16)) & 0xFFFF) << 16
    return (lo + hi) & _MASK32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (lowbias32): every input bit changes about half of the output bits."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniforms(seeds: torch.Tensor, step: int) -> torch.Tensor:
    """One float in [0, 1) per row: a hash of (row seed, step), 24 random bits each."""
    step_key = (step * 0x9E3779B9) & _MASK32
    bits = _mix32(_mix32(seeds) ^ step_key)
    return (bits >> 8).to(torch.float32) / float(1 << 24)


class SeededSampling(LogitsProcessor):
    """Picks each row's next token from that row's own stream; `generate` then runs greedy.

    `row_seeds[i]` is the seed of row i of the batch `generate` sees (prompts
    already repeated n times); `prompt_len` is the padded prompt length, so
    `input_ids.shape[1] - prompt_len` counts the tokens generated so far.
    """

    def __init__(self, row_seeds: Sequence[int], prompt_len: int, temperature: float, top_p: float):
        self.row_seeds = torch.tensor(list(row_seeds), dtype=torch.int64)
        self.prompt_len = prompt_len
        self.warpers: list[LogitsProcessor] = []
        if temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(temperature))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        cdf = probs.cumsum(dim=-1)
        u = uniforms(self.row_seeds.to(scores.device), input_ids.shape[1] - self.prompt_len)
        target = (u * cdf[:, -1]).unsqueeze(-1)
        token = torch.searchsorted(cdf, target, right=True).squeeze(-1)
        # u * total can round up to the total in float32: fall back to the last token with any mass.
        vocab = torch.arange(probs.shape[-1], device=probs.device)
        last_possible = torch.where(probs > 0, vocab, -1).amax(dim=-1)
        token = torch.minimum(token, last_possible)
        picked = torch.full_like(scores, float("-inf"))
        picked.scatter_(1, token.unsqueeze(-1), 0.0)
        return picked
