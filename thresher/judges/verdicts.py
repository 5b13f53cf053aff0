"""What a verdict means for selection: the score it ranks its candidate by, and the verifier gate.

Two parts of thresher decide "verifier passes, then rank": the `gate` judge
combinator (a verifier and a ranker run as one judge) and the `gated`
selection policy (verdicts of verifiers and a ranker, read back from a
round's files). Both go through `pass_gate` here, so a candidate passes, fails or
errors the same way in both, and its rank is the same number.

Rules:
- a verdict with `error` set is never a score (`judge_score` gives None);
- a candidate passes the gate only when every gate verifier has a verdict on
  it, none failed on it, and each marked it correct;
- a gate verifier's error is the candidate's error (never "wrong");
- a candidate that passed is ranked by the ranker's `judge_score`; the
  ranker's error on it is its error, and no ranker verdict means "passed,
  unranked".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from thresher.records import Verdict


def judge_score(v: Verdict | None) -> float | None:
    """The number a verdict ranks its candidate by, or None when it gives none.

    A failed verdict (`error` set) gives None, never a low score. Verifiers
    without a score rank correct (1) above wrong (0); a listwise judge that
    gives only a rank ranks by -rank (rank 1 best), one that only marks its
    choice by chosen (1) over the rest (0).
    """
    if v is None or v.error is not None:
        return None
    if v.score is not None:
        return float(v.score)
    if v.correct is not None:
        return 1.0 if v.correct else 0.0
    rank = v.metadata.get("rank")
    if isinstance(rank, int | float) and not isinstance(rank, bool):
        return -float(rank)
    chosen = v.metadata.get("chosen")
    if isinstance(chosen, bool):
        return 1.0 if chosen else 0.0
    return None


def brief(v: Verdict) -> dict[str, Any]:
    """A sub-judge's verdict as a combined verdict keeps it in `metadata["judges"]`."""
    return {"score": v.score, "correct": v.correct, "error": v.error}


@dataclass(slots=True)
class Gated:
    """One candidate through the gate, and then the ranker."""

    passed: bool
    """Every gate verifier marked it correct."""
    correct: bool | None
    """True when it passed; False when a gate said wrong; None when no gate said either."""
    score: float | None = None
    """The ranker's score (`judge_score`), when it passed and the ranker gave one (never with an error)."""
    error: str | None = None
    """`judge: error` of the gate verifier or the ranker that failed on it."""
    ranked: bool = False
    """The ranker has a verdict on it (given it passed)."""
    critique: str | None = None
    judges: dict[str, dict[str, Any]] = field(default_factory=dict)

    def verdict(self, candidate_id: str, name: str) -> Verdict:
        """The combined verdict a `gate` judge named `name` writes."""
        return Verdict(
            candidate_id, name, score=self.score, correct=self.correct, critique=self.critique, error=self.error,
            metadata={"judges": self.judges},
        )


def pass_gate(gates: Mapping[str, Verdict | None], ranker: str, ranked: Verdict | None) -> Gated:
    """Pass `gates` (verifier name -> its verdict on the candidate, None if it has none), then rank."""
    judges = {name: brief(v) for name, v in gates.items() if v is not None}
    errors = [f"{name}: {v.error}" for name, v in gates.items() if v is not None and v.error is not None]
    if errors:
        return Gated(False, None, error="; ".join(errors), judges=judges)
    failed = [(name, v) for name, v in gates.items() if v is None or v.correct is not True]
    if failed:
        name, v = failed[0]
        correct = False if any(v is not None and v.correct is False for _, v in failed) else None
        why = "no verdict" if v is None else v.critique or "no detail"
        return Gated(False, correct, critique=f"Failed the gate ({name}): {why}", judges=judges)
    critiques = [v.critique for v in gates.values() if v is not None and v.critique]
    if ranked is None:
        return Gated(True, True, critique="\n\n".join(critiques) or None, judges=judges)
    judges[ranker] = brief(ranked)
    if ranked.error is not None:
        return Gated(True, True, error=f"{ranker}: {ranked.error}", ranked=True, judges=judges)
    critiques += [ranked.critique] if ranked.critique else []
    return Gated(
        True, True, score=judge_score(ranked), ranked=True, critique="\n\n".join(critiques) or None, judges=judges
    )
