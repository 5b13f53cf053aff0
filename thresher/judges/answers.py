"""What a final answer is, and when two answers are the same: thresher's one answer semantics.

The math verifier, majority vote in selection, the `vote` policy's clusters
and maj@k all go through this module, so "0.5", "1/2" and "\\frac{1}{2}" are
one answer everywhere, and a vote never disagrees with the verifier about
what "the same answer" is.

Extraction first finds where a solution states its answer, then lets
math-verify read that statement:

1. the last `\\boxed{...}` (or `\\fbox`);
2. a GSM8K-style `#### 42` line;
3. the last answer phrase ("the answer is", "final answer:", "答案是",
   "最终答案为", "结果是"), up to the end of its sentence and cut before
   an explanation ("because", "since", "so", "，因为", "所以", ...), so
   "The answer is 7, because 3+4=7." states 7;
4. a last sentence ending in `= <LaTeX>` ("so x = 2\\sqrt{2}.");
5. a number that ends the text ("..., so 152"), as math-verify would find it;
6. math-verify's own extraction (its LaTeX and expression configs) over the
   whole text;
7. the last number (numbers glued to Chinese characters, which math-verify's
   anchors do not see).

A stated answer is read by math-verify: as LaTeX when it is a formula
(fractions, roots, sets, intervals outside `$...$`), else with math-verify's
LaTeX and expression extraction (numbers with thousands separators, units,
currency and percentages). What math-verify cannot read (a word, a name) is
kept as text and compared as text. Equivalence is math-verify's `verify`,
after a cheap match of the normalised strings.

math-verify's own timeouts use SIGALRM, which works only in the main thread;
they are off here. The math verifier runs extraction in worker processes with
a hard per-item timeout; in-process callers (votes, maj@k) compare answers a
verifier already read, and skip those it timed out on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from thresher.records import Candidate, Verdict

_PHRASE = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)(?:\s+to\s+(?:this|the)\s+\w+)?\s*(?:is\b|:|：|=)\s*[:：]?"
    r"|(?:最终答案|最后答案|答案|最终结果|结果)\s*(?:是|为|:|：|=)\s*[:：]?",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"\.(?=\s|$)|[。！？!?；;\n]")
_EXPLANATION = re.compile(
    r"[,，]?\s*(?:\b(?:because|since|so|as|given|due\s+to|which|hence|thus|therefore|for|when|where)\b"
    r"|,\s*not\b|\b(?:rather\s+than|instead\s+of)\b|，?\s*(?:因为|所以|由于|因此|即|不是))",
    re.IGNORECASE,
)
_NOT_ANSWERS = {"as follows", "below", "simple", "clear", "obvious", "easy", "straightforward", "如下", "以下"}
_HASH = re.compile(r"####\s*([^\n]*)")
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|-?\d+(?:\.\d+)?(?:/\d+)?%?")
_PLAIN_NUMBER = re.compile(
    r"[$€£¥₹]?\s*-?\s*[$€£¥₹]?\s*(?:(?:\d{1,3}(?:[, ]\d{3})+|\d+)(?:\.\d+)?|\.\d+)\s*(?:%|percent)?"
)
"""A number, maybe with currency, thousands separators or a percent sign: math-verify's own extraction reads it."""
_INTEGER = re.compile(r"-?\d{1,30}")
_FINAL_NUMBER = re.compile(r"(?:^|(?<=[\s:：]))(?<![+\-*/^×÷(=]\s)(?<!\d\s)(-?\d+(?:\.\d+)?)\s*[.。!]?\s*$")
"""A number that ends the text, after a space and not after an operator, `=` or another number."""
_COMMAND = re.compile(r"\\(?:text|mathrm|textbf|mbox|operatorname)\s*\{[^{}]*\}|\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{2,}|[\u3400-\u9fff]")
_DELIMITED = re.compile(r"(?<!\\)\$[^$]+(?<!\\)\$|\\\(|\\\[")
_SPACE = re.compile(r"\s+")
_MAX_WORDS = 6
"""A stated answer that math-verify cannot read is kept as text only up to this many words."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A final answer: the text that states it, which rule found it, and math-verify's reading of it."""

    answer: str
    """The stated answer, cleaned (no `$`, `**` or closing full stop); reading it again gives `value`."""
    rule: str
    """Where it was found: boxed, hash, phrase, equation, final_number, math_verify, last_number, or given."""
    value: tuple[Any, ...] = ()
    """math-verify's parse of `answer` (sympy objects); empty when it is not math (a word, a name)."""
    canonical: str | None = None
    """The sympy form, as text (`1/2` for "0.5", "\\frac{1}{2}" and "1/2"), or None."""

    @property
    def key(self) -> str:
        """The normalised text: equal keys are the same answer without asking sympy."""
        return normalize_answer(self.answer)


