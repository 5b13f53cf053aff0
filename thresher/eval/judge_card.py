"""A judge's report card beyond its lift: best-of-N curve, length bias, parse failures, position bias.

Selection lift says whether a judge's single pick beats chance. The card
says more of what reward-model papers publish and users ask:

- **best-of-N curve**: the accuracy of the judge's pick among N candidates,
  for N = 1, 2, 4, ... up to the candidates per prompt, beside majority
  vote over the same N, a random pick and the oracle (pass@N: some candidate
  is right). A judge whose curve falls as N grows is being fooled by the
  extra candidates (RLHFlow's ORM@N against maj@N tables; on MATH, majority
  vote beat the outcome reward model). The judge's, the random and the
  oracle's values are exact expectations over all subsets of size N;
  majority vote is averaged over every subset, or over a seeded sample of
  them when there are more than `MAX_SUBSETS`. A prompt with fewer than N
  candidates counts with all of its candidates.
- **length bias**: among pairs of candidates the oracle rates equal (both
  right or both wrong) and of different length, how often the judge scores
  the longer one higher (0.5 = no bias; LLM judges are known to prefer the
  longer answer about 2 times in 3), and the rank correlation of score with
  length.
- **LLM judges**: the share of verdicts whose output did not parse, and for
  pairwise judges the share of comparisons that flipped when the order was
  swapped (position bias).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from itertools import combinations
from math import comb, isfinite
from typing import Any

from thresher.eval.metrics import JudgedPrompt, mean, pass_at_k
from thresher.records import Verdict

MAX_SUBSETS = 64
"""Subsets of size N drawn per prompt for the majority-vote curve when there are more."""
PARSE_FAILURE = "unparseable judge output"
"""How an LLM judge's verdict error starts when its output did not parse (thresher.judges.llm_judge)."""
LLM_KINDS = ("llm", "listwise", "pairwise")


def bon_sizes(most: int) -> list[int]:
    """1, 2, 4, ... below `most`, then `most` itself."""
    sizes, n = [], 1
    while n < most:
        sizes.append(n)
        n *= 2
    return [*sizes, most] if most >= 1 else []


def _score(s: float | None) -> float | None:
    return s if s is not None and isfinite(s) else None


def judge_bon(correct: Sequence[bool], scores: Sequence[float | None], n: int) -> float:
    """Expected accuracy of the judge's pick among a uniformly random subset of n candidates, exactly.

    The pick is the top-scored candidate of the subset, ties shared; a
    subset the judge scored none of gets a random pick. So the candidates of
    one score level (and the unscored, below every level) are interchangeable:
    the pick comes from level L with probability P(no candidate above L, at
    least one of L) and is then right with probability (right at L) / (at L).
    """
    m = len(correct)
    n = min(n, m)
    levels: dict[float | None, list[bool]] = defaultdict(list)
    for ok, s in zip(correct, scores, strict=True):
        levels[_score(s)].append(ok)
    order = sorted(levels, key=lambda s: (s is not None, s if s is not None else 0.0))
    total, below, acc = comb(m, n), 0, 0.0
    for level in order:
        members = levels[level]
        p = (comb(below + len(members), n) - comb(below, n)) / total
        acc += p * sum(members) / len(members)
        below += len(members)
    return acc


