"""The eval judge task in the listwise LLM-judge format, per language, read by the judge's own strict parser."""

from __future__ import annotations

from thresher.eval.judge_task import build_items, item_pick, parse_listwise_pick, per_task_accuracy
from thresher.judges.llm_templates import listwise_request
from thresher.records import Candidate, Prompt, Verdict


def _case(task: str, text: str, language: str):
    p = Prompt.create(task, [{"role": "user", "content": text}], reference="4", metadata={"language": language})
    cands = [Candidate(p.id, "s", i, t) for i, t in enumerate(["4", "5", "6"])]
    verdicts = [Verdict(c.id, "math", correct=c.text == "4") for c in cands]
    return p, cands, verdicts


def test_listwise_items_are_the_judge_prompt_without_reference_in_each_prompts_language():
    en = _case("addition", "What is 2 + 2?", "en")
    zh = _case("word_problem_zh", "二加二等于多少？", "zh")
    items = build_items([en[0], zh[0]], [en[1], zh[1]], [en[2], zh[2]], language="auto", form="listwise", seed=1)
    assert [it.language for it in items] == ["en", "zh"] and {it.form for it in items} == {"listwise"}
    for it, (p, cands, _) in zip(items, (en, zh)):
        text = it.prompt.question
        shown = [t for t in ("4", "5", "6") if f"\n{t}\n" in text]
        assert len(shown) == 3 and "[Reference answer]" not in text and "【参考答案】" not in text
        order = sorted(shown, key=text.index)
        assert text == listwise_request(p, order, it.language, with_reference=False)[0]["content"]
        assert it.correct == [t == "4" for t in order]


def test_listwise_pick_is_strict_and_per_task_accuracy_splits_by_source():
    assert parse_listwise_pick("<reasoning>2 is right</reasoning>\n<best>2</best>", 3) == 1
    assert parse_listwise_pick("<reasoning>x</reasoning><best>2</best><ranking>2, 1, 3</ranking>", 3) == 1
    assert parse_listwise_pick("<best>2</best>", 3) is None  # no reasoning: not the format asked for
    assert parse_listwise_pick("<reasoning>x</reasoning><best>4</best>", 3) is None
    en = _case("addition", "What is 2 + 2?", "en")
    zh = _case("word_problem_zh", "二加二等于多少？", "zh")
    items = build_items([en[0], zh[0]], [en[1], zh[1]], [en[2], zh[2]], language="auto", form="listwise", seed=1)
    right = [it.correct.index(True) + 1 for it in items]
    picks = [item_pick(items[0], f"<reasoning>-</reasoning><best>{right[0]}</best>"), item_pick(items[1], "乱写")]
    assert picks == [right[0] - 1, None]
    assert per_task_accuracy(items, picks) == {"pass@1[addition]": 1.0, "pass@1[word_problem_zh]": 0.0}
