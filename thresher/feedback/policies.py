"""Selection policies: which candidates of a prompt are kept, and which judge says so.

A policy is built by a plain function from the registry `POLICIES` with the
recipe's `selection.args`, and has one batched method, `select(groups,
judges)`. For each prompt it returns the kept candidates, each with the judge
and score that justify it, the score it ranks every candidate by (DPO pairs
are drawn from those), and, when nothing passed, why. Nothing is dropped
silently: a prompt where no candidate passed is a `Selection` with no kept
candidates and a reason, which the export stage counts and lists.

Rules every policy keeps:
- a verdict with `error` set is never a score: that candidate is simply not
  ranked by that judge (and the stage counts the error);
- a candidate the selecting judge marked wrong (`correct` False) is never kept;
- ties are broken by a seeded hash of the candidate id, never by file order,
  so teachers written first do not win every tie;
- "which judge" is resolved once for the whole round from the judge catalog;
  when several judges could be meant the policy says so and asks to name one.

`random` is the control arm: it keeps candidates uniformly at random, seeded,
ignoring every judge, so a run can show that gains come from selection.
"""

from __future__ import annotations

import hashlib
import random as _random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from thresher.config import SelectionConfig
from thresher.errors import ConfigError, UserError
from thresher.feedback.groups import JudgeInfo, PromptGroup
from thresher.judges.answers import candidate_answer, cluster_answers
from thresher.judges.verdicts import Gated, pass_gate
from thresher.records import Candidate
from thresher.typed import Fraction, PositiveInt, args_type, call_args, from_data


@dataclass(slots=True)
class Kept:
    """A kept candidate and what justifies keeping it."""

    candidate: Candidate
    judge: str
    """The judge (or rule, e.g. `vote(math)`, `random`) that chose it."""
    score: float | None
    """The score it was kept by (None for the random control)."""


@dataclass(slots=True)
class Selection:
    """The outcome of a policy on one prompt."""

    prompt_id: str
    kept: list[Kept] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    """candidate id -> the score this policy ranks by, for every candidate it could rank."""
    judge: str | None = None
    reason: str | None = None
    """Why nothing passed (when `kept` is empty): no_candidates, no_verdicts, none_correct, ..."""

    @property
    def passed(self) -> bool:
        return bool(self.kept)


class Policy(Protocol):
    name: str
    ranks: bool
    """False for policies (the random control) whose `scores` cannot order candidates for DPO."""

    def select(self, groups: Sequence[PromptGroup], judges: Mapping[str, JudgeInfo]) -> list[Selection]: ...


