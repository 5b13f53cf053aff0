"""Final-answer extraction from free-form solutions, in English and Chinese.

Models state answers many ways: `\\boxed{}`, "the answer is 42", "答案是 42",
or just end on a number. Extraction is plain string work (no sympy), so the
feedback stage can call it for majority votes too; comparing answers
symbolically is the math verifier's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PHRASE = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=)\s*[:：]?\s*|(?:最终答案|答案)\s*(?:是|为|:|：)\s*[:：]?\s*",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|-?\d+(?:\.\d+)?(?:/\d+)?%?")
_SENTENCE_END = re.compile(r"\.(?=\s|$)|。|\n")


@dataclass(slots=True)
class Extracted:
    answer: str
    rule: str
    """Which rule found it: boxed, phrase, last_number."""


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), with nested braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _clean(answer: str) -> str:
    answer = answer.strip()
    answer = answer.strip("*").strip()  # markdown bold around the answer
    if len(answer) >= 2 and answer[0] == answer[-1] == "$":
        answer = answer.strip("$").strip()
    for open_, close in (("\\(", "\\)"), ("\\[", "\\]")):
        if answer.startswith(open_) and answer.endswith(close):
            answer = answer[len(open_) : -len(close)].strip()
    return answer.rstrip(".。").strip()


def after_phrase(text: str) -> str | None:
    """What follows the last "the answer is" / "答案是" up to the end of that sentence."""
    matches = list(_PHRASE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    boxed = last_boxed(rest)
    if boxed:
        return boxed
    end = _SENTENCE_END.search(rest)
    rest = rest[: end.start()] if end else rest
    rest = _clean(rest)
    return rest or None


def last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def extract_answer(text: str) -> Extracted | None:
    """The final answer of a solution: \\boxed{} first, then an answer phrase, then the last number."""
    boxed = last_boxed(text)
    if boxed:
        return Extracted(_clean(boxed), "boxed")
    phrase = after_phrase(text)
    if phrase:
        return Extracted(phrase, "phrase")
    number = last_number(text)
    if number:
        return Extracted(number, "last_number")
    return None
