"""Domain documents into passages: clean the usual OCR damage, then cut at paragraph and sentence bounds.

Domain teams' knowledge sits in PDFs run through OCR: words hyphenated across
line breaks, every line wrapped at the page width, page numbers and running
headers between paragraphs, ligatures, stray control characters. A question
written from such text asks about "Page 12 of 40". `clean_text` repairs what
can be repaired mechanically; `split_passages` then packs whole paragraphs
(or, for long ones, whole sentences) into passages of bounded size, so each
passage is a self-contained context a question can be answered from.
Chinese text (no spaces between words, 。！？ as sentence ends) is handled
alongside English.
"""

from __future__ import annotations

import re
from collections import Counter

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u3000-\u303f\uff00-\uffef"
_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st"}
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HYPHEN_BREAK = re.compile(r"(\w)-\n[ \t]*([a-z])")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])[\"'”’)）]*\s*")
_PAGE_LINE = re.compile(r"^\s*(page\s*\d+(\s*(of|/)\s*\d+)?|第\s*\d+\s*页(\s*[,，/]?\s*共\s*\d+\s*页)?|[-–—\s]*\d{1,4}[-–—\s]*)\s*$",
                        re.IGNORECASE)


def _letter_fraction(line: str) -> float:
    chars = [c for c in line if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if c.isalpha()) / len(chars)


def _joiner(left: str, right: str) -> str:
    """No space between two CJK characters when a wrapped line is joined; a space otherwise."""
    if left and right and re.match(f"[{_CJK}]", left[-1]) and re.match(f"[{_CJK}]", right[0]):
        return ""
    return " "


def clean_text(text: str, min_letters: float = 0.4) -> str:
    """Repair OCR damage; paragraphs come back separated by one blank line.

    Drops page-number lines, lines that are mostly symbols (fewer than
    `min_letters` letters among non-space characters: rules, dot leaders,
    scanning noise) and short lines repeated three or more times (running
    headers and footers); re-joins hyphenated and wrapped lines.
    """
    for lig, rep in _LIGATURES.items():
        text = text.replace(lig, rep)
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub(" ", text)
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    lines = [ln.strip() for ln in text.split("\n")]
    repeated = {ln for ln, n in Counter(ln for ln in lines if ln and len(ln) <= 80).items() if n >= 3}
    paragraphs: list[str] = []
    current = ""
    for ln in lines:
        if not ln:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        if ln in repeated or _PAGE_LINE.match(ln) or _letter_fraction(ln) < min_letters:
            continue
        ln = re.sub(r"[ \t]+", " ", ln)
        current = current + _joiner(current, ln) + ln if current else ln
    if current:
        paragraphs.append(current)
    return "\n\n".join(paragraphs)


def split_sentences(text: str) -> list[str]:
    """Sentences ending in . ! ? ; or 。！？； (the end mark stays with its sentence)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def split_passages(text: str, max_chars: int = 1500, min_chars: int = 200, clean: bool = True) -> list[str]:
    """Cut a document into passages of at most `max_chars`, at paragraph, then sentence, bounds.

    Paragraphs are packed together while they fit; a paragraph longer than
    `max_chars` is packed sentence by sentence, and a sentence longer than
    that is cut at `max_chars`. A final passage shorter than `min_chars`
    joins the one before it when both fit in 1.5 x max_chars.
    """
    if max_chars < 1 or min_chars < 0:
        raise ValueError(f"max_chars must be >= 1 and min_chars >= 0, got {max_chars}, {min_chars}")
    if clean:
        text = clean_text(text)
    units: list[tuple[str, bool]] = []  # (text, starts a paragraph)
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if len(para) <= max_chars:
            units.append((para, True))
            continue
        pieces = [s[i : i + max_chars] for s in split_sentences(para) for i in range(0, len(s), max_chars)]
        units.extend((piece, k == 0) for k, piece in enumerate(pieces))
    passages: list[str] = []
    current = ""
    for unit, new_paragraph in units:
        if not current:
            current = unit
            continue
        joined = current + ("\n\n" if new_paragraph else _joiner(current, unit)) + unit
        if len(joined) > max_chars:
            passages.append(current)
            current = unit
        else:
            current = joined
    if current:
        if passages and len(current) < min_chars and len(passages[-1]) + len(current) + 2 <= 1.5 * max_chars:
            passages[-1] = passages[-1] + "\n\n" + current
        else:
            passages.append(current)
    return passages
