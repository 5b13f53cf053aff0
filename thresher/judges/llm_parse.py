"""Strict parsing of LLM-judge output: a tagged answer or one JSON object, or an error.

A judge's answer counts only if it says exactly what was asked: one
`<score>` holding an integer in range, one `<winner>` that is A, B or tie,
one `<best>` naming an existing response. Anything else raises
`JudgeParseError`, which the judge records as `Verdict.error` and the stage
counts. Guessing a score from a malformed answer (or scoring it -1 or 0, as
several public pipelines do) turns judge failures into training data.
"""

from __future__ import annotations

import json
import re

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_JSON_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.DOTALL)
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")
_SEPARATORS = re.compile(r"[,，、\s]+")


class JudgeParseError(ValueError):
    """The judge's output does not follow the requested format."""


def strip_thinking(text: str) -> str:
    """The answer part of a reasoning model's output (its `<think>` block removed)."""
    text = _THINK.sub("", text)
    if "</think>" in text:  # an opening tag consumed by the chat template
        text = text.split("</think>", 1)[1]
    return text.strip()


def parse_fields(text: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, str]:
    """The requested fields, from `<field>...</field>` tags (each exactly once) or a single JSON object."""
    answer = strip_thinking(text)
    fenced = _JSON_FENCE.match(answer)
    body = fenced.group(1).strip() if fenced else answer
    if body.startswith("{") and body.endswith("}"):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as e:
            raise JudgeParseError(f"invalid JSON ({e.msg})") from None
        if not isinstance(data, dict):
            raise JudgeParseError("JSON answer is not an object")
        missing = [f for f in required if f not in data]
        if missing:
            raise JudgeParseError(f"JSON answer lacks {', '.join(missing)}")
        return {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in data.items() if k in required + optional}
    out = {}
    for name in required + optional:
        found = re.findall(rf"<{name}>(.*?)</{name}>", answer, re.DOTALL)
        if len(found) > 1:
            raise JudgeParseError(f"<{name}> appears {len(found)} times")
        if not found:
            if name in required:
                raise JudgeParseError(f"no <{name}>...</{name}> in the answer")
            continue
        out[name] = found[0].strip()
    return out


def parse_score(raw: str, scale: int) -> float:
    """A rubric score: a number from 1 to `scale`, nothing else."""
    m = _NUMBER.fullmatch(raw)
    if not m:
        raise JudgeParseError(f"score {raw[:40]!r} is not a number")
    value = float(m.group(1))
    if not 1 <= value <= scale:
        raise JudgeParseError(f"score {value:g} is outside 1..{scale}")
    return value


def parse_winner(raw: str) -> str:
    """`A`, `B` or `tie` (Chinese 平局 too)."""
    value = raw.strip().strip("*").strip()
    if value.upper() in ("A", "B"):
        return value.upper()
    if value.lower() in ("tie", "平局", "平手"):
        return "tie"
    raise JudgeParseError(f"winner {raw[:40]!r} is not A, B or tie")


def parse_index(raw: str, n: int) -> int:
    """A response number from 1 to n."""
    value = raw.strip().strip("*").strip()
    if not value.isdigit() or not 1 <= int(value) <= n:
        raise JudgeParseError(f"{raw[:40]!r} is not a response number from 1 to {n}")
    return int(value)


def parse_ranking(raw: str, n: int) -> list[int]:
    """All response numbers 1..n, each once, best first."""
    items = [s for s in _SEPARATORS.split(raw.strip().strip("[]")) if s]
    if not all(s.isdigit() for s in items) or sorted(int(s) for s in items) != list(range(1, n + 1)):
        raise JudgeParseError(f"ranking {raw[:60]!r} is not an ordering of 1..{n}")
    return [int(s) for s in items]
