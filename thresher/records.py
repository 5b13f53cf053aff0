"""The records that flow between stages, and their JSONL form.

Each stage reads and writes these, one JSON object per line, so any file in a
run directory opens with `datasets.load_dataset("json", data_files=...)`, `jq`
or an editor. Reading is strict: a malformed line is an error naming
`file:line`, never a record quietly dropped, because a silently shorter
dataset is the hardest bug in this field to notice.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from thresher.errors import ConfigError, RecordError, UserError
from thresher.typed import from_data, to_data

Message = dict[str, Any]
"""A chat message as TRL and chat templates want it: {"role": ..., "content": ...}."""

_ROLES = ("system", "user", "assistant", "tool")


def _check_messages(messages: list[Message]) -> None:
    if not messages:
        raise ConfigError("messages", "must hold at least one message")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ConfigError(f"messages[{i}]", f"expected a {{role, content}} object, got {type(m).__name__}")
        if m.get("role") not in _ROLES:
            raise ConfigError(f"messages[{i}].role", f"{m.get('role')!r} is not one of {', '.join(_ROLES)}")
        if not isinstance(m.get("content"), str):
            raise ConfigError(f"messages[{i}].content", "expected a string")


def make_prompt_id(task: str, messages: list[Message]) -> str:
    """Stable id: the same task and messages give the same id on every machine."""
    blob = json.dumps([task, messages], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]


@dataclass(slots=True)
class Prompt:
    """One question to answer; `task` names the bucket every metric is reported under."""

    id: str
    task: str
    messages: list[Message]
    reference: str | None = None
    """The reference answer a verifier compares against (a number, an expression), if any."""
    tests: str | None = None
    """Test code for the code verifier (HumanEval style: defines `check(candidate)`), if any."""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_messages(self.messages)
        if not self.task:
            raise ConfigError("task", "must be a non-empty string")
        if not self.id:
            self.id = make_prompt_id(self.task, self.messages)
        if "/" in self.id:
            raise ConfigError("id", f"{self.id!r} must not contain '/' (candidate ids are prompt/model/index)")

    @classmethod
    def create(cls, task: str, messages: list[Message], **kwargs: Any) -> Prompt:
        """A prompt whose id is derived from its task and messages."""
        return cls(id=kwargs.pop("id", ""), task=task, messages=messages, **kwargs)

    @property
    def question(self) -> str:
        """The text of the last user message: what the model is asked."""
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")


@dataclass(slots=True)
class Candidate:
    """One sampled answer to one prompt from one model."""

    prompt_id: str
    model: str
    index: int
    text: str
    num_tokens: int | None = None
    finish_reason: str | None = None
    """"stop" when the model ended its answer, "length" when max_tokens cut it."""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return candidate_id(self.prompt_id, self.model, self.index)


def candidate_id(prompt_id: str, model: str, index: int) -> str:
    return f"{prompt_id}/{model}/{index}"


def split_candidate_id(cid: str) -> tuple[str, str, int]:
    """Inverse of `candidate_id`; model names may themselves contain '/'."""
    prompt_id, rest = cid.split("/", 1)
    model, index = rest.rsplit("/", 1)
    return prompt_id, model, int(index)


@dataclass(slots=True)
class Verdict:
    """What one judge said about one candidate.

    `score` / `correct` None means "this judge has no opinion" (a reward model
    says nothing about correctness). `error` means "the judge failed on this
    one" (a timeout, unparseable judge output): a failure is never turned into
    a low score, so downstream code must look at `error` first.
    """

    candidate_id: str
    judge: str
    score: float | None = None
    correct: bool | None = None
    critique: str | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None
    """What kind of judge wrote it (`thresher.judges.base.JUDGE_KINDS`: verifier, reward, llm,
    pairwise, listwise), so selection reads it instead of guessing; None in files written before
    judges recorded it."""

    @property
    def prompt_id(self) -> str:
        return split_candidate_id(self.candidate_id)[0]

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class PreferencePair:
    """A DPO row in TRL's conversational form, plus how it was chosen.

    `prompt` is the message list up to the answer; `chosen` / `rejected` are
    one-message assistant lists, so `DPOTrainer` reads the row unchanged.
    """

    prompt_id: str
    task: str
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    chosen_score: float
    rejected_score: float
    margin: float
    rule: str
    chosen_model: str
    rejected_model: str
    metadata: dict[str, Any] = field(default_factory=dict)


R = TypeVar("R")


def record_from_dict(cls: type[R], data: Any) -> R:
    """Build a record from a parsed JSON object; ConfigError names the field at fault."""
    return from_data(cls, data, cls.__name__)


def record_to_dict(record: Any) -> dict[str, Any]:
    return record if isinstance(record, dict) else to_data(record)


def dumps(record: Any) -> str:
    """One JSONL line (without the newline); UTF-8 text stays readable."""
    return json.dumps(record_to_dict(record), ensure_ascii=False)


def read_text(path: str | os.PathLike[str]) -> str:
    """A whole UTF-8 text file (a recipe, a .txt of prompts); bytes that are not UTF-8 name their file:line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise RecordError(path, line, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {column})") from None


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a JSONL (or .jsonl.gz) file with their 1-based numbers.

    The one place a JSONL file is read line by line: bytes that are not UTF-8
    are a RecordError naming the file and line, like any other bad line.
    """
    path = Path(path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = _decode(raw, path, lineno)
            if line.strip():
                yield lineno, line


def _decode(raw: bytes, path: Any, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordError(path, lineno, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None


def load_object(line: str | bytes, path: Any, lineno: int) -> dict[str, Any]:
    """One JSONL line as a JSON object; RecordError names path:line when it is not one."""
    if isinstance(line, bytes):
        line = _decode(line, path, lineno)
    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        raise RecordError(path, lineno, f"invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(data, dict):
        raise RecordError(path, lineno, f"expected a JSON object, got {type(data).__name__}")
    return data


def to_record(cls: type[R], data: dict[str, Any], path: Any, lineno: int) -> R:
    """A parsed JSON object as a record of `cls`; RecordError names path:line and the field at fault."""
    try:
        return record_from_dict(cls, data)
    except ConfigError as e:
        raise RecordError(path, lineno, str(e)) from None


def parse_line(line: str | bytes, path: Any, lineno: int, cls: type[R] | None = None) -> R | dict[str, Any]:
    """Parse one JSONL line into `cls` (or a dict); RecordError names path:line and the field."""
    data = load_object(line, path, lineno)
    return data if cls is None else to_record(cls, data, path, lineno)


def read_jsonl(path: str | os.PathLike[str], cls: type[R] | None = None) -> Iterator[R]:
    """Yield every record of a JSONL (or .jsonl.gz) file; blank lines are skipped, bad ones raise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    for lineno, line in iter_lines(path):
        yield parse_line(line, path, lineno, cls)  # type: ignore[misc]


@contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Name `path` on an OSError that does not name a file (a full disk shows in write(), not in open())."""
    try:
        yield
    except OSError as e:
        if e.filename is None and not isinstance(e, BrokenPipeError):
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any]) -> int:
    """Write records atomically (temp file, then rename): readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with writing(path), open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(dumps(r) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return n