def majority_accuracy(classes: Sequence[int | None], correct: Sequence[bool]) -> float:
    """Accuracy of the most common answer (a tie between answers is shared); 0.0 when nothing has an answer.

    `classes[i]` is candidate i's vote bucket (equal answers, one bucket) or
    None when it has no answer (it does not vote).
    """
    counts = Counter(c for c in classes if c is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    accs = []
    for bucket in (c for c, v in counts.items() if v == top):
        members = [ok for c, ok in zip(classes, correct) if c == bucket]
        accs.append(sum(members) / len(members))
    return mean(accs)


def majority_bon(classes: Sequence[int | None], correct: Sequence[bool], n: int, rng: random.Random,
                 max_subsets: int = MAX_SUBSETS) -> float:
    """Mean majority-vote accuracy over the subsets of size n (all of them, or a seeded sample)."""
    m = len(correct)
    n = min(n, m)
    if comb(m, n) <= max_subsets:
        subsets: Any = combinations(range(m), n)
    else:
        subsets = (rng.sample(range(m), n) for _ in range(max_subsets))
    return mean(majority_accuracy([classes[i] for i in s], [correct[i] for i in s]) for s in subsets)


def answer_classes(
    answers: Sequence[str | None], right: Sequence[bool] | None = None, same: Callable[[str, str], bool] | None = None
) -> list[int | None]:
    """Vote buckets of a prompt's answers: answers that are the same value share one (None: no answer).

    With `right` (the oracle's verdict on each, against the reference),
    every right answer equals the reference and so shares one bucket without
    a comparison, and a wrong one can only equal another wrong one: symbolic
    comparisons are the expensive part.
    """
    if same is None:
        from thresher.judges.answers import answers_equivalent as same
    reps: list[str] = []
    out: list[int | None] = []
    right_bucket: int | None = None
    for i, a in enumerate(answers):
        if a is None:
            out.append(None)
            continue
        if right is not None and right[i]:
            if right_bucket is None:
                reps.append(a)
                right_bucket = len(reps) - 1
            out.append(right_bucket)
            continue
        for j, r in enumerate(reps):
            if j != right_bucket and same(r, a):
                out.append(j)
                break
        else:
            reps.append(a)
            out.append(len(reps) - 1)
    return out


def baseline_curves(
    items: Sequence[JudgedPrompt], classes: Sequence[list[int | None] | None], seed: int = 0,
    max_subsets: int = MAX_SUBSETS,
) -> dict[str, dict[str, Any]]:
    """Per task, the judge-free curves: n, majority (None where no prompt has answers), random and oracle."""
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        if it.correct:
            by_task[it.task].append(i)
    out: dict[str, dict[str, Any]] = {}
    for task in sorted(by_task):
        idx = by_task[task]
        sizes = bon_sizes(max(len(items[i].correct) for i in idx))
        rng = random.Random(f"{seed}:bon:{task}")
        voted = {i for i in idx if classes[i] is not None and any(c is not None for c in classes[i])}
        out[task] = {
            "n": sizes,
            "majority": [mean(majority_bon(classes[i], items[i].correct, n, rng, max_subsets) if i in voted
                              else 0.0 for i in idx) for n in sizes] if voted else None,
            "random": [mean(sum(items[i].correct) / len(items[i].correct) for i in idx)] * len(sizes),
            "oracle": [mean(pass_at_k(len(items[i].correct), sum(items[i].correct), min(n, len(items[i].correct)))
                            for i in idx) for n in sizes],
            "prompts": len(idx),
        }
    return out


def judge_curve(items: Sequence[JudgedPrompt], sizes: Sequence[int]) -> list[float]:
    """The judge's best-of-N accuracy at each size, averaged over the prompts."""
    return [mean(judge_bon(it.correct, it.scores, n) for it in items) for n in sizes]


def best_of_n(
    items: Sequence[JudgedPrompt], classes: Sequence[list[int | None] | None] | None = None, seed: int = 0,
    baselines: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per task: {"n", "judge", "majority", "random", "oracle", "prompts"}, each a value per N."""
    if baselines is None:
        baselines = baseline_curves(items, classes if classes is not None else [None] * len(items), seed)
    by_task: dict[str, list[JudgedPrompt]] = defaultdict(list)
    for it in items:
        if it.correct:
            by_task[it.task].append(it)
    out = {}
    for task, base in baselines.items():
        if task in by_task:
            out[task] = {"n": base["n"], "judge": judge_curve(by_task[task], base["n"]),
                         **{k: v for k, v in base.items() if k != "n"}}
    return out


def length_bias(items: Sequence[JudgedPrompt]) -> dict[str, dict[str, Any]]:
    """Per task: `length_bias` (share of oracle-equal pairs where the longer one scores higher; None without
    such pairs), `length_pairs` (how many) and `score_length_corr` (Spearman, pooled over scored candidates)."""
    import numpy as np
    from scipy.stats import spearmanr

    by_task: dict[str, list[JudgedPrompt]] = defaultdict(list)
    for it in items:
        if it.correct and it.lengths is not None:
            by_task[it.task].append(it)
    out: dict[str, dict[str, Any]] = {}
    for task in sorted(by_task):
        longer = pairs = 0
        scores: list[float] = []
        lengths: list[int] = []
        for it in by_task[task]:
            scored = [(s, n, ok) for s, n, ok in zip(it.scores, it.lengths, it.correct) if _score(s) is not None]
            if not scored:
                continue
            s, n, ok = (np.array(x) for x in zip(*scored))
            scores += s.tolist()
            lengths += n.tolist()
            ds, dn = np.sign(s[:, None] - s[None, :]), np.sign(n[:, None] - n[None, :])
            # each unordered pair once (upper triangle), the oracle rating both alike, a longer one, a preference
            valid = np.triu(ok[:, None] == ok[None, :], 1) & (ds != 0) & (dn != 0)
            pairs += int(valid.sum())
            longer += int((valid & (ds == dn)).sum())
        corr = None
        if len(scores) >= 3 and len(set(scores)) > 1 and len(set(lengths)) > 1:
            corr = float(spearmanr(scores, lengths).statistic)
        out[task] = {"length_bias": longer / pairs if pairs else None, "length_pairs": pairs,
                     "score_length_corr": corr}
    return out


def judge_kind(verdicts: Sequence[Verdict]) -> str:
    """verifier, listwise, pairwise, llm or reward: the export stage's reading of what a judge is."""
    from thresher.feedback.groups import JudgeInfo

    info = JudgeInfo("judge")
    for v in verdicts:
        info.add({"error": v.error, "score": v.score, "correct": v.correct, "critique": v.critique,
                  "metadata": v.metadata})
    return info.kind


def llm_rates(verdicts: Sequence[Verdict], kind: str) -> dict[str, Any]:
    """For LLM judges: `parse_failure_rate` and, when pairwise, `position_bias` (comparisons that flipped)."""
    if not verdicts:
        return {}
    failed = sum(1 for v in verdicts if v.error is not None and v.error.startswith(PARSE_FAILURE))
    if kind not in LLM_KINDS and not failed:  # a judge whose every output failed to parse shows no kind
        return {}
    out: dict[str, Any] = {"parse_failure_rate": failed / len(verdicts)}
    if kind == "pairwise":
        agreed = sum(v.metadata.get("agreed", 0) for v in verdicts)
        flipped = sum(v.metadata.get("disagreed", 0) for v in verdicts)
        out["position_bias"] = flipped / (agreed + flipped) if agreed + flipped else None
    return out
