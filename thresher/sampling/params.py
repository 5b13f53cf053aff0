"""What to sample and how: the shape of vLLM's `SamplingParams`, for every backend; the Sampler protocol.

Each backend (vLLM, transformers, OpenAI-compatible) maps these fields onto its
own API, so a recipe's sampling block means the same thing whichever backend
runs it.

A request the backend rejects on its own (a prompt longer than the model's
context, a 400 from a server) does not stop a batch: it comes back as that
item's candidates with `finish_reason == "error"` and the reason in
`metadata["error"]` (`item_error`). Callers decide what an item's failure
means: a judge records it as the verdict's error, prompt synthesis as a
rejected text, the sampling stage keeps it as that candidate's recorded error
(counted in its summary; export drops it as `sampling_error`), and eval stops
with a message naming the prompt (`raise_item_errors`), since a held-out
prompt without an answer would skew its metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from thresher.errors import UserError
from thresher.records import Candidate, Prompt
from thresher.typed import NonNegativeFloat, PositiveInt, between, check_fields


@dataclass(slots=True)
class SamplingParams:
    n: PositiveInt = 1
    """Candidates to draw per prompt."""
    temperature: NonNegativeFloat = 1.0
    """Softmax temperature; 0 means greedy (and then n > 1 repeats the same answer)."""
    top_p: Annotated[float, between(0, 1, low_open=True)] = 1.0
    """Nucleus sampling: keep the smallest token set whose probability reaches top_p."""
    max_tokens: PositiveInt = 512
    """Longest answer in tokens; an answer cut here has finish_reason "length"."""
    stop: list[str] = field(default_factory=list)
    """Strings that end an answer early (not included in the text)."""
    seed: int | None = None
    """Seed for reproducible sampling; None draws a fresh one per run."""

    def __post_init__(self) -> None:
        check_fields(self)


class Sampler(Protocol):
    """A model that answers prompts. Output order follows input order.

    `sample(prompts, params)[i]` holds `params.n` candidates for `prompts[i]`,
    with indices 0..n-1; a resumed stage that asks only for missing answers
    relabels the indices itself, so a backend never needs to know.
    """

    name: str

    def sample(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Candidate]]: ...

    def complete(self, texts: Sequence[str], params: SamplingParams) -> list[list[Candidate]]:
        """`params.n` raw continuations of each text (no chat template), in input order.

        For methods that write their own template (Magpie writes the start of a
        user turn). The candidates' `prompt_id` is empty: a raw text is no prompt.
        """
        ...


ERROR = "error"
"""`finish_reason` of a candidate standing for a request the backend rejected."""


def failed(prompt_id: str, model: str, index: int, why: str) -> Candidate:
    """The candidate a rejected request leaves: no text, `finish_reason` "error", the reason in metadata."""
    return Candidate(prompt_id, model, index, "", num_tokens=0, finish_reason=ERROR, metadata={"error": why})


def item_error(candidate: Candidate) -> str | None:
    """Why the backend rejected this candidate's request, or None for a real answer."""
    return candidate.metadata.get("error", "rejected") if candidate.finish_reason == ERROR else None


def raise_item_errors(candidates: Iterable[Candidate], model: str) -> None:
    """Stop with one line naming the first prompt the backend rejected (for stages that need every answer)."""
    failed = [c for c in candidates if item_error(c) is not None]
    if failed:
        bad = len({c.prompt_id for c in failed})
        raise UserError(
            f"model {model!r} rejected prompt {failed[0].prompt_id!r} ({item_error(failed[0])})"
            + (f"; {bad} prompts in this batch were rejected" if bad > 1 else "")
        )
