"""What the tiny judge is pretrained to write: a listwise verdict that solves the problem, then checks each response.

The judge reads thresher's own listwise prompt (`llm_templates.listwise_messages`:
the problem and K numbered responses, in the prompt's language) and answers
in the format `llm_parse` reads:

    <reasoning>[Question]
    What is 67 + 85?
    Solution: 7+5=12, 6+8+1=15, so 152
    Response 1 gives 152: right.
    Response 2 gives 142: wrong, 6+8+1=14 is wrong.
    Response 3 gives no answer: wrong.</reasoning>
    <best>1</best>
    <ranking>1, 2, 3</ranking>

It restates the question, works it once, step by step, then goes through the
responses in the order shown: each one's final answer (read as the math
verifier reads it) against its own, and for a wrong one the first step where
its work departs from the solution. The best is the first right response;
when none is right, the one whose work went furthest before its first wrong
step. The ranking puts the right responses first, then the wrong ones by how
far they got.

The restatement is there for a small model: the question sits hundreds of
tokens back in the prompt, which a model of a few hundred thousand
parameters cannot reliably read from (measured: without it the tiny judge's
solutions used digits from the responses, not the question). Copying text
that follows the same header is what small transformers learn first, and
with the question restated right above it, the solution is the worked answer
the teacher already writes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from thresher.judges.llm_templates import Language, prompt_language, question_block
from thresher.records import Prompt

_STEP_SPLIT = re.compile(r", |，|\. |。")
_ARITHMETIC_STEP = re.compile(r"^(\d+[-+*]\d+(?:[-+]\d+)?=\d+|so \d+|所以 \d+)$")

LINES: dict[Language, dict[str, str]] = {
    "en": {
        "solution": "Solution: {solution}",
        "right": "Response {label} gives {answer}: right.",
        "wrong_step": "Response {label} gives {answer}: wrong, {step} is wrong.",
        "wrong": "Response {label} gives {answer}: wrong.",
        "missing": "Response {label} gives no answer: wrong.",
    },
    "zh": {
        "solution": "解答：{solution}",
        "right": "回答{label}的答案是 {answer}：正确。",
        "wrong_step": "回答{label}的答案是 {answer}：错误，{step} 不对。",
        "wrong": "回答{label}的答案是 {answer}：错误。",
        "missing": "回答{label}没有给出答案：错误。",
    },
}
"""The judge's lines, by the language of the prompt it judges."""


def steps(text: str) -> list[str]:
    """A worked answer cut into its steps ("7+5=12", "so 152", ...)."""
    return [s.strip() for s in _STEP_SPLIT.split(text.strip()) if s.strip()]


def _final(text: str) -> str | None:
    from thresher.judges.answers import extract_answer

    found = extract_answer(text)
    return None if found is None else found.answer


def _progress(solution: list[str], work: list[str]) -> int:
    """How many steps of `work` match the solution before the first that does not."""
    n = 0
    for a, b in zip(solution, work):
        if a != b:
            break
        n += 1
    return n


def judge_answer(prompt: Prompt, shown: Sequence[str], language: Language | None = None, restate: bool = True) -> str:
    """The listwise verdict the tiny judge learns for `prompt` with responses `shown` (numbered 1..K in order).

    `restate=False` leaves out the restated question (the tokenizer's corpus uses that form).
    """
    from thresher.quickstart.worked import worked_answer

    lang = language or prompt_language(prompt)
    t = LINES[lang]
    solution = worked_answer(prompt)
    sol_steps = steps(solution)
    reference = _final(solution)
    lines = ([question_block(prompt, lang)] if restate else []) + [t["solution"].format(solution=solution)]
    right: list[int] = []
    wrong: list[tuple[int, int]] = []  # (-progress, label)
    for label, text in enumerate(shown, start=1):
        answer = _final(text)
        work = steps(text)
        if answer is None:
            lines.append(t["missing"].format(label=label))
            wrong.append((-_progress(sol_steps, work), label))
            continue
        if answer == reference:
            lines.append(t["right"].format(label=label, answer=answer))
            right.append(label)
            continue
        done = _progress(sol_steps, work)
        wrong.append((-done, label))
        step = work[done] if done < len(work) else None
        if step is not None and _ARITHMETIC_STEP.match(step):
            lines.append(t["wrong_step"].format(label=label, answer=answer, step=step))
        else:
            lines.append(t["wrong"].format(label=label, answer=answer))
    ranking = right + [label for _, label in sorted(wrong)]
    reasoning = "\n".join(lines)
    return f"<reasoning>{reasoning}</reasoning>\n<best>{ranking[0]}</best>\n<ranking>{', '.join(map(str, ranking))}</ranking>"
