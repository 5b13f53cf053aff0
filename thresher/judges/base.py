"""The Judge protocol, and the adapter that lifts a plain reward function into one.

A judge turns candidates into verdicts in one batched call. The return type
says what failure looks like: a `Verdict` with `error` set, never a sentinel
score. Many verifiers are naturally plain functions returning
`list[float | None]` (TRL's reward functions look like that);
`function_judge` makes them judges without a class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from thresher.errors import UserError
from thresher.records import Candidate, Prompt, Verdict


@runtime_checkable
class Judge(Protocol):
    """Scores candidates. `judge(prompts, candidates)[i][j]` is the verdict on `candidates[i][j]`.

    Output order follows input order. A failure on one candidate (a timeout,
    unparseable judge output) is that verdict's `error`; an exception means the
    judge itself is broken (a missing model) and stops the stage.
    """

    name: str
    kind: str
    """What its verdicts are, one of `JUDGE_KINDS`; the judge stage records it on each verdict."""

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]: ...


JUDGE_KINDS = ("verifier", "reward", "llm", "pairwise", "listwise")
"""verifier: says `correct` (math, code, a gate); reward: scores only (a reward model, a function);
llm: pointwise scores with critiques; pairwise / listwise: LLM comparisons of a prompt's candidates."""


def judge_kind(judge: object) -> str:
    """The kind a judge declares (`Judge.kind`), checked: selection reads it and never guesses."""
    kind = getattr(judge, "kind", None)
    if kind not in JUDGE_KINDS:
        name = getattr(judge, "name", type(judge).__name__)
        raise UserError(
            f"judge {name!r} declares kind {kind!r}; a judge needs a `kind` attribute, one of {', '.join(JUDGE_KINDS)}"
        )
    return kind


def record_kind(judge: object, rows: list[list[Verdict]]) -> list[list[Verdict]]:
    """Write the judge's kind on each of its verdicts, so export reads it from the verdict files."""
    kind = judge_kind(judge)
    for row in rows:
        for v in row:
            v.kind = kind
    return rows


RewardFunction = Callable[[list[Prompt], list[str]], list["float | None"]]
"""`fn(prompts, completions) -> scores`, one prompt per completion (repeated for N completions)."""


class FunctionJudge:
    """A judge around `fn(prompts, completions) -> list[float | None]`; None means "no opinion"."""

    kind = "reward"

    def __init__(self, fn: RewardFunction, name: str):
        self.fn = fn
        self.name = name

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        flat_prompts = [p for p, cs in zip(prompts, candidates) for _ in cs]
        flat = [c for cs in candidates for c in cs]
        scores = list(self.fn(flat_prompts, [c.text for c in flat]))
        if len(scores) != len(flat):
            raise ValueError(f"judge {self.name!r}: function returned {len(scores)} scores for {len(flat)} completions")
        verdicts = []
        for c, s in zip(flat, scores):
            if s is not None and not isinstance(s, int | float):
                raise TypeError(
                    f"judge {self.name!r}: function returned {type(s).__name__} {s!r}, expected float or None"
                )
            verdicts.append(Verdict(candidate_id=c.id, judge=self.name, score=None if s is None else float(s)))
        return unflatten(verdicts, candidates)


def function_judge(fn: RewardFunction, name: str) -> FunctionJudge:
    """Lift a plain reward function into a Judge named `name`."""
    return FunctionJudge(fn, name)


def check_shapes(prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> None:
    """Fail loudly if the candidate lists do not line up with the prompts."""
    if len(prompts) != len(candidates):
        raise ValueError(f"{len(prompts)} prompts but {len(candidates)} candidate lists")
    for p, cs in zip(prompts, candidates):
        for c in cs:
            if c.prompt_id != p.id:
                raise ValueError(f"candidate {c.id} is listed under prompt {p.id}")


def unflatten(flat: Sequence[Verdict], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
    """Cut a flat verdict list back into the per-prompt shape of `candidates`."""
    out, i = [], 0
    for cs in candidates:
        out.append(list(flat[i : i + len(cs)]))
        i += len(cs)
    if i != len(flat):
        raise ValueError(f"{len(flat)} verdicts for {i} candidates")
    return out


def close_judge(judge: object) -> None:
    """Release what a judge holds (worker processes, a model on the GPU), if it holds anything."""
    close = getattr(judge, "close", None)
    if callable(close):
        close()
