"""ROUGE-L for instruction dedup: exact against a reference implementation, and right for Chinese."""

from __future__ import annotations

import random

import pytest

from thresher.errors import UserError
from thresher.prompts.rouge import RougeIndex, f_measure, lcs_length, rouge_l, tokenize


def _lcs_dp(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_bit_parallel_lcs_matches_dynamic_programming():
    rng = random.Random(7)
    for _ in range(500):
        a = [rng.choice("abcdef") for _ in range(rng.randint(0, 90))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 90))]
        assert lcs_length(a, b) == _lcs_dp(a, b)


def test_english_rouge_l_equals_rouge_score_package():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pairs = [
        ("Write a poem about the sea.", "Write a short poem about the ocean"),
        ("Give me three tips for staying healthy.", "Give three tips for staying healthy!"),
        ("Explain recursion to a 10-year-old.", "List the planets of the solar system."),
    ]
    for a, b in pairs:
        assert rouge_l(a, b) == pytest.approx(scorer.score(a, b)["rougeL"].fmeasure)


def test_chinese_is_split_into_words_or_characters_not_whitespace():
    assert tokenize("请写一首关于大海的诗", "jieba") == ["请", "写", "一首", "关于", "大海", "的", "诗"]
    assert tokenize("请写一首诗 in English", "char") == ["请", "写", "一", "首", "诗", "in", "english"]
    # rouge-score sees no tokens in Chinese and would call these unrelated; here they are near-duplicates.
    a, b = "请写一首关于大海的诗", "请写一首关于海洋的短诗"
    assert rouge_l(a, b, "jieba") == pytest.approx(2 * 5 / (7 + 7))
    assert rouge_l(a, b, "char") == pytest.approx(2 * 9 / (10 + 11))


def test_index_rejects_english_near_duplicates_and_keeps_new_tasks():
    index = RougeIndex(threshold=0.7)
    assert index.add("Give me three tips for staying healthy.")[0]
    kept, score, near = index.add("Give three tips for staying healthy!")
    assert not kept and score == pytest.approx(2 * 6 / (7 + 6)) and near == "Give me three tips for staying healthy."
    assert index.add("Explain how a bill becomes a law in the United States.")[0]
    assert len(index) == 2


def test_index_rejects_chinese_near_duplicates():
    index = RougeIndex(threshold=0.7, granularity="jieba")
    index.extend(["解释什么是复利，并举一个例子。"])
    kept, score, _ = index.add("请解释什么是复利，并举出一个例子。")
    assert not kept and score == pytest.approx(2 * 6 / (7 + 9))
    assert index.add("写一封向客户道歉的邮件，说明发货延迟的原因。")[0]
    # Below the threshold in words but above it in characters: granularity decides.
    a, b = "请写一首关于大海的诗", "请写一首关于海洋的短诗"
    words, chars = RougeIndex(0.75, "jieba"), RougeIndex(0.75, "char")
    words.extend([a])
    chars.extend([a])
    assert words.add(b)[0] is True
    assert chars.add(b)[0] is False


def test_length_bound_never_skips_a_pair_at_or_above_threshold():
    rng = random.Random(3)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 25))) for _ in range(150)]
    index = RougeIndex(threshold=0.6)
    index.extend(texts[:100])
    for probe in texts[100:]:
        brute = max(rouge_l(probe, t) for t in texts[:100])
        score, _ = index.nearest(probe)
        if brute >= 0.6:
            assert score == pytest.approx(brute)
        else:
            assert score < 0.6


def test_f_measure_and_bad_arguments():
    assert f_measure(0, 3, 4) == 0.0 and f_measure(3, 3, 3) == 1.0
    with pytest.raises(UserError, match="granularity"):
        tokenize("x", "words")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="threshold"):
        RougeIndex(threshold=0)
