"""Pool selection on a Chinese pool: a similarity that reads Chinese, and a warning when the model cannot."""

from __future__ import annotations

import pytest

from thresher.prompts.lexical import LexicalEmbedder, lexical_terms
from thresher.prompts.pool_select import (
    LanguageMismatchWarning,
    PoolSelectConfig,
    chinese_share,
    choose_embedder,
    is_english_only,
    select_from_pool,
)
from thresher.records import Prompt

TARGETS = {
    "金融": ["如何计算股票的市盈率？", "银行贷款利率上升会怎样影响房贷？", "什么是基金定投？"],
    "烹饪": ["红烧肉怎么做才好吃？", "煮米饭需要放多少水？", "如何炒出嫩滑的鸡蛋？"],
}
POOL = {
    "股票市盈率高说明什么？": "金融", "房贷利率和银行贷款有什么关系？": "金融", "基金定投每个月投多少合适？": "金融",
    "红烧肉需要炖多久？": "烹饪", "米饭煮糊了怎么办？": "烹饪", "鸡蛋怎么炒才嫩？": "烹饪",
}


def _p(text: str, task: str) -> Prompt:
    return Prompt.create(task, [{"role": "user", "content": text}])


def _targets() -> list[Prompt]:
    return [_p(t, task) for task, texts in TARGETS.items() for t in texts]


def test_lexical_terms_read_chinese_words_and_bigrams():
    terms = lexical_terms("红烧肉怎么做 with rice")
    assert "红烧肉" in terms and "烧肉" in terms and "rice" in terms


def test_a_chinese_pool_row_lands_in_its_task_with_a_warning_that_the_default_model_reads_english_only():
    pool = [_p(text, "pool") for text in POOL]
    assert chinese_share(pool) == 1.0 and is_english_only(None) and is_english_only("sentence-transformers/all-mpnet-base-v2")
    assert not is_english_only("paraphrase-multilingual-MiniLM-L12-v2") and not is_english_only("/models/bge-m3")
    with pytest.warns(LanguageMismatchWarning, match="100% of the rows are Chinese.*reads English only.*jieba"):
        result = select_from_pool(pool, _targets(), PoolSelectConfig(per_task=5))
    placed = {p.question: p.task for p in result.prompts}
    assert placed == POOL  # every row, in its own task (min_score 0.1 for lexical similarity)
    assert {p.metadata["compared_by"] for p in result.prompts} == {"lexical"}
    assert all(0.1 <= p.metadata["score"] < 1 for p in result.prompts)


def test_lexical_similarity_still_leaves_out_copies_of_targets():
    pool = [_p("如何计算股票的市盈率？", "pool"), _p("红烧肉需要炖多久？", "pool")]
    result = select_from_pool(pool, _targets(), PoolSelectConfig(per_task=5, similarity="lexical"))
    assert [p.question for p in result.prompts] == ["红烧肉需要炖多久？"]
    assert [r.reason for r in result.rejected] == ["near_copy_of_target"]


def test_english_pools_keep_the_embedding_model_and_an_explicit_multilingual_one_is_trusted():
    en = [_p("How do I compute a stock's P/E ratio?", "pool")]
    assert chinese_share(en) == 0.0
    cfg = PoolSelectConfig(similarity="lexical")
    assert isinstance(choose_embedder(en, en, cfg), LexicalEmbedder)  # asked for: given, no warning
    embed = LexicalEmbedder(["股票 市盈率", "红烧肉"])
    sims = (embed(["股票市盈率"]) @ embed(["股票 市盈率", "红烧肉"]).T).toarray()[0]
    assert sims[0] > 0.5 and sims[1] == 0.0


@pytest.mark.slow
def test_the_english_minilm_misplaces_chinese_rows_and_says_so_when_asked_to_embed_them():
    pool = [_p(text, "pool") for text in POOL]
    with pytest.warns(LanguageMismatchWarning, match="reads English only, so Chinese rows land in tasks by chance"):
        result = select_from_pool(pool, _targets(), PoolSelectConfig(per_task=5, similarity="embedding"))
    placed = {p.question: p.task for p in result.prompts}
    # measured: one cooking question filed under finance, two dropped as "copies" of targets they do not copy
    wrong_or_lost = sum(placed.get(q) != task for q, task in POOL.items())
    assert wrong_or_lost >= 2, placed
