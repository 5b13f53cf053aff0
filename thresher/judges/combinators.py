"""Judges made of judges: a verifier gate before a reward model, a weighted ensemble, a majority vote.

- `GateJudge`: the verifier decides correctness; only candidates that pass
  are ranked by the ranker (a reward model, say), so the ranker's preferences
  never lift a wrong answer above a right one, and it spends no compute on
  wrong ones. Failed candidates keep `correct=False` and no score.
- `EnsembleJudge`: a weighted mean of the sub-judges' scores, optionally
  normalised per prompt first (scores of a reward model and a 1..10 rubric do
  not share a scale).
- `VoteJudge`: each sub-judge votes correct / incorrect (its `correct`, or
  its score against a threshold); the majority decides.

A sub-judge's error is never averaged away: the gate and the ensemble report
it as their own error; the vote lets an erroring judge abstain and says so.
Each combined verdict keeps the sub-verdicts' scores in `metadata["judges"]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from thresher.judges.base import Judge, check_shapes, close_judge
from thresher.judges.verdicts import brief, pass_gate
from thresher.records import Candidate, Prompt, Verdict


def _select(candidates: Sequence[Sequence[Candidate]], keep: list[list[bool]]) -> list[list[Candidate]]:
    return [[c for c, k in zip(cs, ks) if k] for cs, ks in zip(candidates, keep)]


class GateJudge:
    """Verifier, then ranker, as one judge; the decision is `verdicts.pass_gate`, as in policy `gated`."""

    kind = "verifier"

    def __init__(self, verifier: Judge, ranker: Judge, name: str = "gate"):
        self.verifier = verifier
        self.ranker = ranker
        self.name = name

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        checked = self.verifier.judge(prompts, candidates)
        gated = [[pass_gate({self.verifier.name: v}, self.ranker.name, None) for v in row] for row in checked]
        ranked_rows = iter(self.ranker.judge(prompts, _select(candidates, [[g.passed for g in row] for row in gated])))
        out = []
        for cs, row, gs in zip(candidates, checked, gated):
            ranked = iter(next(ranked_rows))
            verdicts = []
            for c, v, g in zip(cs, row, gs):
                if g.passed:
                    g = pass_gate({self.verifier.name: v}, self.ranker.name, next(ranked))
                verdicts.append(g.verdict(c.id, self.name))
            out.append(verdicts)
        return out

    def close(self) -> None:
        close_judge(self.verifier)
        close_judge(self.ranker)


def _normalise(values: list[float | None], how: str) -> list[float | None]:
    """Per-prompt normalisation of one judge's scores: min-max to [0, 1] or rank to [0, 1]."""
    present = [v for v in values if v is not None]
    if how == "none" or not present:
        return values
    if how == "minmax":
        lo, hi = min(present), max(present)
        return [None if v is None else (0.5 if hi == lo else (v - lo) / (hi - lo)) for v in values]
    ordered = sorted(present)  # rank: ties share their mean rank
    n = len(ordered)

    def rank(v: float) -> float:
        first = ordered.index(v)
        last = n - 1 - ordered[::-1].index(v)
        return 0.5 if n == 1 else (first + last) / 2 / (n - 1)

    return [None if v is None else rank(v) for v in values]


class EnsembleJudge:
    def __init__(
        self, judges: list[Judge], weights: list[float], normalize: Literal["none", "minmax", "rank"], name: str
    ):
        # its verdicts say `correct` (all sub-verifiers agree) only when a sub-judge is a verifier
        self.kind = "verifier" if any(getattr(j, "kind", None) == "verifier" for j in judges) else "reward"
        self.judges = judges
        self.weights = weights
        self.normalize = normalize
        self.name = name

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        results = [j.judge(prompts, candidates) for j in self.judges]
        out = []
        for k, cs in enumerate(candidates):
            rows = [r[k] for r in results]
            normed = [_normalise([v.score if v.ok else None for v in row], self.normalize) for row in rows]
            verdicts = []
            for m, c in enumerate(cs):
                subs = [row[m] for row in rows]
                meta = {"judges": {j.name: brief(v) for j, v in zip(self.judges, subs)}}
                errors = [f"{j.name}: {v.error}" for j, v in zip(self.judges, subs) if not v.ok]
                if errors:
                    verdicts.append(Verdict(c.id, self.name, error="; ".join(errors), metadata=meta))
                    continue
                pairs = [(w, n[m]) for w, n in zip(self.weights, normed) if n[m] is not None]
                total = sum(w for w, _ in pairs)
                score = sum(w * s for w, s in pairs) / total if pairs and total else None
                votes = [v.correct for v in subs if v.correct is not None]
                correct = all(votes) if votes else None
                verdicts.append(Verdict(c.id, self.name, score=score, correct=correct, metadata=meta))
            out.append(verdicts)
        return out

    def close(self) -> None:
        for j in self.judges:
            close_judge(j)


class VoteJudge:
    kind = "verifier"

    def __init__(self, judges: list[Judge], threshold: float | None, name: str):
        self.judges = judges
        self.threshold = threshold
        self.name = name

    def _vote(self, v: Verdict) -> bool | None:
        if not v.ok:
            return None
        if v.correct is not None:
            return v.correct
        if self.threshold is not None and v.score is not None:
            return v.score >= self.threshold
        return None

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        results = [j.judge(prompts, candidates) for j in self.judges]
        out = []
        for k, cs in enumerate(candidates):
            verdicts = []
            for m, c in enumerate(cs):
                subs = [r[k][m] for r in results]
                votes = [self._vote(v) for v in subs]
                meta: dict[str, Any] = {"judges": {j.name: brief(v) for j, v in zip(self.judges, subs)}}
                yes, no = votes.count(True), votes.count(False)
                errored = [j.name for j, v in zip(self.judges, subs) if not v.ok]
                meta.update(yes=yes, no=no, abstained=len(votes) - yes - no)
                if yes + no == 0:
                    if errored:
                        why = "; ".join(f"{j.name}: {v.error}" for j, v in zip(self.judges, subs) if not v.ok)
                        verdicts.append(Verdict(c.id, self.name, error=f"no judge could vote ({why})", metadata=meta))
                    else:
                        verdicts.append(Verdict(c.id, self.name, critique="No judge had an opinion.", metadata=meta))
                    continue
                correct = True if yes > no else False if no > yes else None
                critique = f"{yes} of {yes + no} voting judges say correct" + (
                    f"; {', '.join(errored)} failed and abstained" if errored else ""
                )
                verdicts.append(
                    Verdict(c.id, self.name, score=yes / (yes + no), correct=correct, critique=critique, metadata=meta)
                )
            out.append(verdicts)
        return out

    def close(self) -> None:
        for j in self.judges:
            close_judge(j)
