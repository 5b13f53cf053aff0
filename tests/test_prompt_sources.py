"""Prompt synthesis without a model: filters, parsers, passage splitting, answer checks, pool scoring."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from thresher.errors import UserError
from thresher.prompts.backtranslation import parse_instruction, parse_score
from thresher.prompts.filters import TextFilter, repeat_fraction
from thresher.prompts.magpie import end_of_turn, magpie_prefix
from thresher.prompts.passages import clean_text, split_passages, split_sentences
from thresher.prompts.pool_select import PoolSelectConfig, jaccard, parse_tags, select_from_pool
from thresher.prompts.self_instruct import parse_instance, parse_instructions, parse_is_classification
from thresher.prompts.selfqa import SelfQAConfig, _answer_reason, check_answers, is_unanswerable
from thresher.prompts.synth import SynthesisResult, resolve_language, strip_numbering
from thresher.records import Prompt

# ---------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Describe the image below.", "needs_media"),
        ("Summarize the attached PDF in three bullet points.", "needs_media"),
        ("请描述这张图片中的内容。", "needs_media"),
        ("Draw a diagram of the water cycle.", "needs_media"),
        ("Sure, here is a poem about cats and dogs.", "assistant_voice"),
        ("好的，下面是一首关于春天的诗。", "assistant_voice"),
        ("Hi", "too_short"),
        ("buy buy buy buy buy buy buy buy buy buy buy buy buy", "repetitive"),
        ("@@## !! ?? %% ^^ ** a", "not_text"),
        ("   ", "empty"),
        ("Explain how to file a tax return as a freelancer.", None),
        ("Map out a study plan for the bar exam.", None),
        ("请解释合同法中的违约责任。", None),
    ],
)
def test_text_filter_reasons(text, reason):
    assert TextFilter().reason(text) == reason


def test_text_filter_length_bounds_count_jieba_words_for_chinese():
    f = TextFilter(min_words=4, max_words=6)
    assert f.reason("解释复利") == "too_short"  # 解释 / 复利: two words, four characters
    assert f.reason("请简要解释什么是复利") is None
    assert f.reason("Explain " + "very " * 10 + "briefly") == "too_long"
    assert repeat_fraction(["a", "b", "c", "a", "b", "c", "a", "b", "c"]) == pytest.approx(4 / 7)


# ---------------------------------------------------------------- Self-Instruct parsing


def test_parse_instructions_splits_numbered_tasks_and_strips_markers():
    text = "Task 9: Write a limerick about a cat.\nTask 10: Translate the sentence into French.\n\n**Task 11:** Sort the numbers."
    assert parse_instructions(text) == [
        "Write a limerick about a cat.", "Translate the sentence into French.", "Sort the numbers.",
    ]
    assert parse_instructions("任务9：写一首关于秋天的诗。\n任务10：把下面的句子翻译成英文。") == [
        "写一首关于秋天的诗。", "把下面的句子翻译成英文。",
    ]
    assert parse_instructions("Explain recursion simply.\n\nI hope this helps!") == ["Explain recursion simply."]
    assert parse_instructions("   ") == []


def test_parse_classification_verdicts():
    assert parse_is_classification("Yes") is True
    assert parse_is_classification("**No**, it is open-ended.") is False
    assert parse_is_classification("是") is True
    assert parse_is_classification("不是") is False
    assert parse_is_classification("Maybe") is None


def test_parse_instance_input_first_and_output_first():
    inst = parse_instance("Input: The movie was dull.\nOutput: It bored the reviewer.", classification=False)
    assert (inst.input, inst.output) == ("The movie was dull.", "It bored the reviewer.")
    assert parse_instance("Input: None\nOutput: Paris.", classification=False).input == ""
    no_markers = parse_instance("Here is a poem about the sea.", classification=False)
    assert (no_markers.input, no_markers.output) == ("", "Here is a poem about the sea.")
    cls = parse_instance("Class label: Positive\nInput: I loved every minute.", classification=True)
    assert (cls.label, cls.input) == ("Positive", "I loved every minute.")
    assert parse_instance("类别：负面\n输入：服务太慢了。", classification=True).input == "服务太慢了。"
    assert parse_instance("Positive", classification=True) is None  # no input: a classification task needs one
    assert parse_instance("Class label: Positive\nInput: None", classification=True) is None


# ---------------------------------------------------------------- SelfQA


def test_unanswerable_answers_are_dropped_and_grounded_consistent_ones_kept():
    passage = ("The Basel III framework requires banks to hold common equity tier 1 capital of at least 4.5 percent "
               "of risk-weighted assets, plus a capital conservation buffer of 2.5 percent.")
    cfg = SelfQAConfig()
    good = check_answers(["At least 4.5 percent of risk-weighted assets.",
                          "4.5 percent of risk-weighted assets",
                          "Common equity tier 1 of at least 4.5 percent of risk-weighted assets."], passage)
    assert _answer_reason(good, cfg) is None
    assert good.answered == 1.0 and good.support == 1.0
    assert good.best == "At least 4.5 percent of risk-weighted assets."  # the answer closest to the others

    unanswerable = check_answers(["UNANSWERABLE", "The passage does not say.", "UNANSWERABLE"], passage)
    assert unanswerable.answered == 0.0 and _answer_reason(unanswerable, cfg) == "unanswerable"
    one_of_three = check_answers(["UNANSWERABLE", "It was founded in 1974.", "UNANSWERABLE"], passage)
    assert one_of_three.answered == pytest.approx(1 / 3) and _answer_reason(one_of_three, cfg) == "unanswerable"

    inconsistent = check_answers(["4.5 percent.", "Ten years after the crisis.", "The Basel committee voted."],
                                 passage)
    assert _answer_reason(inconsistent, cfg) == "inconsistent"

    invented = check_answers(["It was adopted in Tokyo in 1974 by the finance ministers."] * 3, passage)
    assert invented.agreement == 1.0 and _answer_reason(invented, cfg) == "unsupported"


def test_unanswerable_markers_in_chinese_and_english():
    assert is_unanswerable("UNANSWERABLE")
    assert is_unanswerable("段落中没有提到这一点。")
    assert is_unanswerable("")
    assert not is_unanswerable("资本充足率至少为百分之八。")


def test_chinese_answer_check_uses_words():
    passage = "根据规定，商业银行的资本充足率不得低于百分之八，核心一级资本充足率不得低于百分之五。"
    check = check_answers(["资本充足率不得低于百分之八。", "不得低于百分之八", "商业银行的资本充足率不得低于百分之八。"], passage)
    assert _answer_reason(check, SelfQAConfig()) is None
    assert check.support == 1.0


# ---------------------------------------------------------------- passages


OCR_PAGE = """ACME ANNUAL REPORT 2023
The company's revenue grew by 12 per-
cent in 2023, driven by strong de-
mand in Asia.