def normalize_answer(answer: str) -> str:
    return _SPACE.sub("", answer).casefold().rstrip(".。")


@lru_cache(maxsize=1)
def _quiet() -> None:
    """Mute math-verify's "timeout is disabled" warnings: the timeouts are ours (see the module doc)."""
    for name in ("math_verify", "math_verify.parser", "math_verify.grader", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.ERROR)


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


def clean_answer(answer: str) -> str:
    """Strip what wraps a stated answer: markdown bold, `$...$`, `\\(...\\)`, a closing full stop."""
    answer = answer.strip().strip("*").strip()
    if len(answer) >= 2 and answer[0] == answer[-1] == "$":
        answer = answer.strip("$").strip()
    for open_, close in (("\\(", "\\)"), ("\\[", "\\]")):
        if answer.startswith(open_) and answer.endswith(close):
            answer = answer[len(open_) : -len(close)].strip()
    return answer.replace("−", "-").rstrip(".。").strip().strip("*").strip()


def _is_formula(answer: str) -> bool:
    """No words (outside LaTeX commands and `\\text{}`) and no CJK: LaTeX to be read whole."""
    return not _WORD.search(_COMMAND.sub(" ", answer))


@lru_cache(maxsize=65536)
def _read(answer: str) -> tuple[Any, ...]:
    """math-verify's reading of a stated answer (cached: references and votes repeat answers)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    _quiet()
    if not answer:
        return ()
    if _INTEGER.fullmatch(answer):  # what math-verify makes of it (sympy's Number("152")), without its slow parser
        import sympy

        return (sympy.Integer(int(answer)),)
    own = [LatexExtractionConfig(), ExprExtractionConfig()]
    if _DELIMITED.search(answer) or _PLAIN_NUMBER.fullmatch(answer) or not _is_formula(answer):
        attempts = [(answer, own)]
    else:  # a formula outside $...$: math-verify's extraction would pick one number out of it
        latex = re.sub(r"(?<!\\)%", r"\\%", answer)
        attempts = [(f"${latex}$", [LatexExtractionConfig()]), (answer, own)]
    for text, config in attempts:
        parsed = parse(text, config, fallback_mode="no_fallback", parsing_timeout=None)
        if parsed:
            return tuple(parsed)
    return ()


@lru_cache(maxsize=65536)
def _canonical(answer: str) -> str | None:
    value = _read(answer)
    if not value:
        return None
    if getattr(value[0], "is_Float", False):
        return f"{float(value[0]):.15g}"  # 0.5, not sympy's 0.500000000000000
    return str(value[0])


def read_answer(answer: str, rule: str = "given") -> Answer:
    """A stated answer (a reference, an answer a judge recorded) as math-verify reads it."""
    text = clean_answer(answer)
    return Answer(text, rule, _read(text), _canonical(text))


def _phrase_answer(text: str) -> str | None:
    matches = list(_PHRASE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    boxed = last_boxed(rest)
    if boxed:
        return boxed
    end = _SENTENCE_END.search(rest)
    rest = rest[: end.start()] if end else rest
    rest = rest.strip()
    cut = _EXPLANATION.search(rest)
    if cut:
        rest = rest[: cut.start()]  # at 0 ("the answer is as follows"): the phrase states no answer
    return clean_answer(rest) or None


def _equation_answer(text: str) -> str | None:
    """The right-hand side of a last sentence `... = <formula>`, when it is a formula, not a number."""
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    if not sentences or "=" not in sentences[-1]:
        return None
    tail = clean_answer(sentences[-1].rsplit("=", 1)[1])
    if tail and _is_formula(tail) and not _PLAIN_NUMBER.fullmatch(tail) and _read(tail):
        return tail
    return None


def _math_verify_answer(text: str) -> str | None:
    """The statement math-verify's own extraction finds in the whole text (its match, as it wrote it)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    _quiet()
    parsed = parse(text, [LatexExtractionConfig(), ExprExtractionConfig()], parsing_timeout=None)
    if len(parsed) == 2 and isinstance(parsed[1], str) and parsed[1].strip():
        return parsed[1]
    return None


