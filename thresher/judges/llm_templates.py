"""Prompts for the LLM judge, in English and Chinese, and the output format each one asks for.

Every template asks for a tagged answer (`<critique>...</critique>` and
friends): tags survive long free-text reasoning better than JSON, whose
quotes and newlines small judges often break. The parser also accepts the
same fields as one JSON object. The feedback stage rebuilds the exact judge
prompt of a listwise verdict with `listwise_messages`, in the language the
verdict records, to export critique-SFT examples; `prompt_digest` lets it
check that the rebuilt prompt is the one the judge saw.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from thresher.records import Message, Prompt

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def prompt_language(prompt: Prompt) -> Language:
    """The language a prompt is written in: `metadata["language"]` when it says, else zh for Chinese text."""
    declared = prompt.metadata.get("language")
    if declared in LANGUAGES:
        return declared  # type: ignore[return-value]
    text = "".join(m["content"] for m in prompt.messages)
    return "zh" if len(_CJK.findall(text)) >= max(1, len(text) // 10) else "en"


def language_for(setting: str, prompt: Prompt) -> Language:
    """A language setting (en, zh or auto) made concrete for one prompt: auto is the prompt's own."""
    return prompt_language(prompt) if setting == "auto" else setting  # type: ignore[return-value]


def prompt_digest(messages: Sequence[Message]) -> str:
    """A short hash of a judge request's messages: recorded on verdicts, compared when the request is rebuilt."""
    h = hashlib.sha1()
    for m in messages:
        h.update(f"{m['role']}\n{m['content']}\n\0".encode())
    return h.hexdigest()[:16]

_QUESTION = {"en": "[Question]", "zh": "【问题】"}
_REFERENCE = {"en": "[Reference answer]", "zh": "【参考答案】"}
_RESPONSE = {"en": "[Response{label}]", "zh": "【回答{label}】"}
_END = {"en": "[End of response{label}]", "zh": "【回答{label} 结束】"}

POINTWISE = {
    "en": (
        "You are a strict and fair grader. Evaluate the response to the question below.\n\n"
        "{context}\n\n"
        "First write a critique: what is correct, what is wrong, and what is missing. "
        "Then give a score from 1 (useless) to {scale} (perfect).\n"
        "Reply in exactly this format and nothing else:\n"
        "<critique>your critique</critique>\n"
        "<score>an integer from 1 to {scale}</score>"
    ),
    "zh": (
        "你是一位严格而公正的评分者。请评价下面这个问题的回答。\n\n"
        "{context}\n\n"
        "先写出点评：哪些正确，哪些错误，缺少什么。然后给出 1（毫无用处）到 {scale}（完美）之间的分数。\n"
        "请严格按照以下格式回复，不要输出其他内容：\n"
        "<critique>你的点评</critique>\n"
        "<score>1 到 {scale} 之间的整数</score>"
    ),
}

PAIRWISE = {
    "en": (
        "You are a strict and fair judge. Compare the two responses to the question below and decide which "
        "one is better: more correct first, then more helpful and clear. Do not let the order of the "
        "responses or their length sway you.\n\n"
        "{context}\n\n"
        "Reply in exactly this format and nothing else:\n"
        "<reasoning>your comparison</reasoning>\n"
        "<winner>A, B or tie</winner>"
    ),
    "zh": (
        "你是一位严格而公正的评判者。请比较下面问题的两个回答，判断哪一个更好：首先看是否正确，其次看是否有帮助、"
        "是否清晰。不要受回答的顺序或长度影响。\n\n"
        "{context}\n\n"
        "请严格按照以下格式回复，不要输出其他内容：\n"
        "<reasoning>你的比较分析</reasoning>\n"
        "<winner>A、B 或 tie</winner>"
    ),
}

LISTWISE = {
    "en": (
        "You are a strict and fair judge. Below are {n} responses to the same question. Examine each one "
        "for correctness and quality, reason step by step about their strengths and mistakes, and then name "
        "the best response. Do not let the order of the responses or their length sway you.\n\n"
        "{context}\n\n"
        "Reply in exactly this format and nothing else:\n"
        "<reasoning>your step-by-step analysis of the responses</reasoning>\n"
        "<best>the number of the best response</best>\n"
        "<ranking>all response numbers from best to worst, separated by commas</ranking>"
    ),
    "zh": (
        "你是一位严格而公正的评判者。下面是同一个问题的 {n} 个回答。请逐一检查它们的正确性和质量，逐步分析各自的优点"
        "和错误，然后指出最好的回答。不要受回答的顺序或长度影响。\n\n"
        "{context}\n\n"
        "请严格按照以下格式回复，不要输出其他内容：\n"
        "<reasoning>你对各个回答的逐步分析</reasoning>\n"
        "<best>最好的回答的编号</best>\n"
        "<ranking>按从好到差排列的全部回答编号，用逗号分隔</ranking>"
    ),
}


def question_block(prompt: Prompt, language: Language) -> str:
    """The question as judge prompts show it: its header, then the conversation (with any system prompt)."""
    conversation = "\n\n".join(
        m["content"] if m["role"] == "user" else f"({m['role']}) {m['content']}" for m in prompt.messages
    )
    return f"{_QUESTION[language]}\n{conversation}"


def _context(prompt: Prompt, answers: Sequence[tuple[str, str]], language: Language) -> str:
    """The question (with any system prompt), the reference if there is one, and the labelled answers."""
    parts = [question_block(prompt, language)]
    if prompt.reference:
        parts.append(f"{_REFERENCE[language]}\n{prompt.reference}")
    for label, text in answers:
        label = f" {label}" if label else ""
        parts.append(f"{_RESPONSE[language].format(label=label)}\n{text}\n{_END[language].format(label=label)}")
    return "\n\n".join(parts)


def pointwise_messages(prompt: Prompt, answer: str, language: Language = "en", scale: int = 10) -> list[Message]:
    context = _context(prompt, [("", answer)], language)
    return [{"role": "user", "content": POINTWISE[language].format(context=context, scale=scale)}]


def pairwise_messages(prompt: Prompt, answer_a: str, answer_b: str, language: Language = "en") -> list[Message]:
    context = _context(prompt, [("A", answer_a), ("B", answer_b)], language)
    return [{"role": "user", "content": PAIRWISE[language].format(context=context)}]


def listwise_messages(prompt: Prompt, answers: Sequence[str], language: Language = "en") -> list[Message]:
    """The judge prompt showing `answers` numbered 1..N in the given (presented) order."""
    context = _context(prompt, [(str(i + 1), a) for i, a in enumerate(answers)], language)
    return [{"role": "user", "content": LISTWISE[language].format(context=context, n=len(answers))}]


def listwise_request(
    prompt: Prompt, answers: Sequence[str], language: Language, with_reference: bool = True
) -> list[Message]:
    """The listwise judge request as a judge asks it and as export rebuilds it from a verdict's record.

    `with_reference: False` leaves the prompt's reference answer out (a judge judging unaided).
    """
    if not with_reference and prompt.reference is not None:
        prompt = replace(prompt, reference=None)
    return listwise_messages(prompt, answers, language)
