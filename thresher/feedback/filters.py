"""Length and format filters on candidates, each drop counted under its reason.

They run before selection and pairing: an answer cut off at max_tokens must
not become the "best" SFT answer, nor a DPO "rejected" whose only flaw is
that it was truncated (a pair that teaches length, not quality). Critique
rows are not filtered here, since a critique must show what the judge saw;
their own length limit applies to the finished row.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from thresher.errors import ConfigError
from thresher.records import Candidate
from thresher.sampling.params import item_error
from thresher.typed import NonNegativeInt, PositiveInt, check_fields

DEFAULT_FORBID = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>"]
"""Chat-template tokens that leak into answers when a stop sequence is missing."""


@dataclass(slots=True)
class FilterConfig:
    """`export.args.filters`: which candidates may become training data."""

    min_chars: NonNegativeInt = 1
    """Shortest answer kept, after stripping whitespace (1 drops empty answers)."""
    max_chars: PositiveInt | None = None
    max_tokens: PositiveInt | None = None
    """Longest answer kept in tokens, from `Candidate.num_tokens` where the sampler recorded it."""
    drop_truncated: bool = True
    """Drop answers the sampler cut at max_tokens (finish_reason "length")."""
    forbid: list[str] = field(default_factory=lambda: list(DEFAULT_FORBID))
    """Substrings no kept answer may contain."""
    require: str | dict[str, str] | None = None
    """A regex every answer must match (re.search), or one regex per task (tasks not named are free)."""
    max_row_chars: PositiveInt | None = None
    """Longest critique-SFT row kept (user plus assistant text)."""

    def __post_init__(self) -> None:
        check_fields(self)
        self.patterns()

    def patterns(self) -> dict[str | None, re.Pattern[str]]:
        """The `require` regexes, compiled, by task (None: every task); a bad one names its key."""
        req = self.require
        items = {None: req} if isinstance(req, str) else dict(req or {})
        try:
            return {task: re.compile(rx) for task, rx in items.items()}
        except re.error as e:
            raise ConfigError("require", f"invalid regex: {e}") from None


class CandidateFilter:
    """Applies a FilterConfig and counts what it removed, by reason."""

    def __init__(self, config: FilterConfig):
        self.config = config
        self.removed: Counter[str] = Counter()
        self._require = config.patterns()

    def reason(self, candidate: Candidate, task: str) -> str | None:
        """Why this candidate must not be used, or None when it passes."""
        c = self.config
        if item_error(candidate) is not None:  # the backend rejected the request: there is no answer
            return "sampling_error"
        text = candidate.text
        stripped = text.strip()
        if len(stripped) < c.min_chars:
            return "empty" if not stripped else "too_short"
        if c.drop_truncated and candidate.finish_reason == "length":
            return "truncated"
        if c.max_chars is not None and len(text) > c.max_chars:
            return "too_long"
        if c.max_tokens is not None and candidate.num_tokens is not None and candidate.num_tokens > c.max_tokens:
            return "too_many_tokens"
        if any(tok in text for tok in c.forbid):
            return "forbidden_text"
        rx = self._require.get(task, self._require.get(None)) if self._require else None
        if rx is not None and not rx.search(text):
            return "format"
        return None

    def apply(self, candidates: list[Candidate], task: str) -> list[Candidate]:
        kept = []
        for cand in candidates:
            why = self.reason(cand, task)
            if why is None:
                kept.append(cand)
            else:
                self.removed[why] += 1
        return kept
