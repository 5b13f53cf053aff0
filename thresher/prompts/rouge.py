"""ROUGE-L between short texts, in any language, fast enough to dedup thousands of instructions.

Self-Instruct keeps a new instruction only if its ROUGE-L against every kept
one is below a threshold. The usual tool (`rouge-score`) tokenizes on
`[a-z0-9]+`, so a Chinese instruction becomes zero tokens and every Chinese
pair scores 0: nothing is ever rejected. Here CJK text is split into
characters or jieba words while Latin-script text is split into lowercased
words, and mixed text gets both.

Each comparison is against every kept text, so the cost grows with the square
of the output. Two things keep it cheap: the kept texts are tokenized once,
and the LCS uses the bit-parallel algorithm (Hyyrö 2004) on Python integers,
one big-integer step per token instead of one Python step per token pair. A
length bound skips pairs that cannot reach the threshold at all.
`bench/rouge_dedup.py` measures it against `rouge-score`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from thresher.errors import UserError

Granularity = Literal["auto", "char", "jieba"]
"""How to split CJK text into ROUGE tokens; other scripts are always lowercased words.

`char`: each CJK character is a token (needs nothing installed).
`jieba`: CJK runs are segmented into words by jieba.
`auto`: `jieba` (the same answer on every machine; it fails if jieba is
missing rather than quietly switching to characters).
"""

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")
_SEGMENT = re.compile(f"([{_CJK}]+)")


def has_cjk(text: str) -> bool:
    return _CJK_RUN.search(text) is not None


def cjk_runs(text: str) -> list[str]:
    """The runs of CJK characters in `text`, in order."""
    return _CJK_RUN.findall(text)


def _jieba():
    try:
        import jieba
    except ImportError:
        raise UserError(
            "ROUGE-L on Chinese/Japanese/Korean text with granularity 'jieba' (the default) needs jieba: "
            "pip install 'thresher[prompts]', or use granularity 'char'"
        ) from None
    import logging

    jieba.setLogLevel(logging.WARNING)
    return jieba


def tokenize(text: str, granularity: Granularity = "auto") -> list[str]:
    """Split `text` into ROUGE tokens (see `Granularity`); punctuation and spaces are dropped."""
    text = text.lower()
    if granularity not in ("auto", "char", "jieba"):
        raise UserError(f"ROUGE granularity {granularity!r}: expected auto, char or jieba")
    if granularity == "char" or not has_cjk(text):
        return _TOKEN.findall(text)
    jieba = _jieba()
    tokens: list[str] = []
    for i, part in enumerate(_SEGMENT.split(text)):
        if i % 2:  # a CJK run
            tokens.extend(w for w in jieba.lcut(part) if w.strip())
        else:
            tokens.extend(_TOKEN.findall(part))
    return tokens


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (bit-parallel, Hyyrö 2004)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    return _lcs_with_masks(_match_masks(a), len(a), b)


def _match_masks(tokens: Sequence[str]) -> dict[str, int]:
    masks: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    return masks


def _lcs_with_masks(masks: dict[str, int], n: int, other: Iterable[str]) -> int:
    full = (1 << n) - 1
    v = full
    for tok in other:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return n - v.bit_count()


def f_measure(lcs: int, m: int, n: int) -> float:
    """ROUGE-L F1 from an LCS length and the two token counts (0 for an empty side)."""
    if lcs == 0 or m == 0 or n == 0:
        return 0.0
    return 2 * lcs / (m + n)


def rouge_l(a: str, b: str, granularity: Granularity = "auto") -> float:
    """ROUGE-L F1 of two texts (symmetric; precision and recall weighted equally)."""
    ta, tb = tokenize(a, granularity), tokenize(b, granularity)
    return f_measure(lcs_length(ta, tb), len(ta), len(tb))


@dataclass(slots=True)
class _Kept:
    text: str
    tokens: list[str]


@dataclass(slots=True)
class RougeIndex:
    """Texts kept so far; `add` keeps a new one only if it is not a near-duplicate of any of them.

    `threshold` is the ROUGE-L F1 at or above which a text counts as a
    near-duplicate (Self-Instruct used 0.7).
    """

    threshold: float = 0.7
    granularity: Granularity = "auto"
    _kept: list[_Kept] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise UserError(f"ROUGE-L threshold must be in (0, 1], got {self.threshold}")

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def texts(self) -> list[str]:
        return [k.text for k in self._kept]

    def nearest(self, text: str) -> tuple[float, str | None]:
        """The highest ROUGE-L against a kept text that reaches the threshold, and that text.

        Pairs whose length ratio alone keeps them below the threshold are not
        scored, so (0.0, None) means "nothing near", not "scored zero
        against everything".
        """
        return self._nearest(tokenize(text, self.granularity))

    def _nearest(self, tokens: list[str]) -> tuple[float, str | None]:
        m = len(tokens)
        if m == 0:
            return 0.0, None
        masks = _match_masks(tokens)
        best, best_text = 0.0, None
        for k in self._kept:
            n = len(k.tokens)
            if f_measure(min(m, n), m, n) < self.threshold:  # even a full match of the shorter is too little
                continue
            score = f_measure(_lcs_with_masks(masks, m, k.tokens), m, n)
            if score > best:
                best, best_text = score, k.text
                if score >= 1.0:
                    break
        return best, best_text

    def add(self, text: str) -> tuple[bool, float, str | None]:
        """Keep `text` unless it is a near-duplicate; returns (kept, nearest score, nearest text)."""
        tokens = tokenize(text, self.granularity)
        score, near = self._nearest(tokens)
        if score >= self.threshold:
            return False, score, near
        self._kept.append(_Kept(text, tokens))
        return True, score, near

    def extend(self, texts: Iterable[str]) -> None:
        """Add texts unconditionally (seeds that later texts must differ from)."""
        for t in texts:
            self._kept.append(_Kept(t, tokenize(t, self.granularity)))
