"""What to sample and how: the shape of vLLM's `SamplingParams`, for every backend.

Each backend (vLLM, transformers, OpenAI-compatible) maps these fields onto its
own API, so a recipe's sampling block means the same thing whichever backend
runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from thresher.records import Candidate, Prompt


@dataclass(slots=True)
class SamplingParams:
    n: int = 1
    """Candidates to draw per prompt."""
    temperature: float = 1.0
    """Softmax temperature; 0 means greedy (and then n > 1 repeats the same answer)."""
    top_p: float = 1.0
    """Nucleus sampling: keep the smallest token set whose probability reaches top_p."""
    max_tokens: int = 512
    """Longest answer in tokens; an answer cut here has finish_reason "length"."""
    stop: list[str] = field(default_factory=list)
    """Strings that end an answer early (not included in the text)."""
    seed: int | None = None
    """Seed for reproducible sampling; None draws a fresh one per run."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n: must be at least 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens: must be at least 1, got {self.max_tokens}")


class Sampler(Protocol):
    """A model that answers prompts. Output order follows input order.

    `sample(prompts, params)[i]` holds `params.n` candidates for `prompts[i]`,
    with indices 0..n-1; a resumed stage that asks only for missing answers
    relabels the indices itself, so a backend never needs to know.
    """

    name: str

    def sample(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Candidate]]: ...
