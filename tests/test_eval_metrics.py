"""Metric formulas on hand-computed cases: pass@k, maj@k, selection lift, judge-task accuracy."""

from __future__ import annotations

import random

import pytest

from thresher.eval.metrics import (
    JudgedPrompt,
    PromptResult,
    judge_pick_accuracy,
    judge_task_metrics,
    maj_at_k,
    majority_answer,
    pass_at_k,
    selection_metrics,
    task_metrics,
)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (3, 1, 1, 1 / 3),  # pass@1 is the fraction correct
        (4, 0, 2, 0.0),
        (4, 3, 2, 1.0),  # fewer wrong samples than k: a correct one is always drawn
        (4, 1, 4, 1.0),  # n == k: any correct sample counts
        (200, 20, 10, 0.660226),  # large n stays accurate (also checked against exact binomials below)
    ],
)
def test_pass_at_k_exact_values(n, c, k, expected):
    from math import comb

    exact = 1 - comb(n - c, k) / comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-4)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(3, 1, 4)


def test_majority_vote_ignores_missing_answers_and_breaks_ties_by_order():
    assert majority_answer([None, "3", "5", "5", None, None]) == "5"
    assert majority_answer(["7", "3", "3", "7"]) == "7"
    assert majority_answer([None, None]) is None
    assert maj_at_k(["5", "5", "3"], [False, False, True]) == 0.0
    assert maj_at_k(["5", "3", "3"], [False, True, True]) == 1.0
    assert maj_at_k([None, None, "3"], [False, False, True]) == 1.0
    assert maj_at_k([None, None], [False, False]) == 0.0


def test_task_metrics_per_task():
    results = [
        PromptResult("add", True, [True, False, False, False], ["4", "5", "5", "6"]),
        PromptResult("add", False, [True, True, False, False], ["4", "4", "5", None]),
        PromptResult("mul", False, [False, False, False, False], [None, None, "1", "2"]),
    ]
    m = task_metrics(results, k=2)
    assert m["add"]["pass@1"] == 0.5
    # pass@2 with n=4: c=1 -> 1 - C(3,2)/C(4,2) = 0.5; c=2 -> 1 - 1/6
    assert m["add"]["pass@2"] == pytest.approx((0.5 + 5 / 6) / 2)
    assert m["add"]["maj@2"] == 0.5  # majority "5" is wrong, majority "4" is right
    assert m["add"]["sample_accuracy"] == pytest.approx((0.25 + 0.5) / 2)
    assert m["mul"] == {"pass@1": 0.0, "pass@2": 0.0, "maj@2": 0.0, "sample_accuracy": 0.0, "prompts": 1}
    assert m["add"]["prompts"] == 2
    assert m["add"]["pass@1_ci"] == [0.0, 1.0]  # two prompts, one right: a resample holds 0, 1 or 2 of them
    assert task_metrics(results, k=1) == {"add": {"pass@1": 0.5, "pass@1_ci": [0.0, 1.0], "prompts": 2},
                                          "mul": {"pass@1": 0.0, "prompts": 1}}


def test_judge_pick_shares_ties_and_skips_unscored():
    assert judge_pick_accuracy([True, False, False], [0.9, 0.1, 0.2]) == 1.0
    assert judge_pick_accuracy([True, False], [0.5, 0.5]) == 0.5
    assert judge_pick_accuracy([True, False], [None, 0.1]) == 0.0
    assert judge_pick_accuracy([True, False], [None, None]) is None


def _crafted(num: int, seed: int = 0) -> list[tuple[str, list[bool]]]:
    rng = random.Random(seed)
    items = []
    for i in range(num):
        correct = [False] * 4
        for j in rng.sample(range(4), rng.choice([1, 2])):
            correct[j] = True
        items.append(("a" if i % 2 else "b", correct))
    return items


def test_selection_lift_oracle_positive_random_zero_adversary_negative():
    items = _crafted(2000)
    rng = random.Random(1)
    oracle = selection_metrics([JudgedPrompt(t, c, [float(x) for x in c]) for t, c in items])
    rand = selection_metrics([JudgedPrompt(t, c, [rng.random() for _ in c]) for t, c in items])
    constant = selection_metrics([JudgedPrompt(t, c, [0.0] * len(c)) for t, c in items])
    adversary = selection_metrics([JudgedPrompt(t, c, [float(not x) for x in c]) for t, c in items])
    for task in ("a", "b"):
        expected_random = sum(sum(c) / 4 for t, c in items if t == task) / sum(1 for t, _ in items if t == task)
        assert oracle[task]["random_accuracy"] == pytest.approx(expected_random)
        assert oracle[task]["selection_accuracy"] == 1.0
        assert oracle[task]["selection_lift"] == pytest.approx(1.0 - expected_random)
        assert oracle[task]["selection_lift"] > 0.5
        assert abs(rand[task]["selection_lift"]) < 0.04
        assert constant[task]["selection_lift"] == pytest.approx(0.0, abs=1e-12)
        assert adversary[task]["selection_accuracy"] == 0.0
        assert adversary[task]["selection_lift"] == pytest.approx(-expected_random)
        assert oracle[task]["oracle_accuracy"] == 1.0 and oracle[task]["coverage"] == 1.0


def test_selection_counts_a_silent_judge_as_random_and_reports_coverage():
    items = [JudgedPrompt("t", [True, False], [None, None]), JudgedPrompt("t", [True, False], [1.0, 0.0])]
    m = selection_metrics(items)["t"]
    assert m["coverage"] == 0.5
    assert m["selection_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["selection_lift"] == pytest.approx(0.25)


def test_judge_task_metrics_counts_only_informative_items():
    picks = [0, 1, None, 2, 0]
    correct = [[True, False], [True, False], [False, True], [True, True, True], [False, False]]
    m = judge_task_metrics(picks, correct)
    assert m["judge_items"] == 3
    assert m["judge_accuracy"] == pytest.approx(1 / 3)
    assert m["judge_accuracy_ci"] == [0.0, 1.0]
    assert m["judge_random_accuracy"] == pytest.approx(0.5)
    assert judge_task_metrics([0], [[True]]) == {"judge_items": 0.0}


def test_selection_lift_interval_excludes_zero_only_for_a_judge_that_beats_chance():
    items = _crafted(400)
    rng = random.Random(2)
    oracle = selection_metrics([JudgedPrompt(t, c, [float(x) for x in c]) for t, c in items])["a"]
    rand = selection_metrics([JudgedPrompt(t, c, [rng.random() for _ in c]) for t, c in items])["a"]
    low, high = oracle["selection_lift_ci"]
    assert 0 < low < oracle["selection_lift"] < high
    low, high = rand["selection_lift_ci"]
    assert low < 0 < high and high - low < 0.2
