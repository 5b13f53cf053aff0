"""The held-out set stays held out: every training row is checked against the eval prompts.

A round's gain means nothing if the student trained on the questions it is
scored on. Eval questions leak in many ways: a prompt source that overlaps
the benchmark, a mix source pasted from the web, a synthesised prompt that
copies its seed, a critique row that quotes a problem. So before a row is
written, its text is compared with an index built once from the eval
prompts, and a contaminated row is dropped and counted.

The text is normalised first (Unicode NFKC, lower case, punctuation gone;
numbers, words and math symbols kept as tokens, thousands separators
removed) and Chinese, Japanese and Korean text is split into single
characters, since it has no spaces. Three rules flag a row:

- `exact`: one of its messages is an eval prompt's text, normalised;
- `contained`: an eval prompt shorter than an n-gram (`ngram` tokens, 13 by
  default as in the GPT-3 and Llama 2 contamination studies) appears in the
  row as a whole, when it has at least `min_tokens` tokens;
- `ngram`: the row holds at least `min_overlap` of a longer eval prompt's
  n-grams.

Two things keep different problems that share wording apart. An n-gram found
in many eval prompts (`template_prompts`) is template text ("How many ...
now?", an instruction every prompt repeats), not evidence of one prompt, and
does not count. And with `numbers_must_match` (the default) the `ngram` rule
also needs every number of the eval prompt in the row: "What is 12 + 34?"
and "What is 12 + 35?" are different problems, however many words they share.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from thresher.errors import ConfigError
from thresher.records import Prompt

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(
    rf"(?P<cjk>[{_CJK}])"
    r"|(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    rf"|(?P<word>(?:(?![{_CJK}])[^\W\d_])+)"
    r"|(?P<sym>[+\-*/=<>^%×÷±≤≥≠√π∞∑∫])"
)


def tokens(text: str) -> list[str]:
    """Normalised tokens: single CJK characters, numbers (without thousands separators), words, math symbols."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out = []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        out.append(tok.replace(",", "") if m.lastgroup == "num" else tok)
    return out


def _numbers(toks: Iterable[str]) -> Counter[str]:
    return Counter(t for t in toks if t[0].isdigit())


@dataclass(slots=True)
class ContaminationConfig:
    """`export.args.contamination`: when a training row counts as a copy of an eval prompt."""

    enabled: bool = True
    """Check rows against the eval prompts (when the round has eval prompts)."""
    ngram: int = 13
    """Tokens per n-gram (a word, a number, a symbol or one Chinese character is a token)."""
    min_overlap: float = 0.5
    """Share of an eval prompt's n-grams a row must hold to be flagged."""
    min_tokens: int = 4
    """Eval prompts shorter than an n-gram are looked for whole when they have at least this many tokens;
    shorter ones only by exact match."""
    template_prompts: int = 3
    """An n-gram found in at least this many eval prompts (and at least 1% of them) is template text."""
    numbers_must_match: bool = True
    """The n-gram rule also needs every number of the eval prompt in the row."""

    def __post_init__(self) -> None:
        if self.ngram < 2:
            raise ConfigError("ngram", f"must be at least 2, got {self.ngram}")
        if not 0 < self.min_overlap <= 1:
            raise ConfigError("min_overlap", f"must be in (0, 1], got {self.min_overlap}")
        if self.min_tokens < 1:
            raise ConfigError("min_tokens", f"must be at least 1, got {self.min_tokens}")
        if self.template_prompts < 2:
            raise ConfigError("template_prompts", f"must be at least 2, got {self.template_prompts}")


@dataclass(slots=True, frozen=True)
class Match:
    """Why a text was flagged: which eval prompt it copies, by which rule, and how much of it."""

    eval_prompt_id: str
    rule: str
    """exact, contained or ngram."""
    overlap: float
    """Share of the eval prompt's n-grams found (1.0 for exact and contained)."""


def prompt_text(prompt: Prompt) -> str:
    """What an eval prompt asks: its user turns (a shared system prompt is instruction, not the problem)."""
    return "\n".join(m["content"] for m in prompt.messages if m["role"] == "user")


def _message_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return []


def row_texts(row: dict[str, Any]) -> list[str]:
    """The texts of an export row in any of TRL's formats (messages; prompt + chosen / rejected / completion; text)."""
    out = []
    for key in ("messages", "prompt", "chosen", "rejected", "completion", "text"):
        out += _message_texts(row.get(key))
    return out


