"""The one answer semantics: natural phrasings in English and Chinese, right and wrong, as the verifier judges them."""

from __future__ import annotations

import pytest

from thresher.eval.metrics import maj_at_k, majority_answer
from thresher.judges.answers import (
    answers_equivalent,
    candidate_answer,
    cluster_answers,
    extract_answer,
    last_boxed,
    read_answer,
    same_answer,
)
from thresher.judges.math import verify_answer
from thresher.records import Candidate, Verdict

PHRASINGS = [
    # the example: a trailing explanation is not part of the answer
    ("The answer is 7, because 3+4=7.", "7", True),
    ("The answer is 7 because 3 + 4 = 7.", "7", True),
    ("The answer is 8, since 3 + 5 = 8.", "7", False),
    ("So the answer is 12, so we are done.", "12", True),
    ("The answer is 3, not 4.", "3", True),
    ("The answer is 4, as 2 * 2 = 4 and not 5.", "4", True),
    # boxed
    ("Adding them up gives \\boxed{42}.", "42", True),
    ("Thus $\\boxed{\\frac{1}{2}}$.", "0.5", True),
    ("\\boxed{41}", "42", False),
    ("First \\boxed{1}, then on reflection \\boxed{2}.", "2", True),
    # phrases
    ("The final answer is $\\frac{3}{4}$.", "0.75", True),
    ("Final answer: 3.14", "3.14", True),
    ("**Answer:** 17", "17", True),
    ("The answer to this question is 9.", "9", True),
    # LaTeX outside a box
    ("The answer is \\frac{2}{3}.", "2/3", True),
    ("The answer is \\(\\frac{5}{2}\\).", "2.5", True),
    ("The answer is \\frac{\\sqrt{3}}{2}.", "\\sqrt{3}/2", True),
    ("Therefore x = 2\\sqrt{2}.", "\\sqrt{8}", True),
    ("Therefore x = 2\\sqrt{3}.", "\\sqrt{8}", False),
    ("Answer: $x^2+2x+1$", "(x+1)^2", True),
    # thousands separators, units, currency, percentages
    ("The answer is 1,250.", "1250", True),
    ("The answer is 1,250 apples.", "1250", True),
    ("It costs $1,250.", "1250", True),
    ("The total is $12.50.", "12.5", True),
    ("The answer is 12 cm.", "12", True),
    ("The answer is 3.5 hours.", "3.5", True),
    ("The answer is 25%.", "0.25", True),
    ("The answer is 25 percent.", "25\\%", True),
    ("The answer is 35%.", "25%", False),
    # "####" style
    ("She has 5 + 3 = 8 apples left.\n#### 8", "8", True),
    ("#### 1,000", "1000", True),
    ("#### 9", "8", False),
    # sets and intervals
    ("The answer is $\\{2, 1\\}$.", "\\{1, 2\\}", True),
    ("The answer is [0, 1).", "[0,1)", True),
    ("The answer is (0, 1].", "[0,1)", False),
    # negative numbers
    ("The answer is -5.", "-5", True),
    ("The answer is -5.", "5", False),
    ("The temperature fell to -3 degrees.", "-3", True),
    # answers that are words
    ("The answer is Tuesday.", "Tuesday", True),
    ("The answer is Monday.", "Tuesday", False),
    # the quickstart's worked answers: the last number
    ("7+5=12, 6+8+1=15, so 152", "152", True),
    ("7+5=12, 6+8+1=15, so 152", "153", False),
    ("5+3=8，7+4+0=11，所以 118。8-2=6，11-0-4=7，1-1-0=0，所以 76", "76", True),
    # Chinese
    ("所以答案是 42。", "42", True),
    ("答案是 7，因为 3+4=7。", "7", True),
    ("答案是 8，因为 3+5=8。", "7", False),
    ("最终答案为：\\frac{1}{2}", "0.5", True),
    ("答案：1,250 元", "1250", True),
    ("因此，答案是 25%。", "0.25", True),
    ("答案是 -3。", "-3", True),
    ("答案是北京。", "北京", True),
    ("答案是上海。", "北京", False),
    ("所以结果是 12 厘米。", "12", True),
    ("小明一共有15个苹果。", "15", True),
    ("答案是 $\\sqrt{2}$，因为它的平方是 2。", "\\sqrt{2}", True),
    ("答案是 7，不是 8。", "7", True),
    ("nothing to see here", "42", False),
]


@pytest.mark.parametrize(("text", "reference", "correct"), PHRASINGS)
def test_verdict_on_natural_phrasings(text, reference, correct):
    out = verify_answer((text, reference))
    assert out["correct"] is correct, out


