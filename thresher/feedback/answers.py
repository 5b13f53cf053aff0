"""Final answers of math candidates, and when two of them are the same answer.

Majority voting counts answers, not texts: "0.5", "1/2" and "\\frac{1}{2}"
are one vote bucket. The math verifier already extracted each candidate's
answer (`metadata["answer"]`); where no judge did, the verifier's own
extraction rules are applied to the text. Equivalence is math-verify's symbolic comparison, after a
cheap exact match on the normalised strings.

math-verify's own timeouts use signals, which only work in the main thread;
here they are turned off and the inputs are short extracted answers, so a
comparison is bounded by the size of those strings.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from thresher.records import Candidate, Verdict

_SPACE = re.compile(r"\s+")


@contextmanager
def _quiet() -> Iterator[None]:
    """Mute math-verify's one-time "timeout is disabled" warning: answers here are short strings."""
    loggers = [logging.getLogger(n) for n in ("math_verify.parser", "math_verify.grader")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)


def normalize_answer(answer: str) -> str:
    return _SPACE.sub("", answer).rstrip(".")


def candidate_answer(candidate: Candidate, verdicts: Mapping[str, Verdict], judge: str | None = None) -> str | None:
    """The candidate's final answer: a judge's `metadata["answer"]`, else extracted from its text."""
    ordered = [verdicts[judge]] if judge is not None and judge in verdicts else list(verdicts.values())
    for v in ordered:
        if v.error is None:
            a = v.metadata.get("answer")
            if isinstance(a, str | int | float) and not isinstance(a, bool) and str(a).strip():
                return str(a).strip()
    if judge is not None and judge in verdicts:
        return None  # the named judge found no answer: do not guess one
    return _extract(candidate.text)


def _extract(text: str) -> str | None:
    """The same extraction the math verifier applies (boxed, "the answer is" / "答案是", last number)."""
    from thresher.judges.answers import extract_answer

    found = extract_answer(text)
    return found.answer if found is not None else None


@lru_cache(maxsize=65536)
def _parse(text: str) -> Any:
    import math_verify

    with _quiet():
        parsed = math_verify.parse(text, parsing_timeout=None)
    return parsed if parsed else None


def answers_equivalent(a: str, b: str) -> bool:
    """True when two extracted answers are the same value (exactly, or symbolically by math-verify)."""
    if normalize_answer(a) == normalize_answer(b):
        return True
    return _symbolic_equal(a, b)


@lru_cache(maxsize=65536)
def _symbolic_equal(a: str, b: str) -> bool:
    import math_verify

    pa, pb = _parse(f"${a}$"), _parse(f"${b}$")
    if pa is None or pb is None:
        return False
    with _quiet():
        return bool(math_verify.verify(pa, pb, timeout_seconds=None))
