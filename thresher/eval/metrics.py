"""Per-task metrics as pure functions: pass@k, maj@k, judge selection accuracy and lift.

Everything here takes plain lists (correctness flags, extracted answers,
judge scores) and returns numbers, so each formula can be checked by hand in
a test and reused outside the eval stage.

Selection lift is the number that tells whether a judge is worth running:
the accuracy of the candidate it picks minus the mean accuracy of a random
candidate of the same prompt, measured against the oracle (a verifier with a
reference). A judge that picks among a prompt's distinct answers at chance
has lift ~0 or below, however confident its scores look: below when right
answers repeat (a teacher writes the same right answer twice), since a random
candidate is then right more often than a random distinct text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

from thresher.eval.bootstrap import mean_with_interval


def mean(values: Iterable[float]) -> float:
    vals = list(values)
    if not vals:
        raise ValueError("mean of no values")
    return sum(vals) / len(vals)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of P(at least one of k samples is correct) from n samples with c correct.

    1 - C(n-c, k) / C(n, k) (Chen et al., 2021), computed as a product so it
    stays exact for large n. With n == k it is 1 if any sample is correct.
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def _majority(answers: Sequence[str | None]) -> list[int]:
    """Indexes of the largest cluster of equivalent answers (ties go to the one seen first); [] if none."""
    from thresher.judges.answers import cluster_answers

    clusters = cluster_answers(answers)
    return max(clusters, key=len) if clusters else []


def majority_answer(answers: Sequence[str | None]) -> str | None:
    """The most frequent extracted answer, equivalent answers counted together (as the verifier
    compares them: "0.5", "1/2" and "\\frac{1}{2}" are one); None = no answer, never a vote; ties
    go to the earliest."""
    top = _majority(answers)
    return answers[top[0]] if top else None


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool]) -> float:
    """1.0 if the majority answer among the samples is a correct one, else 0.0.

    `answers[i]` is the extracted answer of sample i and `correct[i]` its
    verdict; samples with equivalent answers share one vote and correctness.
    """
    if len(answers) != len(correct):
        raise ValueError(f"maj_at_k: {len(answers)} answers but {len(correct)} verdicts")
    return 1.0 if any(correct[i] for i in _majority(answers)) else 0.0


@dataclass(slots=True)
class PromptResult:
    """What the eval stage learned about one prompt: the greedy verdict and the k sampled ones."""

    task: str
    greedy_correct: bool
    sample_correct: list[bool] = field(default_factory=list)
    sample_answers: list[str | None] = field(default_factory=list)


def task_metrics(results: Sequence[PromptResult], k: int) -> dict[str, Any]:
    """Per task: pass@1 (greedy), and with k > 1 sampled answers pass@k, maj@k and the mean sample accuracy.

    pass@k uses the unbiased estimator with n = the samples drawn per prompt
    (which may exceed k). Each metric is a mean over prompts and comes with
    its 95% bootstrap interval (`<metric>_ci: [low, high]`); `prompts` says
    how many prompts they rest on.
    """
    by_task: dict[str, list[PromptResult]] = defaultdict(list)
    for r in results:
        by_task[r.task].append(r)
    out: dict[str, Any] = {}
    for task in sorted(by_task):
        rs = by_task[task]
        per_prompt = {"pass@1": [1.0 if r.greedy_correct else 0.0 for r in rs]}
        if k > 1:
            for r in rs:
                if len(r.sample_correct) < k:
                    raise ValueError(f"task {task}: a prompt has {len(r.sample_correct)} samples, fewer than k={k}")
            per_prompt[f"pass@{k}"] = [pass_at_k(len(r.sample_correct), sum(r.sample_correct), k) for r in rs]
            per_prompt[f"maj@{k}"] = [maj_at_k(r.sample_answers, r.sample_correct) for r in rs]
            per_prompt["sample_accuracy"] = [sum(r.sample_correct) / len(r.sample_correct) for r in rs]
        m: dict[str, Any] = {}
        for metric, values in per_prompt.items():
            mean_with_interval(m, metric, values)
        m["prompts"] = len(rs)
        out[task] = m
    return out


# --- judges ------------------------------------------------------------------------------------


def random_pick_accuracy(correct: Sequence[bool]) -> float:
    """Expected accuracy of a candidate drawn uniformly at random."""
    return mean(1.0 if c else 0.0 for c in correct)


def judge_pick_accuracy(correct: Sequence[bool], scores: Sequence[float | None]) -> float | None:
    """Expected accuracy of the judge's pick: the top-scored candidate, ties broken at random.

    Candidates the judge has no score for (no opinion, or an error) cannot be
    picked. Returns None when the judge scored none of them.
    """
    if len(correct) != len(scores):
        raise ValueError(f"judge_pick_accuracy: {len(correct)} verdicts but {len(scores)} scores")
    scored = [(s, c) for s, c in zip(scores, correct) if s is not None and isfinite(s)]
    if not scored:
        return None
    top = max(s for s, _ in scored)
    return random_pick_accuracy([c for s, c in scored if s == top])


@dataclass(slots=True)
class JudgedPrompt:
    """One prompt's candidates as the oracle and one judge see them (same order)."""

    task: str
    correct: list[bool]
    """Oracle correctness of each candidate (candidates the oracle could not check are left out)."""
    scores: list[float | None]
    """The judge's score of each candidate; None where it has no opinion or failed."""
    lengths: list[int] | None = None
    """Each candidate's length (tokens where the sampler counted them, else characters), for length bias."""


