"""The judge task's items and answer parsing, in the critique-SFT format."""

from __future__ import annotations

from thresher.eval.judge_task import JUDGE_TASK, build_items, judge_prompt_text, parse_pick
from thresher.feedback.critique import TEMPLATES
from thresher.records import Candidate, Prompt, Verdict


def _case():
    p = Prompt.create("addition", [{"role": "user", "content": "What is 2 + 2?"}], reference="4")
    texts = ["4", "5", "4", "", "6"]
    oks = [True, False, True, False, None]
    cands = [Candidate(p.id, "s", i, t) for i, t in enumerate(texts)]
    verdicts = [Verdict(c.id, "math", correct=ok, score=None if ok is None else float(ok)) for c, ok in zip(cands, oks)]
    return p, cands, verdicts


def test_items_show_distinct_right_and_wrong_answers():
    p, cands, verdicts = _case()
    items = build_items([p], [cands], [verdicts], max_candidates=4, seed=3)
    assert len(items) == 1
    item = items[0]
    assert item.prompt.task == JUDGE_TASK and item.prompt.metadata == {"source": p.id, "task": "addition"}
    assert sorted(item.correct) == [False, True]  # "4" once (deduplicated), "5"; empty and unverified left out
    text = item.prompt.question
    assert text.startswith(TEMPLATES["en"].instruction.format(n=2))
    assert "Problem:\nWhat is 2 + 2?" in text
    shown = [text.split(f"Candidate {i}:\n")[1].split("\n\n")[0] for i in (1, 2)]
    assert [s == "4" for s in shown] == item.correct
    assert build_items([p], [cands[:1]], [verdicts[:1]]) == []  # nothing wrong to tell apart


def test_parse_pick_reads_the_last_conclusion():
    assert parse_pick("Candidate 1 is wrong.\n\nConclusion: the best answer is Candidate 2.", 3) == 1
    assert parse_pick("Conclusion: the best answers are Candidates 3 and 1.", 3) == 2
    assert parse_pick("Conclusion: none of the candidates is correct.", 3) is None
    assert parse_pick("Conclusion: the best answer is Candidate 9.", 3) is None
    assert parse_pick("7", 2) is None
    assert parse_pick("候选答案 1 是错误的。\n\n结论：最好的答案是候选答案 2。", 2, language="zh") == 1
    assert judge_prompt_text("1+1=", ["2", "3"], "zh").startswith("下面是一道题目和 2 个候选答案")