class ContaminationIndex:
    """An index of the eval prompts, built once; `check_texts` asks whether training text copies one of them."""

    def __init__(self, eval_prompts: Sequence[Prompt], config: ContaminationConfig | None = None):
        self.config = config or ContaminationConfig()
        n = self.config.ngram
        self.ids: list[str] = []
        self.exact: dict[tuple[str, ...], int] = {}
        self.short: dict[int, dict[tuple[str, ...], int]] = {}
        self.numbers: list[Counter[str]] = []
        grams_of: list[set[tuple[str, ...]]] = []
        df: Counter[tuple[str, ...]] = Counter()
        for p in eval_prompts:
            toks = tokens(prompt_text(p))
            if not toks:
                continue
            i = len(self.ids)
            self.ids.append(p.id)
            self.exact.setdefault(tuple(toks), i)
            self.numbers.append(_numbers(toks))
            grams: set[tuple[str, ...]] = set()
            if len(toks) < n:
                if len(toks) >= self.config.min_tokens:
                    self.short.setdefault(len(toks), {}).setdefault(tuple(toks), i)
            else:
                grams = {tuple(toks[j : j + n]) for j in range(len(toks) - n + 1)}
                df.update(grams)
            grams_of.append(grams)
        template = max(self.config.template_prompts, math.ceil(0.01 * len(self.ids)))
        self.grams: dict[tuple[str, ...], list[int]] = {}
        self.gram_counts: list[int] = []
        for i, grams in enumerate(grams_of):
            informative = [g for g in grams if df[g] < template]
            self.gram_counts.append(len(informative))
            for g in informative:
                self.grams.setdefault(g, []).append(i)
        self.template_grams = sum(1 for c in df.values() if c >= template)

    def __len__(self) -> int:
        return len(self.ids)

    def check(self, text: str) -> Match | None:
        return self.check_texts([text])

    def check_texts(self, texts: Sequence[str]) -> Match | None:
        """The first rule that flags these texts (the messages of one row), or None when they are clean."""
        per_text = [tokens(t) for t in texts]
        for toks in per_text:
            i = self.exact.get(tuple(toks))
            if i is not None:
                return Match(self.ids[i], "exact", 1.0)
        toks = [t for ts in per_text for t in ts]
        for length, table in self.short.items():
            for j in range(len(toks) - length + 1):
                i = table.get(tuple(toks[j : j + length]))
                if i is not None:
                    return Match(self.ids[i], "contained", 1.0)
        n = self.config.ngram
        hits: Counter[int] = Counter()
        for g in {tuple(toks[j : j + n]) for j in range(len(toks) - n + 1)}:
            hits.update(self.grams.get(g, ()))
        if not hits:
            return None
        have = _numbers(toks) if self.config.numbers_must_match else None
        best: Match | None = None
        for i, h in hits.items():
            overlap = h / self.gram_counts[i]
            if overlap < self.config.min_overlap or (best is not None and overlap <= best.overlap):
                continue
            if have is not None and any(have[num] < c for num, c in self.numbers[i].items()):
                continue
            best = Match(self.ids[i], "ngram", overlap)
        return best

    def check_row(self, row: dict[str, Any]) -> Match | None:
        return self.check_texts(row_texts(row))

    def check_prompt(self, prompt: Prompt) -> Match | None:
        return self.check_texts([m["content"] for m in prompt.messages])


class ContaminationFilter:
    """The export's contamination check: a verdict per training prompt and per row, and the counts."""

    EXAMPLES = 5

    def __init__(self, eval_prompts: Sequence[Prompt] | None, config: ContaminationConfig):
        self.index = ContaminationIndex(eval_prompts, config) if eval_prompts and config.enabled else None
        self.prompts: set[str] = set()
        """Training prompts that copy an eval prompt."""
        self.rows: Counter[str] = Counter()
        """Rows dropped, by export kind."""
        self.rules: Counter[str] = Counter()
        self.examples: list[dict[str, Any]] = []
        """A few flagged rows (one per training prompt), to show in the report."""
        self._example_prompts: set[str] = set()
        self._last: tuple[str, Match | None] | None = None

    @property
    def active(self) -> bool:
        return self.index is not None and len(self.index) > 0

    def _prompt(self, prompt: Prompt) -> Match | None:
        if self._last is None or self._last[0] != prompt.id:
            match = self.index.check_prompt(prompt) if self.index is not None else None
            if match is not None:
                self.prompts.add(prompt.id)
            self._last = (prompt.id, match)
        return self._last[1]

    def drops(self, kind: str, prompt: Prompt | None, row: dict[str, Any]) -> bool:
        """True when the row (or the training prompt it answers) copies an eval prompt; counts it."""
        if self.index is None:
            return False
        match = self._prompt(prompt) if prompt is not None else None
        if match is None:
            match = self.index.check_row(row)
        if match is None:
            return False
        self.rows[kind] += 1
        self.rules[match.rule] += 1
        if len(self.examples) < self.EXAMPLES and (prompt is None or prompt.id not in self._example_prompts):
            if prompt is not None:
                self._example_prompts.add(prompt.id)
            self.examples.append({
                "kind": kind, "prompt_id": None if prompt is None else prompt.id,
                "eval_prompt_id": match.eval_prompt_id, "rule": match.rule, "overlap": round(match.overlap, 3),
            })
        return True

    def summary(self) -> dict[str, Any]:
        """For the export summary: what was checked and what was dropped."""
        if self.index is None:
            return {"checked": False}
        return {
            "checked": True,
            "eval_prompts": len(self.index),
            "prompts": len(self.prompts),
            "rows": dict(sorted(self.rows.items())),
            "by_rule": dict(sorted(self.rules.items())),
            "examples": self.examples,
        }