def _readable(answer: str) -> bool:
    """A stated answer worth keeping: math-verify reads it, or it is a short text that is not a filler."""
    if _read(answer):
        return True
    return len(answer.split()) <= _MAX_WORDS and normalize_answer(answer) not in _NOT_ANSWERS


def extract_answer(text: str) -> Answer | None:
    """The final answer of a solution (see the module doc for the rules, in order), or None."""
    boxed = last_boxed(text)
    if boxed:
        return read_answer(boxed, "boxed")
    hashed = _HASH.findall(text)
    if hashed and clean_answer(hashed[-1]):
        return read_answer(hashed[-1], "hash")
    phrase = _phrase_answer(text)
    if phrase and _readable(phrase):
        return read_answer(phrase, "phrase")
    equation = _equation_answer(text)
    if equation:
        return read_answer(equation, "equation")
    final = _FINAL_NUMBER.search(text)
    if final and not _DELIMITED.search(text):
        return read_answer(final.group(1), "final_number")
    found = _math_verify_answer(text)
    if found and _read(clean_answer(found)):
        return read_answer(found, "math_verify")
    numbers = _NUMBER.findall(text)
    if numbers:
        return read_answer(numbers[-1].replace(",", ""), "last_number")
    return None


def same_answer(gold: Answer, other: Answer) -> bool:
    """True when `other` states the same answer as `gold`: the same text, or equal by math-verify.

    math-verify's comparison is not symmetric (an assignment `x = 5` equals a
    gold `5`); pass the reference, or a vote cluster's first answer, as `gold`.
    """
    if gold.key == other.key:
        return True
    if not gold.value or not other.value:
        return False
    from math_verify import verify

    _quiet()
    return bool(verify(list(gold.value), list(other.value), timeout_seconds=None))


def answers_equivalent(a: str, b: str) -> bool:
    """Two stated answers (strings) are the same answer; `a` plays the reference."""
    return _equivalent(clean_answer(a), clean_answer(b))


@lru_cache(maxsize=65536)
def _equivalent(a: str, b: str) -> bool:
    return same_answer(read_answer(a), read_answer(b))


def cluster_answers(answers: Sequence[str | None]) -> list[list[int]]:
    """Indexes of equivalent answers, one list per distinct answer, in order of first appearance.

    None (no answer) joins no cluster. Each answer is compared with the first
    answer of each cluster, as a vote or maj@k counts them.
    """
    clusters: list[tuple[str, list[int]]] = []
    by_key: dict[str, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        key = normalize_answer(clean_answer(a))
        if key in by_key:
            clusters[by_key[key]][1].append(i)
            continue
        for c, (first, members) in enumerate(clusters):
            if answers_equivalent(first, a):
                members.append(i)
                by_key[key] = c
                break
        else:
            by_key[key] = len(clusters)
            clusters.append((a, [i]))
    return [members for _, members in clusters]


def candidate_answer(candidate: Candidate, verdicts: Mapping[str, Verdict], judge: str | None = None) -> str | None:
    """The candidate's final answer: the one a judge recorded (`metadata["answer"]`), else extracted.

    With `judge` named, only that judge's answer counts. A candidate a
    verifier failed on (it timed out reading it) has no answer: extracting it
    here, without a timeout, could hang the same way.
    """
    ordered = [verdicts[judge]] if judge is not None and judge in verdicts else list(verdicts.values())
    for v in ordered:
        if v.error is None:
            a = v.metadata.get("answer")
            if isinstance(a, str | int | float) and not isinstance(a, bool) and str(a).strip():
                return str(a).strip()
    if judge is not None and judge in verdicts:
        return None  # the named judge found no answer: do not guess one
    if any(v.error is not None and v.kind == "verifier" for v in verdicts.values()):
        return None
    found = extract_answer(candidate.text)
    return found.answer if found is not None else None