def tie_key(seed: int, candidate_id: str) -> int:
    """A seeded, order-independent tie breaker."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{candidate_id}".encode(), digest_size=8).digest(), "big")


def prompt_rng(seed: int, prompt_id: str, purpose: str) -> _random.Random:
    """A generator seeded by (seed, prompt, purpose): the same draws whatever order prompts come in."""
    return _random.Random(f"{seed}:{purpose}:{prompt_id}")


def resolve_judge(
    judges: Mapping[str, JudgeInfo], name: str | None, policy: str, key: str = "judge", kinds: Sequence[str] = ()
) -> str:
    """The judge a policy selects by: the named one, or the only one that fits."""
    if name is not None:
        if name not in judges:
            known = ", ".join(sorted(judges)) or "none"
            raise ConfigError(f"selection.args.{key}", f"no verdicts from judge {name!r} (judges in this round: {known})")
        return name
    fitting = [j for j in judges.values() if (not kinds or j.kind in kinds) and j.verdicts > j.errors]
    if len(fitting) == 1:
        return fitting[0].name
    if not fitting:
        raise UserError(f"selection policy {policy!r}: no judge with usable verdicts in this round")
    names = ", ".join(sorted(f"{j.name} ({j.kind})" for j in fitting))
    raise ConfigError(
        f"selection.args.{key}",
        f"verdicts come from several judges ({names}); name the one policy {policy!r} selects by"
        + (" (or use policy 'gated' to rank verified answers by a reward model)" if policy in ("best", "top_k") else ""),
    )


def _ranked(group: PromptGroup, judge: str, seed: int) -> tuple[list[tuple[float, Candidate]], dict[str, float], int]:
    """Candidates the judge scored, best first; all their scores; how many it marked wrong."""
    scored = []
    scores: dict[str, float] = {}
    wrong = 0
    for c in group.candidates:
        v = group.verdict(c.id, judge)
        s = group.score(c.id, judge)
        if s is None:
            continue
        scores[c.id] = s
        if v is not None and v.correct is False:
            wrong += 1
            continue
        scored.append((s, c))
    scored.sort(key=lambda sc: (-sc[0], tie_key(seed, sc[1].id)))
    return scored, scores, wrong


def _no_pass_reason(group: PromptGroup, judge: str, wrong: int) -> str:
    if not group.candidates:
        return "no_candidates"
    vs = [group.verdict(c.id, judge) for c in group.candidates]
    if all(v is None for v in vs):
        return "no_verdicts"
    if all(v is None or v.error is not None for v in vs):
        return "all_verdicts_failed"
    if wrong:
        return "none_correct"
    return "below_threshold"


@dataclass(slots=True)
class _TopK:
    """best (k=1) and top_k: the k highest scores from one judge, above an optional floor."""

    name: str
    k: int
    judge: str | None
    min_score: float | None
    seed: int
    ranks: bool = True

    def select(self, groups: Sequence[PromptGroup], judges: Mapping[str, JudgeInfo]) -> list[Selection]:
        judge = resolve_judge(judges, self.judge, self.name)
        out = []
        for g in groups:
            ranked, scores, wrong = _ranked(g, judge, self.seed)
            if self.min_score is not None:
                ranked = [(s, c) for s, c in ranked if s >= self.min_score]
            kept = [Kept(c, judge, s) for s, c in ranked[: self.k]]
            out.append(Selection(g.prompt.id, kept, scores, judge, None if kept else _no_pass_reason(g, judge, wrong)))
        return out


def best(judge: str | None = None, min_score: float | None = None, seed: int | None = None) -> Policy:
    """Keep the single highest-scored candidate (verifier-failed ones never), optionally above `min_score`."""
    return _TopK("best", 1, judge, min_score, seed or 0)


def top_k(k: PositiveInt = 2, judge: str | None = None, min_score: float | None = None, seed: int | None = None) -> Policy:
    """Keep the `k` highest-scored candidates of each prompt."""
    return _TopK("top_k", k, judge, min_score, seed or 0)


@dataclass(slots=True)
class _Threshold:
    name: str
    judge: str | None
    min_score: float | None
    seed: int
    ranks: bool = True

    def select(self, groups: Sequence[PromptGroup], judges: Mapping[str, JudgeInfo]) -> list[Selection]:
        judge = resolve_judge(judges, self.judge, self.name)
        if self.min_score is None and judges[judge].kind != "verifier":
            raise ConfigError(
                "selection.args.min_score",
                f"policy 'threshold' keeps verified-correct answers by default, but judge {judge!r} "
                f"is a {judges[judge].kind} judge: set min_score",
            )
        out = []
        for g in groups:
            ranked, scores, wrong = _ranked(g, judge, self.seed)
            if self.min_score is None:
                ranked = [(s, c) for s, c in ranked if g.verdict(c.id, judge).correct is True]  # type: ignore[union-attr]
            else:
                ranked = [(s, c) for s, c in ranked if s >= self.min_score]
            kept = [Kept(c, judge, s) for s, c in ranked]
            out.append(Selection(g.prompt.id, kept, scores, judge, None if kept else _no_pass_reason(g, judge, wrong)))
        return out


def threshold(judge: str | None = None, min_score: float | None = None, seed: int | None = None) -> Policy:
    """Keep every candidate scoring at least `min_score`, or (no min_score) every verified-correct one."""
    return _Threshold("threshold", judge, min_score, seed or 0)


@dataclass(slots=True)
class _Gated:
    name: str
    gate: list[str] | None
    judge: str | None
    k: int
    min_score: float | None
    seed: int
    ranks: bool = True

    def select(self, groups: Sequence[PromptGroup], judges: Mapping[str, JudgeInfo]) -> list[Selection]:
        gates = self.gate or [j.name for j in judges.values() if j.kind == "verifier"]
        if not gates:
            raise ConfigError("selection.args.gate", "policy 'gated' needs a verifier judge (math, code); none judged")
        for name in gates:
            if name not in judges:
                raise ConfigError("selection.args.gate", f"no verdicts from judge {name!r}")
        others = {n: j for n, j in judges.items() if n not in gates}
        judge = resolve_judge(others, self.judge, self.name, kinds=("reward", "llm", "listwise", "pairwise"))
        return [self._one(g, gates, judge) for g in groups]

    def _one(self, g: PromptGroup, gates: list[str], judge: str) -> Selection:
        if not g.candidates:
            return Selection(g.prompt.id, judge=judge, reason="no_candidates")
        scores = {c.id: s for c in g.candidates if (s := g.score(c.id, judge)) is not None}
        results = {
            c.id: pass_gate({n: g.verdict(c.id, n) for n in gates}, judge, g.verdict(c.id, judge)) for c in g.candidates
        }
        ranked = sorted(
            ((r.score, c) for c in g.candidates if (r := results[c.id]).score is not None),  # a score: passed, ranked
            key=lambda sc: (-sc[0], tie_key(self.seed, sc[1].id)),
        )
        passing = [(s, c) for s, c in ranked if self.min_score is None or s >= self.min_score]
        kept = [Kept(c, judge, s) for s, c in passing[: self.k]]
        return Selection(g.prompt.id, kept, scores, judge, None if kept else _gated_reason(list(results.values())))


def _gated_reason(results: list[Gated]) -> str:
    """Why no candidate of a prompt passed the gate and got kept."""
    passed = [r for r in results if r.passed]
    if not passed:
        return "none_correct"
    if any(r.score is not None for r in passed):
        return "below_threshold"
    if any(r.error is not None for r in passed):
        return "all_verdicts_failed"
    return "correct_unscored" if any(r.ranked for r in passed) else "no_verdicts"


def gated(
    gate: list[str] | str | None = None,
    judge: str | None = None,
    k: PositiveInt = 1,
    min_score: float | None = None,
    seed: int | None = None,
) -> Policy:
    """Among the candidates every `gate` verifier marked correct, keep the `k` the reward `judge` scores highest."""
    return _Gated("gated", [gate] if isinstance(gate, str) else gate, judge, k, min_score, seed or 0)


@dataclass(slots=True)
class _Vote:
    name: str
    answer_judge: str | None
    weight_judge: str | None
    k: int
    min_share: float
    seed: int
    ranks: bool = True

    def select(self, groups: Sequence[PromptGroup], judges: Mapping[str, JudgeInfo]) -> list[Selection]:
        weight_judge = None
        if self.weight_judge is not None:
            weight_judge = resolve_judge(judges, self.weight_judge, self.name, key="weight_judge")
        rule = f"vote({weight_judge})" if weight_judge else "vote"
        return [self._one(g, weight_judge, rule) for g in groups]

    def _one(self, g: PromptGroup, weight_judge: str | None, rule: str) -> Selection:
        if not g.candidates:
            return Selection(g.prompt.id, judge=rule, reason="no_candidates")
        voters: list[tuple[Candidate, str, float]] = []  # (candidate, answer, weight)
        for c in g.candidates:
            answer = candidate_answer(c, g.verdicts.get(c.id, {}), self.answer_judge)
            if answer is None:
                continue
            if weight_judge is None:
                w = 1.0
            else:
                s = g.score(c.id, weight_judge)
                if s is None:
                    continue
                if s < 0:
                    raise UserError(
                        f"selection.args.weight_judge: judge {weight_judge!r} gave a negative score ({s:g}) "
                        f"to {c.id}; vote weights must be >= 0 (use a judge with scores in [0, 1])"
                    )
                w = s
            voters.append((c, answer, w))
        clusters = [
            ([voters[i][0] for i in members], [voters[i][2] for i in members])
            for members in cluster_answers([a for _, a, _ in voters])
        ]
        total = sum(sum(ws) for _, ws in clusters)
        if not clusters or total <= 0:
            return Selection(g.prompt.id, judge=rule, reason="no_answers")
        shares = sorted(((sum(ws) / total, i) for i, (_, ws) in enumerate(clusters)), reverse=True)
        scores = {c.id: 0.0 for c in g.candidates}
        for share, i in shares:
            for c in clusters[i][0]:
                scores[c.id] = share
        top_share, top = shares[0]
        if len(shares) > 1 and shares[1][0] == top_share:
            return Selection(g.prompt.id, scores=scores, judge=rule, reason="vote_tie")
        if top_share < self.min_share:
            return Selection(g.prompt.id, scores=scores, judge=rule, reason="no_majority")
        members, weights = clusters[top]
        order = sorted(zip(weights, members, strict=True), key=lambda wc: (-wc[0], tie_key(self.seed, wc[1].id)))
        kept = [Kept(c, rule, top_share) for _, c in order[: self.k]]
        return Selection(g.prompt.id, kept, scores, rule)


def vote(
    answer_judge: str | None = None,
    weight_judge: str | None = None,
    k: PositiveInt = 1,
    min_share: Fraction = 0.0,
    seed: int | None = None,
) -> Policy:
    """Weighted majority vote over equivalent final answers (math); keep `k` candidates of the winning answer.

    Answers come from the verifier's `metadata["answer"]` (from `answer_judge`,
    or any judge that recorded one), else are extracted from the text with
    math-verify. Weights are `weight_judge` scores (>= 0), else 1 per vote. A
    tie between the two top answers keeps nothing (reason `vote_tie`).
    """
    return _Vote("vote", answer_judge, weight_judge, k, min_share, seed or 0)


@dataclass(slots=True)
class _Random:
    name: str
    k: int
    seed: int
    ranks: bool = False

    def select(self, groups: Sequence[PromptGroup], judges: Mapping[str, JudgeInfo]) -> list[Selection]:
        out = []
        for g in groups:
            if not g.candidates:
                out.append(Selection(g.prompt.id, judge="random", reason="no_candidates"))
                continue
            rng = prompt_rng(self.seed, g.prompt.id, "random-policy")
            picked = rng.sample(g.candidates, min(self.k, len(g.candidates)))
            out.append(Selection(g.prompt.id, [Kept(c, "random", None) for c in picked], {}, "random"))
        return out


def random(k: PositiveInt = 1, seed: int | None = None) -> Policy:
    """Control arm: keep `k` candidates per prompt uniformly at random (seeded), ignoring every judge."""
    return _Random("random", k, seed or 0)


POLICIES: dict[str, Callable[..., Policy]] = {
    "best": best,
    "threshold": threshold,
    "gated": gated,
    "vote": vote,
    "top_k": top_k,
    "random": random,
}
"""Selection policy builders, by the name a recipe's `selection.policy` uses."""


def policy_args(policy: str, data: Any) -> Any:
    """`selection.args` parsed into the policy builder's typed arguments; errors name `args.<key>` (or `policy`)."""
    if policy not in POLICIES:
        raise ConfigError("policy", f"{policy!r} is not one of {', '.join(POLICIES)}")
    return from_data(args_type(POLICIES[policy]), {} if data is None else data, "args")


def build_policy(selection: SelectionConfig, seed: int = 0) -> Policy:
    """Build the recipe's policy from its checked arguments; the round seed applies unless they set one."""
    kwargs = call_args(selection.args)
    if kwargs.get("seed") is None:
        kwargs["seed"] = seed
    return POLICIES[selection.policy](**kwargs)
