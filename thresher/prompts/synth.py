"""What every prompt-synthesis method shares: asking a sampler, and accounting for what was dropped.

The methods (Self-Instruct, SelfQA, Magpie, back-translation, pool
selection) all end the same way: some Prompt records kept, and for each text
thrown away the reason it was thrown away. `SynthesisResult` carries both, so
the CLI can print "kept 312; rejected: near_duplicate 140, needs_media 12"
and write the rejects for a human to read.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from thresher.prompts.rouge import has_cjk
from thresher.records import Candidate, Prompt
from thresher.sampling.params import Sampler, SamplingParams, item_error, raise_item_errors

Language = Literal["auto", "en", "zh"]
"""Language of the instructions a method writes to the model; `auto` follows the input text."""

HELPER_TASK = "_synthesis"
"""Task tag of the internal requests a method sends to its model (never written to prompts.jsonl)."""


@dataclass(slots=True)
class Rejection:
    """One generated text that was not kept, and why."""

    text: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SynthesisResult:
    """Prompts a method kept, everything it dropped, and how many model requests it took."""

    prompts: list[Prompt] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    requests: int = 0

    def reject(self, text: str, reason: str, **detail: Any) -> None:
        self.rejected.append(Rejection(text, reason, detail))

    def reasons(self) -> Counter[str]:
        return Counter(r.reason for r in self.rejected)

    def summary(self) -> str:
        """One line for logs: kept count, then rejections by reason, most common first."""
        reasons = self.reasons()
        parts = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
        return f"kept {len(self.prompts)}; rejected {reasons.total()}" + (f" ({parts})" if parts else "")


def resolve_language(language: Language, texts: Sequence[str]) -> Literal["en", "zh"]:
    """`auto` becomes `zh` when most of `texts` contain CJK characters, else `en`."""
    if language != "auto":
        return language
    cjk = sum(1 for t in texts if has_cjk(t))
    return "zh" if texts and cjk * 2 >= len(texts) else "en"


def ask(
    sampler: Sampler,
    texts: Sequence[str],
    params: SamplingParams,
    result: SynthesisResult | None,
    system: str | None = None,
) -> list[list[Candidate] | None]:
    """Send each text as one user message (chat template applied by the sampler); answers in input order.

    A request the backend rejects (longer than the model's context) is None
    in the output and a rejection with reason `request_failed` in `result`,
    so one bad document never stops a run; without a `result` it stops the
    run with a message naming it.
    """
    prompts = []
    for text in texts:
        messages = [{"role": "user", "content": text}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        prompts.append(Prompt.create(HELPER_TASK, messages))
    if not prompts:
        return []
    out = sampler.sample(prompts, params)
    if len(out) != len(prompts):
        raise RuntimeError(f"sampler {sampler.name!r} returned {len(out)} results for {len(prompts)} prompts")
    if result is None:
        raise_item_errors((c for row in out for c in row), sampler.name)
        return list(out)
    rows: list[list[Candidate] | None] = []
    for text, row in zip(texts, out):
        errors = [item_error(c) for c in row]
        if row and all(e is not None for e in errors):
            result.reject(text, "request_failed", error=errors[0])
            rows.append(None)
        else:
            rows.append([c for c, e in zip(row, errors) if e is None])
    return rows


_NUMBERING = re.compile(r"^\s*(?:[-*•]|\(?\d{1,3}[.)、:：]|[（(]\d{1,3}[)）]|Q\d*[:.：]|问题\s*\d*[:：.]?)\s*")


def strip_numbering(line: str) -> str:
    """'1. What is X?' -> 'What is X?'; also '- ', '(2)', 'Q:', '问题1：'."""
    return _NUMBERING.sub("", line, count=1).strip()


def first_paragraph(text: str) -> str:
    """The text up to its first blank line, stripped."""
    return re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0].strip()