ACME ANNUAL REPORT 2023
- 3 -
..........................
Operating costs rose only 4 percent. The \ufb01nal dividend was raised to 1.20\u00ad per share.
ACME ANNUAL REPORT 2023
Page 4 of 10

公司二零二三年的营业收入增长了百分之十二，
主要来自亚洲市场的强劲需求。
第 5 页
"""


def test_clean_text_repairs_ocr_damage():
    assert clean_text(OCR_PAGE) == (
        "The company's revenue grew by 12 percent in 2023, driven by strong demand in Asia.\n\n"
        "Operating costs rose only 4 percent. The final dividend was raised to 1.20 per share.\n\n"
        "公司二零二三年的营业收入增长了百分之十二，主要来自亚洲市场的强劲需求。"
    )


def test_split_passages_respects_paragraphs_sentences_and_bounds():
    paragraphs = [" ".join(f"Sentence {p}.{s} is about topic {p}." for s in range(8)) for p in range(5)]
    text = "\n\n".join(paragraphs)
    passages = split_passages(text, max_chars=400, min_chars=100)
    assert all(len(p) <= 400 for p in passages)
    assert " ".join(p.replace("\n\n", " ") for p in passages) == " ".join(paragraphs)
    assert all(p.endswith(".") for p in passages)  # cut at sentence ends, never mid-sentence
    huge = "x" * 1000
    assert [len(p) for p in split_passages(huge, max_chars=300, min_chars=0)] == [300, 300, 300, 100]
    short_tail = split_passages("A" * 350 + ".\n\nTail.", max_chars=400, min_chars=50)
    assert short_tail == ["A" * 350 + ".\n\nTail."]
    assert split_sentences("第一句。第二句！Third one? Fourth.") == ["第一句。", "第二句！", "Third one?", "Fourth."]


# ---------------------------------------------------------------- back-translation


def test_backtranslation_parsers():
    assert parse_score("The response is focused and complete.\nScore: 5") == 5
    assert parse_score("Score: 2 at first glance, but on reflection Score: 4/5") == 4
    assert parse_score("评分：3") == 3
    assert parse_score("I would give it a high mark.") is None  # never read as a low score
    assert parse_instruction('Request: "How do I reset my router?"\n\nExtra words') == "How do I reset my router?"
    assert parse_instruction("用户请求：如何申请个人所得税退税？") == "如何申请个人所得税退税？"


# ---------------------------------------------------------------- Magpie prefix


def test_magpie_prefix_from_chatml_template():
    from thresher.tiny_models import build_tokenizer

    tok = build_tokenizer()
    assert magpie_prefix(tok) == "<|im_start|>user\n"
    assert magpie_prefix(tok, "You help tax accountants.") == (
        "<|im_start|>system\nYou help tax accountants.<|im_end|>\n<|im_start|>user\n"
    )
    assert end_of_turn(tok) == ["<|im_end|>"]


def test_magpie_prefix_from_llama3_style_template():
    from thresher.tiny_models import build_tokenizer

    tok = build_tokenizer()
    tok.chat_template = (
        "<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
        "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    )
    assert magpie_prefix(tok) == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    assert end_of_turn(tok) == ["<|eot_id|>"]
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: [redacted]\n{% endfor %}"
    with pytest.raises(UserError, match="verbatim"):
        magpie_prefix(tok)


# ---------------------------------------------------------------- pool selection


def _bag_of_words(texts):
    """A deterministic hashed bag-of-words embedder: enough to check selection mechanics without a model."""
    out = np.zeros((len(texts), 256), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z]+", t.lower()):
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 256] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _p(task, text, **meta):
    return Prompt.create(task, [{"role": "user", "content": text}], metadata=meta)


def test_pool_selection_caps_per_task_skips_target_copies_and_ranks_by_similarity():
    targets = [_p("tax", "income tax deduction for a home office"), _p("cooking", "boil an egg soft yolk minutes")]
    pool = [
        _p("x", "income tax deduction for a home office"),  # a copy of a target: never selected
        _p("x", "home office income tax deduction rules for freelancers"),
        _p("x", "tax deduction for office rent"),
        _p("x", "income tax on a second home"),
        _p("x", "how many minutes to boil an egg"),
        _p("x", "soft yolk egg boil time minutes"),
        _p("x", "the history of the roman empire"),
        _p("x", "how many minutes to boil an egg"),  # an exact duplicate of a pool row
    ]
    result = select_from_pool(pool, targets, PoolSelectConfig(per_task=2, min_score=0.3), embedder=_bag_of_words)
    by_task = {t: [p.question for p in result.prompts if p.task == t] for t in ("tax", "cooking")}
    # cosines: 6/sqrt(7*8) = 0.80, 4/sqrt(7*5) = 0.68, then 4/sqrt(7*6) = 0.62 (over the cap of 2)
    assert by_task["tax"] == ["home office income tax deduction rules for freelancers", "tax deduction for office rent"]
    assert by_task["cooking"] == ["soft yolk egg boil time minutes", "how many minutes to boil an egg"]
    assert result.reasons() == {"near_copy_of_target": 1, "over_task_cap": 1, "below_min_score": 1, "duplicate": 1}
    assert all(r.detail["pool_id"] for r in result.rejected), "every dropped row is listed with its pool id"
    first = next(p for p in result.prompts if p.task == "tax")
    assert first.metadata["nearest_target"] == targets[0].id and first.metadata["pool_id"] == pool[1].id


def test_pool_selection_by_tags_alone_and_mixed():
    targets = [_p("law", "q1", tags=["contract law", "liability"]), _p("law", "q2", tags=["tort"]),
               _p("med", "q3", tags=["cardiology"])]
    pool = [_p("x", "a", tags=["contract law", "liability"]), _p("x", "b", tags=["tort", "negligence"]),
            _p("x", "c", tags=["cardiology", "ecg"]), _p("x", "d", tags=["cooking"])]
    cfg = PoolSelectConfig(per_task=5, tag_weight=1.0, min_score=0.2, max_similarity=None)
    result = select_from_pool(pool, targets, cfg)
    assert sorted((p.task, p.question) for p in result.prompts) == [("law", "a"), ("law", "b"), ("med", "c")]
    assert [p.metadata["tag_overlap"] for p in result.prompts if p.task == "law"] == [pytest.approx(2 / 3, abs=1e-4),
                                                                                      pytest.approx(1 / 4)]
    with pytest.raises(UserError, match="has no tags"):
        select_from_pool([_p("x", "untagged")], targets, cfg)
    assert parse_tags("1. Tax Law, deductions；tax law\n- Home Office") == ["tax law", "deductions", "home office"]
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)


# ---------------------------------------------------------------- shared helpers


def test_shared_helpers():
    assert strip_numbering("1. What is X?") == "What is X?"
    assert strip_numbering("问题2：什么是复利？") == "什么是复利？"
    assert strip_numbering("(3) Why?") == "Why?"
    assert resolve_language("auto", ["什么是复利？", "Explain it."]) == "zh"
    assert resolve_language("auto", ["Explain it.", "Why?", "什么是复利？"]) == "en"
    r = SynthesisResult()
    r.reject("a", "too_short")
    r.reject("b", "too_short")
    for text in "cde":
        r.reject(text, "over_task_cap")
    assert r.summary() == "kept 0; rejected 5 (over_task_cap 3, too_short 2)"


def test_recipe_sources_name_the_bad_key(tmp_path):
    from thresher.config import PromptSource
    from thresher.errors import ConfigError
    from thresher.prompts.synth_sources import SYNTH_SOURCES

    seeds = tmp_path / "seeds.txt"
    seeds.write_text("Write a poem.\n")
    model = {"name": "gen", "path": str(tmp_path / "missing"), "backend": "hf"}
    with pytest.raises(ConfigError, match=r"^args.rouge_treshold: unknown key"):
        SYNTH_SOURCES["self_instruct"](PromptSource(source="self_instruct", path=str(seeds),
                                                    args={"model": model, "rouge_treshold": 0.5}))
    with pytest.raises(ConfigError, match=r"^args.model: missing required key"):
        SYNTH_SOURCES["magpie"](PromptSource(source="magpie"))
    with pytest.raises(ConfigError, match=r"^path: path .* does not exist"):
        SYNTH_SOURCES["selfqa"](PromptSource(source="selfqa", path=str(tmp_path / "nope"), args={"model": model}))
    with pytest.raises(ConfigError, match=r"^args.targets: missing required key"):
        SYNTH_SOURCES["pool_select"](PromptSource(source="pool_select", path=str(seeds)))
    with pytest.raises(ConfigError, match=r"^args.filter.min_wrds: unknown key"):
        SYNTH_SOURCES["magpie"](PromptSource(source="magpie", args={"model": model, "filter": {"min_wrds": 2}}))
