"""The judge report card on hand-computed cases: bootstrap widths, best-of-N curves, length bias, LLM judge rates."""

from __future__ import annotations

import random
from math import sqrt

import pytest

from thresher.eval.bootstrap import bootstrap_interval
from thresher.eval.judge_card import (
    answer_classes,
    baseline_curves,
    best_of_n,
    bon_sizes,
    judge_bon,
    length_bias,
    llm_rates,
    majority_bon,
)
from thresher.eval.judge_selection import judge_selection
from thresher.eval.metrics import JudgedPrompt
from thresher.records import Candidate, Prompt, Verdict

# bootstrap intervals -------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "p"), [(400, 0.5), (100, 0.2), (2500, 0.9)])
def test_bootstrap_interval_of_a_bernoulli_mean_has_the_normal_width(n, p):
    ones = round(n * p)
    values = [1.0] * ones + [0.0] * (n - ones)
    low, high = bootstrap_interval(values)
    expected = 1.96 * sqrt(p * (1 - p) / n)  # half-width of the normal approximation
    assert (high - low) / 2 == pytest.approx(expected, rel=0.08)
    assert low < p < high
    assert bootstrap_interval(values) == [low, high]  # seeded: the same numbers, the same interval


def test_bootstrap_interval_of_a_uniform_mean_and_degenerate_samples():
    values = [(i + 0.5) / 1000 for i in range(1000)]  # uniform on [0, 1]: sd sqrt(1/12)
    low, high = bootstrap_interval(values)
    assert (high - low) / 2 == pytest.approx(1.96 * sqrt(1 / 12) / sqrt(1000), rel=0.08)
    assert bootstrap_interval([0.3] * 50) == [0.3, 0.3]
    assert bootstrap_interval([1.0]) is None


# best-of-N -----------------------------------------------------------------------------------

# prompt A: right, wrong, wrong, right; answers 5, 7, 7, 5; the judge scores the wrong ones highest
# prompt B: wrong, wrong, right, wrong; answers 3, 3, 4, none
A = JudgedPrompt("t", [True, False, False, True], [0.2, 0.9, 0.5, None])
B = JudgedPrompt("t", [False, False, True, False], [0.1, 0.1, 0.8, 0.3])
CLASSES = [[0, 1, 1, 0], [0, 0, 1, None]]


def test_bon_sizes():
    assert bon_sizes(4) == [1, 2, 4]
    assert bon_sizes(6) == [1, 2, 4, 6]
    assert bon_sizes(1) == [1]


def test_judge_best_of_n_equals_the_mean_over_every_subset_by_hand():
    # A, N=2: of the 6 pairs only {0, 3} puts a right answer on top (0.2 beats the unscored one)
    assert judge_bon(A.correct, A.scores, 1) == pytest.approx(0.5)
    assert judge_bon(A.correct, A.scores, 2) == pytest.approx(1 / 6)
    assert judge_bon(A.correct, A.scores, 4) == 0.0
    # B, N=2: {0,2}, {1,2}, {2,3} pick the right one; {0,1} is a tie of two wrong ones
    assert judge_bon(B.correct, B.scores, 2) == pytest.approx(0.5)
    assert judge_bon(B.correct, B.scores, 4) == 1.0
    # a judge with no scores picks at random, whatever N
    assert judge_bon([True, False, False], [None] * 3, 2) == pytest.approx(1 / 3)


def test_best_of_n_curve_on_a_crafted_set_equals_hand_computed_values():
    curves = best_of_n([A, B], CLASSES)
    c = curves["t"]
    assert c["n"] == [1, 2, 4] and c["prompts"] == 2
    assert c["judge"] == pytest.approx([(0.5 + 0.25) / 2, (1 / 6 + 1 / 2) / 2, (0 + 1) / 2])
    # majority, A at N=2: {0,3} agree on 5 (right), {1,2} on 7 (wrong), the other 4 pairs tie (0.5): 3/6;
    # B at N=2: {2,3} -> 4 (right), {0,2} and {1,2} tie (0.5), the rest vote 3 (wrong): 2/6
    assert c["majority"] == pytest.approx([(0.5 + 0.25) / 2, (3 / 6 + 2 / 6) / 2, (0.5 + 0.0) / 2])
    assert c["random"] == pytest.approx([0.375] * 3)
    # oracle = pass@N: A 1 - C(2,2)/C(4,2) = 5/6, B 1 - C(3,2)/C(4,2) = 1/2
    assert c["oracle"] == pytest.approx([0.375, (5 / 6 + 1 / 2) / 2, 1.0])


def test_majority_curve_samples_subsets_of_large_prompts_seeded_and_is_none_without_answers():
    classes = [0] * 10 + [1] * 6 + [None] * 4
    correct = [True] * 10 + [False] * 10
    first = majority_bon(classes, correct, 8, random.Random(0))
    assert first == majority_bon(classes, correct, 8, random.Random(0))
    assert 0.5 < first < 1.0
    assert majority_bon([0] * 20, [True] * 20, 8, random.Random(0)) == 1.0
    plain = baseline_curves([A], [None])
    assert plain["t"]["majority"] is None and plain["t"]["oracle"][-1] == 1.0


