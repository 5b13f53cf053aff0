"""DPO preference pairs that are honest: never a tie, never the same text, never a verifier overruled.

A rule proposes (chosen, rejected) pairs from one prompt's selection:

- `best_vs_worst`: the policy's best kept candidate against the lowest-scored;
- `best_vs_random`: the best against a seeded random other candidate;
- `margin`: every pair of scored candidates whose scores differ by at least
  `min_margin` (capped per prompt, widest margins first);
- `on_policy`: the best from anywhere against the student's worst answer, so
  the rejected text is what the model being trained actually writes.

Scores are the policy's ranking scores (the selecting judge). Every proposed
pair is then checked, in this order, and a failing pair is dropped and
counted under its reason: `identical_text`, `whitespace_identical`,
`chosen_failed_verifier` (a verifier failed the chosen answer but passed the
rejected one), `tie` (equal scores), `not_better` (chosen scored lower),
`below_margin`. Rules that cannot propose a pair for a prompt count why:
`no_chosen` (the policy kept nothing), `no_rejected`, `no_student_answer`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from thresher.feedback.groups import PromptGroup
from thresher.feedback.policies import Selection, prompt_rng, tie_key
from thresher.records import Candidate, PreferencePair
from thresher.typed import NonNegativeFloat, PositiveInt, check_fields, to_data

_SPACE = re.compile(r"\s+")


@dataclass(slots=True)
class DpoOptions:
    """`export.args.dpo`: how pairs are checked and how many a prompt may give."""

    min_margin: NonNegativeFloat = 0.0
    """Smallest score gap a pair may have (a gap of 0, a tie, is always dropped)."""
    max_pairs_per_prompt: PositiveInt = 4
    """Cap for the `margin` rule, which can propose n*(n-1)/2 pairs."""

    def __post_init__(self) -> None:
        check_fields(self)


Proposal = tuple[list[tuple[Candidate, Candidate]], str | None]


@dataclass(slots=True)
class PairContext:
    group: PromptGroup
    selection: Selection
    students: frozenset[str]
    seed: int


def _scored(ctx: PairContext) -> list[Candidate]:
    return [c for c in ctx.group.candidates if c.id in ctx.selection.scores]


def _worst(cands: Sequence[Candidate], ctx: PairContext) -> Candidate:
    return min(cands, key=lambda c: (ctx.selection.scores[c.id], tie_key(ctx.seed, c.id)))


def best_vs_worst(ctx: PairContext) -> Proposal:
    if not ctx.selection.kept:
        return [], "no_chosen"
    chosen = ctx.selection.kept[0].candidate
    pool = [c for c in _scored(ctx) if c.id != chosen.id]
    return ([(chosen, _worst(pool, ctx))], None) if pool else ([], "no_rejected")


def best_vs_random(ctx: PairContext) -> Proposal:
    if not ctx.selection.kept:
        return [], "no_chosen"
    chosen = ctx.selection.kept[0].candidate
    pool = sorted((c for c in _scored(ctx) if c.id != chosen.id), key=lambda c: c.id)
    if not pool:
        return [], "no_rejected"
    return [(chosen, prompt_rng(ctx.seed, ctx.group.prompt.id, "dpo-random").choice(pool))], None


def all_pairs(ctx: PairContext) -> Proposal:
    scored = _scored(ctx)
    if len(scored) < 2:
        return [], "no_rejected"
    s = ctx.selection.scores
    pairs = []
    for i, a in enumerate(scored):
        for b in scored[i + 1 :]:
            hi, lo = (a, b) if (s[a.id], tie_key(ctx.seed, a.id)) >= (s[b.id], tie_key(ctx.seed, b.id)) else (b, a)
            pairs.append((hi, lo))
    return pairs, None


def on_policy(ctx: PairContext) -> Proposal:
    if not ctx.selection.kept:
        return [], "no_chosen"
    chosen = ctx.selection.kept[0].candidate
    pool = [c for c in _scored(ctx) if c.model in ctx.students and c.id != chosen.id]
    return ([(chosen, _worst(pool, ctx))], None) if pool else ([], "no_student_answer")


DPO_RULES: dict[str, Callable[[PairContext], Proposal]] = {
    "best_vs_worst": best_vs_worst,
    "best_vs_random": best_vs_random,
    "margin": all_pairs,
    "on_policy": on_policy,
}
"""Pair rules, by the name `export.dpo` uses."""


def pair_problem(chosen: Candidate, rejected: Candidate, ctx: PairContext, min_margin: float) -> str | None:
    """Why this pair must not be trained on, or None when it is sound."""
    if chosen.text == rejected.text:
        return "identical_text"
    if _SPACE.sub(" ", chosen.text).strip() == _SPACE.sub(" ", rejected.text).strip():
        return "whitespace_identical"
    chosen_ok = ctx.group.verifier_results(chosen.id)
    rejected_ok = ctx.group.verifier_results(rejected.id)
    if any(ok is False and rejected_ok.get(j) is True for j, ok in chosen_ok.items()):
        return "chosen_failed_verifier"
    margin = ctx.selection.scores[chosen.id] - ctx.selection.scores[rejected.id]
    if margin == 0:
        return "tie"
    if margin < 0:
        return "not_better"
    if margin < min_margin:
        return "below_margin"
    return None


class PairBuilder:
    """Proposes, checks and formats one prompt's pairs; counts every dropped pair by reason."""

    def __init__(self, rule: str, options: DpoOptions, students: frozenset[str], policy: str, seed: int):
        self.rule = rule
        self.propose = DPO_RULES[rule]
        self.options = options
        self.students = students
        self.policy = policy
        self.seed = seed
        self.dropped: Counter[str] = Counter()

    def pairs(self, group: PromptGroup, selection: Selection) -> list[dict[str, Any]]:
        ctx = PairContext(group, selection, self.students, self.seed)
        proposed, why = self.propose(ctx)
        if why is not None:
            self.dropped[why] += 1
        good = []
        for chosen, rejected in proposed:
            problem = pair_problem(chosen, rejected, ctx, self.options.min_margin)
            if problem is None:
                good.append((chosen, rejected))
            else:
                self.dropped[problem] += 1
        if len(good) > self.options.max_pairs_per_prompt:
            s = selection.scores
            good.sort(key=lambda p: (-(s[p[0].id] - s[p[1].id]), tie_key(self.seed, p[0].id + p[1].id)))
            self.dropped["over_pair_cap"] += len(good) - self.options.max_pairs_per_prompt
            good = good[: self.options.max_pairs_per_prompt]
        return [self._row(group, selection, c, r) for c, r in good]

    def _row(self, group: PromptGroup, selection: Selection, chosen: Candidate, rejected: Candidate) -> dict[str, Any]:
        cs, rs = selection.scores[chosen.id], selection.scores[rejected.id]
        pair = PreferencePair(
            prompt_id=group.prompt.id,
            task=group.prompt.task,
            prompt=group.prompt.messages,
            chosen=[{"role": "assistant", "content": chosen.text}],
            rejected=[{"role": "assistant", "content": rejected.text}],
            chosen_score=cs,
            rejected_score=rs,
            margin=cs - rs,
            rule=self.rule,
            chosen_model=chosen.model,
            rejected_model=rejected.model,
            metadata={
                "judge": selection.judge,
                "policy": self.policy,
                "chosen_id": chosen.id,
                "rejected_id": rejected.id,
            },
        )
        return to_data(pair)