def test_there_are_at_least_forty_phrasings_right_and_wrong():
    assert len(PHRASINGS) >= 40
    assert sum(c for _, _, c in PHRASINGS) >= 20 and sum(not c for _, _, c in PHRASINGS) >= 10
    assert sum(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t, _, _ in PHRASINGS) >= 10


@pytest.mark.parametrize(
    ("text", "answer", "rule"),
    [
        ("So we get \\boxed{\\frac{1}{2}} in the end.", "\\frac{1}{2}", "boxed"),
        ("first \\boxed{1}, then \\boxed{\\{1, \\{2\\}\\}}", "\\{1, \\{2\\}\\}", "boxed"),
        ("Thus the answer is $\\frac{3}{4}$.", "\\frac{3}{4}", "phrase"),
        ("The final answer is **12**. Let me know!", "12", "phrase"),
        ("The answer is 3.14.", "3.14", "phrase"),
        ("The answer is 7, because 3+4=7.", "7", "phrase"),
        ("所以答案是 42。", "42", "phrase"),
        ("答案是 7，因为 3+4=7。", "7", "phrase"),
        ("最终答案为：x=5\n验证完毕", "x=5", "phrase"),
        ("Step one.\n#### 72", "72", "hash"),
        ("Therefore x = 2\\sqrt{2}.", "2\\sqrt{2}", "equation"),
        ("I counted 3 apples and 1,250 pears", "1250", "math_verify"),
        ("It is -7/2 of the total", "-7/2", "math_verify"),
        ("7+5=12, 6+8+1=15, so 152", "152", "final_number"),
        ("The temperature fell to -3 degrees.", "-3", "math_verify"),
        ("We have 2 + 3 = 5", "5", "math_verify"),
        ("In all 1 250", "1250", "math_verify"),
        ("小明一共有15个苹果。", "15", "last_number"),
    ],
)
def test_where_the_answer_was_found(text, answer, rule):
    found = extract_answer(text)
    assert found is not None
    assert (found.answer, found.rule) == (answer, rule)


def test_no_answer_and_unbalanced_boxed():
    assert extract_answer("no digits here at all") is None
    assert last_boxed("\\boxed{1 + {2") is None


def test_a_filler_after_the_phrase_is_not_an_answer():
    found = extract_answer("The answer is as follows: we add them.\nSo x = 12.")
    assert found is not None and found.answer == "12"


def test_equivalence_is_math_verify_both_ways_through_the_same_reader():
    assert answers_equivalent("0.5", "\\frac{1}{2}") and answers_equivalent("1/2", "0.5")
    assert answers_equivalent("$1,250", "1250") and answers_equivalent("50\\%", "0.5")
    assert answers_equivalent("Tuesday", "tuesday.")
    assert not answers_equivalent("2", "3") and not answers_equivalent("Tuesday", "7")
    assert read_answer("\\frac{1}{2}").canonical == "1/2" and read_answer("北京").value == ()
    assert same_answer(read_answer("5"), read_answer("x = 5"))


def test_clusters_bucket_equivalent_answers_like_the_verifier():
    answers = ["0.5", "1/2", None, "\\frac{1}{2}", "3", "three", "3.0"]
    assert cluster_answers(answers) == [[0, 1, 3], [4, 6], [5]]


def test_maj_at_k_counts_equivalent_answers_as_one():
    # three ways of writing one half outvote two 3s; string counting would pick "3"
    answers = ["3", "0.5", "3", "1/2", "\\frac{1}{2}"]
    correct = [False, True, False, True, True]
    assert majority_answer(answers) == "0.5"
    assert maj_at_k(answers, correct) == 1.0
    # a tie goes to the answer seen first
    assert majority_answer(["3", "0.5", "3", "1/2"]) == "3"
    assert maj_at_k(["3", "0.5", "3", "1/2"], [False, True, False, True]) == 0.0


def test_candidate_answer_prefers_a_judges_record_and_never_rereads_what_a_verifier_timed_out_on():
    c = Candidate("p", "m", 0, "The answer is 7, because 3+4=7.")
    math = Verdict(c.id, "math", score=1.0, correct=True, metadata={"answer": "7.0"}, kind="verifier")
    assert candidate_answer(c, {"math": math}) == "7.0"
    assert candidate_answer(c, {}) == "7"
    rm = Verdict(c.id, "rm", score=0.3, kind="reward")
    assert candidate_answer(c, {"rm": rm}) == "7"
    assert candidate_answer(c, {"rm": rm}, judge="rm") is None
    timed_out = Verdict(c.id, "math", error="timed out after 5s (worker process killed)", kind="verifier")
    assert candidate_answer(c, {"math": timed_out, "rm": rm}) is None