def test_answer_classes_use_math_equivalence():
    assert answer_classes(["0.5", "1/2", "\\frac{1}{2}", "2", None, "2.0"]) == [0, 0, 0, 1, None, 1]
    # answers the oracle found right share one bucket without a comparison; wrong ones never join it
    calls = []

    def same(a, b):
        calls.append((a, b))
        return a == b

    right = [True, False, True, False, False]
    assert answer_classes(["4", "5", "4.0", "5", "6"], right, same) == [0, 1, 0, 1, 2]
    assert calls == [("5", "5"), ("5", "6")]


# length bias and LLM judges ------------------------------------------------------------------


def _pairs_items() -> list[JudgedPrompt]:
    # oracle-equal pairs of different lengths: (0,1) both right; (2,3) both wrong; (0,2) is not oracle-equal
    lengths = [[10, 30, 5, 50], [12, 12, 40, 8]]
    correct = [[True, True, False, False], [False, False, True, True]]
    return [JudgedPrompt("t", c, [float(n) for n in ln], ln) for c, ln in zip(correct, lengths)]


def test_length_bias_of_a_judge_that_always_prefers_the_longer_answer_is_one():
    items = _pairs_items()
    m = length_bias(items)["t"]
    assert m["length_bias"] == 1.0
    assert m["length_pairs"] == 3  # (10,30), (5,50), (40,8); (12,12) has no longer one
    assert m["score_length_corr"] == pytest.approx(1.0)
    shorter = [JudgedPrompt(it.task, it.correct, [-s for s in it.scores], it.lengths) for it in items]
    assert length_bias(shorter)["t"]["length_bias"] == 0.0
    assert length_bias(shorter)["t"]["score_length_corr"] == pytest.approx(-1.0)
    flat = [JudgedPrompt(it.task, it.correct, [1.0] * 4, it.lengths) for it in items]
    assert length_bias(flat)["t"] == {"length_bias": None, "length_pairs": 0, "score_length_corr": None}


def test_llm_rates_count_parse_failures_and_flipped_pairwise_comparisons():
    vs = [Verdict("p/m/0", "j", score=0.5, critique="x", metadata={"agreed": 3, "disagreed": 1}),
          Verdict("p/m/1", "j", score=0.5, critique="x", metadata={"agreed": 1, "disagreed": 3}),
          Verdict("p/m/2", "j", error="unparseable judge output: no winner", metadata={"raw": "?"}),
          Verdict("p/m/3", "j", error="timeout")]
    assert llm_rates(vs, "pairwise") == {"parse_failure_rate": 0.25, "position_bias": 0.5}
    assert llm_rates(vs[:1], "llm") == {"parse_failure_rate": 0.0}
    assert llm_rates(vs, "reward") == {"parse_failure_rate": 0.25}  # failures show even when nothing parsed
    assert llm_rates(vs[3:], "reward") == {}


# the card in eval.json -----------------------------------------------------------------------


def test_judge_selection_writes_the_whole_card():
    prompts = [Prompt.create("add", [{"role": "user", "content": f"What is {i} + 1?"}], reference=str(i + 1))
               for i in range(6)]
    cands, verdicts = [], []
    for p in prompts:
        ref = int(p.reference)
        for j, (value, pad) in enumerate([(ref, ""), (ref + 1, " " * 20), (ref, " " * 40), (ref + 2, "")]):
            c = Candidate(p.id, "teacher", j, f"The answer is {value}.{pad}", num_tokens=5 + len(pad))
            cands.append(c)
            ok = value == ref
            verdicts.append(Verdict(c.id, "math", score=float(ok), correct=ok, metadata={"answer": str(value)}))
            verdicts.append(Verdict(c.id, "long_rm", score=float(len(c.text))))
            meta = {"agreed": 2, "disagreed": 1, "wins": 1, "losses": 1, "ties": 0}
            verdicts.append(Verdict(c.id, "pair", score=float(ok), critique="...", metadata=meta)
                            if j != 3 else Verdict(c.id, "pair", error="unparseable judge output: x", metadata=meta))
    out = judge_selection(prompts, cands, verdicts)
    assert set(out) == {"math", "long_rm", "pair"}
    rm = out["long_rm"]["add"]
    assert rm["prompts"] == 6.0 and rm["selection_accuracy"] == 1.0  # the longest one (j=2) is right
    assert rm["selection_lift"] == pytest.approx(0.5) and rm["selection_lift_ci"] == [0.5, 0.5]
    assert rm["length_bias"] == 1.0 and rm["length_pairs"] == 12  # per prompt (0,2) right and (1,3) wrong
    assert rm["best_of_n"]["n"] == [1, 2, 4]
    assert rm["best_of_n"]["oracle"] == pytest.approx([0.5, 5 / 6, 1.0])
    assert rm["best_of_n"]["majority"][-1] == 1.0  # two votes for the reference, one each for the others
    assert "parse_failure_rate" not in rm
    pair = out["pair"]["add"]
    assert pair["parse_failure_rate"] == 0.25 and pair["position_bias"] == pytest.approx(1 / 3)
    assert pair["errors"] == 6.0
    assert out["math"]["add"]["best_of_n"]["judge"] == pytest.approx(out["math"]["add"]["best_of_n"]["oracle"])