def selection_metrics(items: Sequence[JudgedPrompt]) -> dict[str, dict[str, float]]:
    """Per task: how well one judge picks the best candidate, against the oracle.

    - `selection_accuracy`: mean accuracy of the judge's pick; on a prompt the
      judge scored no candidate of, its pick is a random one (so failures
      neither help nor hide; `coverage` shows how often that happened);
    - `random_accuracy`: mean accuracy of a random candidate;
    - `selection_lift`: the difference, the judge's worth (~0 for a judge no
      better than chance, negative for one worse than chance);
    - `oracle_accuracy`: fraction of prompts with at least one correct
      candidate, the best any judge can do;
    - `coverage`, `prompts`.

    Lift is a mean over prompts of (pick accuracy - random accuracy), so its
    95% bootstrap interval (`selection_lift_ci`) resamples those per-prompt
    differences: an interval that holds 0 says the judge is not shown to
    beat chance.
    """
    by_task: dict[str, list[JudgedPrompt]] = defaultdict(list)
    for it in items:
        if it.correct:
            by_task[it.task].append(it)
    out: dict[str, dict[str, Any]] = {}
    for task in sorted(by_task):
        picks, randoms, covered = [], [], 0
        for it in by_task[task]:
            rand = random_pick_accuracy(it.correct)
            pick = judge_pick_accuracy(it.correct, it.scores)
            covered += pick is not None
            picks.append(rand if pick is None else pick)
            randoms.append(rand)
        m: dict[str, Any] = {"selection_accuracy": mean(picks), "random_accuracy": mean(randoms)}
        mean_with_interval(m, "selection_lift", [p - r for p, r in zip(picks, randoms)])
        m["oracle_accuracy"] = mean(1.0 if any(it.correct) else 0.0 for it in by_task[task])
        m["coverage"] = covered / len(by_task[task])
        m["prompts"] = float(len(by_task[task]))
        out[task] = m
    return out


def judge_task_metrics(picks: Sequence[int | None], correct: Sequence[Sequence[bool]]) -> dict[str, float]:
    """How often a model asked to judge picks a right candidate (the critique-SFT skill).

    `picks[i]` is the index the model named for item i (None if its answer
    named none) and `correct[i]` the oracle's verdict on each candidate shown.
    Only items with both a right and a wrong candidate say anything about
    judging, so the others are left out. `judge_random_accuracy` is what a
    uniform guess would score on the same items.
    """
    if len(picks) != len(correct):
        raise ValueError(f"judge_task_metrics: {len(picks)} picks but {len(correct)} items")
    hits, rand, n = 0.0, 0.0, 0
    per_item: list[float] = []
    for pick, cs in zip(picks, correct):
        if not any(cs) or all(cs):
            continue
        n += 1
        rand += random_pick_accuracy(cs)
        hit = pick is not None and 0 <= pick < len(cs) and cs[pick]
        hits += hit
        per_item.append(1.0 if hit else 0.0)
    if n == 0:
        return {"judge_items": 0.0}
    out: dict[str, Any] = {}
    mean_with_interval(out, "judge_accuracy", per_item)
    out.update({"judge_accuracy": hits / n, "judge_random_accuracy": rand / n, "judge_items": float(n)})
    return out
