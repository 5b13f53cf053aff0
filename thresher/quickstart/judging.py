"""What the tiny judge is pretrained to write: a listwise verdict that solves the problem, then checks each response.

The judge reads thresher's own listwise prompt (`llm_templates.listwise_messages`:
the problem and K numbered responses, in the prompt's language) and answers
in the format `llm_parse` reads:

    <reasoning>[Question]
    What is 67 + 85?
    Solution: 7+5=12, 6+8+1=15, so 152
    The answer is 152.
    Response 1 gives 152; the answer is 152: 2 2 yes, 5 5 yes, 1 1 yes: right.
    Response 2 gives 142; the answer is 152: 2 2 yes, 4 5 no, 1 1 no: wrong, 6+8+1=14 is wrong.
    Response 3 gives no answer: wrong.</reasoning>
    <best>1</best>
    <ranking>1, 2, 3</ranking>

It restates the question, works it once, step by step, then goes through the
responses in the order shown: each one's final answer (read as the math
verifier reads it) against its own, digit by digit (`digit_checks`), and for
a wrong one the first step where its work departs from the solution. The best
is the first right response; when none is right, the one whose work went
furthest before its first wrong step. The ranking puts the right responses
first, then the wrong ones by how far they got.

Every part is shaped for a model of a few hundred thousand parameters, which
reads reliably only what sits a few tokens back or follows a header it has
seen: the question is restated (measured: without it the judge's solutions
used digits from the responses, not the question); the answer is restated
under the same words each response line repeats ("the answer is"), so each
line copies it from the line above; and the comparison is made digit by digit
with a running verdict, because a verdict written after two whole numbers was
not learned (measured: right/wrong agreed with the judge's own copied numbers
59% of the time, the digit steps 82% at half the training).
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
        "solution": "Solution: {solution}\nThe answer is {reference}.",
        "right": "Response {label} gives {answer}; the answer is {reference}: {checks}: right.",
        "wrong_step": "Response {label} gives {answer}; the answer is {reference}: {checks}: wrong, {step} is wrong.",
        "wrong": "Response {label} gives {answer}; the answer is {reference}: {checks}: wrong.",
        "missing": "Response {label} gives no answer: wrong.",
        "same": "yes",
        "differ": "no",
    },
    "zh": {
        "solution": "解答：{solution}\n正确答案是 {reference}。",
        "right": "回答{label}的答案是 {answer}，正确答案是 {reference}：{checks}：正确。",
        "wrong_step": "回答{label}的答案是 {answer}，正确答案是 {reference}：{checks}：错误，{step} 不对。",
        "wrong": "回答{label}的答案是 {answer}，正确答案是 {reference}：{checks}：错误。",
        "missing": "回答{label}没有给出答案：错误。",
        "same": "对",
        "differ": "错",
    },
}
"""The judge's lines, by the language of the prompt it judges."""

CORPUS_LINES: dict[Language, dict[str, str]] = {
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
"""The judge's lines before the digit steps, frozen: the tokenizer's merges were learned on verdicts in this
form (`tokenizer.corpus_texts`), and a change to that text would change the merges and so every built model."""


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


def digit_checks(answer: str, reference: str, language: Language) -> str:
    """The two answers compared digit by digit, units first, each step saying whether all so far agree.

    "53" against "63" is "3 3 yes, 5 6 no": each step holds the two digits
    and the running verdict (once "no", always "no"), so every token the judge
    writes depends only on the few just before it and on digits it reads the
    way column arithmetic reads operands. A verdict written after two whole
    numbers is a comparison a model this small does not learn (measured: the
    tiny judge's right/wrong agreed with its own copied numbers 59% of the
    time, while it copied the answers right 99% of the time). The shorter
    number is padded with zeros, as the worked answers pad their columns; an
    answer that is not a plain whole number gets no digit steps.
    """
    if not (answer.isdigit() and reference.isdigit()):
        return LINES[language]["differ"] if answer != reference else LINES[language]["same"]
    width = max(len(answer), len(reference))
    a, b = answer.zfill(width)[::-1], reference.zfill(width)[::-1]
    sep = "，" if language == "zh" else ", "
    out, agree = [], True
    for x, y in zip(a, b):
        agree = agree and x == y
        out.append(f"{x} {y} {LINES[language]['same' if agree else 'differ']}")
    return sep.join(out)


def judge_answer(prompt: Prompt, shown: Sequence[str], language: Language | None = None, corpus: bool = False) -> str:
    """The listwise verdict the tiny judge learns for `prompt` with responses `shown` (numbered 1..K in order).

    `corpus=True` writes the tokenizer corpus's form: no restated question, the `CORPUS_LINES`.
    """
    from thresher.quickstart.worked import worked_answer

    lang = language or prompt_language(prompt)
    t = (CORPUS_LINES if corpus else LINES)[lang]
    solution = worked_answer(prompt)
    sol_steps = steps(solution)
    reference = _final(solution)
    lines = ([] if corpus else [question_block(prompt, lang)]) + [t["solution"].format(solution=solution, reference=reference)]
    right: list[int] = []
    wrong: list[tuple[int, int]] = []  # (-progress, label)
    for label, text in enumerate(shown, start=1):
        answer = _final(text)
        work = steps(text)
        if answer is None:
            lines.append(t["missing"].format(label=label))
            wrong.append((-_progress(sol_steps, work), label))
            continue
        checks = digit_checks(answer, reference, lang)
        if answer == reference:
            lines.append(t["right"].format(label=label, answer=answer, reference=reference, checks=checks))
            right.append(label)
            continue
        done = _progress(sol_steps, work)
        wrong.append((-done, label))
        step = work[done] if done < len(work) else None
        if step is not None and _ARITHMETIC_STEP.match(step):
            lines.append(t["wrong_step"].format(label=label, answer=answer, reference=reference, checks=checks, step=step))
        else:
            lines.append(t["wrong"].format(label=label, answer=answer, reference=reference, checks=checks))
    ranking = right + [label for _, label in sorted(wrong)]
    reasoning = "\n".join(lines)
    return f"<reasoning>{reasoning}</reasoning>\n<best>{ranking[0]}</best>\n<ranking>{', '.join(map(str, ranking))}</ranking>"
