"""Math verifier: extract the final answer and compare it with the reference on math-verify.

The comparison is symbolic (1/2 = 0.5 = \\frac{1}{2}, 50% = 0.5, sets and
intervals as math-verify compares them). Each item runs in a worker process
with a hard timeout: sympy can hang on a pathological expression, and
math-verify's own SIGALRM timeout does not work outside the main thread. A
timeout is a `Verdict.error`, never "wrong".

The extracted answer goes in `Verdict.metadata["answer"]` (and its sympy form
in `"canonical"`), so the feedback stage can vote over equivalent answers,
also on prompts without a reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thresher.judges.answers import extract_answer, read_answer, same_answer
from thresher.judges.base import check_shapes, unflatten
from thresher.judges.workers import Outcome, TimeoutPool
from thresher.records import Candidate, Prompt, Verdict
from thresher.typed import PositiveFloat, PositiveInt


def verify_answer(item: tuple[str, str | None]) -> dict[str, Any]:
    """Judge one (solution text, reference) pair; runs in a worker process, may be killed there.

    Returns a plain dict (it crosses a pipe): correct (True/False/None when
    there is no reference), answer, canonical, rule and a one-line critique.
    """
    text, reference = item
    found = extract_answer(text)
    out: dict[str, Any] = {"correct": None, "answer": None, "canonical": None, "rule": None}
    if found is None:
        out["correct"] = False if reference is not None else None
        out["critique"] = "No final answer found (no \\boxed{}, no 'the answer is', no number)."
        return out
    out["answer"], out["rule"], out["canonical"] = found.answer, found.rule, found.canonical
    read = found.canonical or "text"
    if reference is None:
        out["critique"] = f"Extracted {found.answer!r} ({found.rule}), read as {read}; the prompt has no reference answer."
        return out
    gold = read_answer(reference)
    if not gold.answer:
        raise ValueError(f"reference answer {reference!r} states no answer")
    ok = same_answer(gold, found)
    relation = "equals" if ok else "does not equal"
    out["correct"] = ok
    out["critique"] = (
        f"Extracted {found.answer!r} ({found.rule}), read as {read}; "
        f"it {relation} the reference {reference!r}, read as {gold.canonical or 'text'}."
    )
    return out


def warm_up() -> None:
    """Import math-verify and run one comparison, so the first real item is not charged for it."""
    verify_answer(("\\boxed{\\frac{1}{2}}", "0.5"))


class MathVerifier:
    """Judge: 1.0 / correct when the extracted answer equals the reference symbolically, 0.0 otherwise."""

    kind = "verifier"

    def __init__(self, timeout: float = 5.0, workers: int = 2, name: str = "math"):
        self.name = name
        self.timeout = timeout
        self.pool = TimeoutPool(verify_answer, workers=workers, timeout=timeout, initializer=warm_up)

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        flat = [c for cs in candidates for c in cs]
        items = [(c.text, p.reference) for p, cs in zip(prompts, candidates) for c in cs]
        verdicts: list[Verdict] = [None] * len(flat)  # type: ignore[list-item]
        for i, outcome in self.pool.imap(items):  # records are made while the workers run the next batches
            verdicts[i] = self._verdict(flat[i].id, outcome)
        return unflatten(verdicts, candidates)

    def _verdict(self, candidate_id: str, outcome: Outcome) -> Verdict:
        if outcome.error is not None:
            return Verdict(candidate_id, self.name, error=outcome.error)
        r = outcome.value
        meta = {k: r[k] for k in ("answer", "canonical", "rule") if r[k] is not None}
        score = None if r["correct"] is None else float(r["correct"])
        return Verdict(candidate_id, self.name, score=score, correct=r["correct"], critique=r["critique"], metadata=meta)

    def close(self) -> None:
        self.pool.close()


def math_verifier(timeout: PositiveFloat = 5.0, workers: PositiveInt = 2, name: str = "math") -> MathVerifier:
    """Math answers checked against `Prompt.reference`, `workers` processes, `timeout` seconds per item."""
    return MathVerifier(timeout=timeout, workers=workers, name=name)
