"""Prompts from a user's own data: a JSONL file or a Hugging Face dataset, with column mapping.

Real data never has thresher's field names. `columns` maps each thresher
field to the data's column (`{"messages": "conversation", "reference":
"answer"}`); a plain-text column mapped as `prompt` becomes one user message.
Columns not mapped are kept in `metadata`, so nothing the user had is lost.
A row that cannot become a prompt is an error naming its file and line (or
dataset row), never a skipped row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from thresher.errors import ConfigError, RecordError, UserError
from thresher.records import Prompt, iter_lines, load_object

FIELDS = ("id", "task", "messages", "prompt", "reference", "tests", "system")
DEFAULT_COLUMNS = {
    "id": ("id",),
    "task": ("task",),
    "messages": ("messages",),
    "prompt": ("prompt", "question", "instruction", "problem"),
    "reference": ("reference", "answer", "solution"),
    "tests": ("tests", "test"),
    "system": ("system",),
}
"""Column names tried, in order, for a field the mapping does not name."""


def check_columns(columns: Mapping[str, str]) -> None:
    for key in columns:
        if key not in FIELDS:
            raise ConfigError(f"columns.{key}", f"unknown field (expected one of: {', '.join(FIELDS)})")


def _column(row: Mapping[str, Any], field: str, columns: Mapping[str, str]) -> str | None:
    if field in columns:
        return columns[field] if columns[field] in row else None
    return next((c for c in DEFAULT_COLUMNS[field] if c in row), None)


def row_to_prompt(row: Mapping[str, Any], columns: Mapping[str, str], task: str | None) -> Prompt:
    """Build one Prompt from a data row; ValueError/ConfigError say which column is wrong.

    A mapped optional column (reference, tests, ...) may be absent from some
    rows; `check_mapped_columns` fails if it is absent from all of them (a typo).
    """
    used: set[str] = set()

    def take(field: str) -> Any:
        col = _column(row, field, columns)
        if col is None:
            return None
        used.add(col)
        return row[col]

    messages = take("messages")
    text = take("prompt") if messages is None else None
    system = take("system")
    if messages is None:
        if text is None:
            raise ValueError("no messages or prompt column (map one with columns: {messages: ...} or {prompt: ...})")
        if not isinstance(text, str):
            raise ValueError(f"prompt column must hold text, got {type(text).__name__}")
        messages = [{"role": "user", "content": text}]
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ValueError("messages column must hold a list of {role, content} objects")
    messages = [dict(m) for m in messages]
    if messages and messages[-1].get("role") == "assistant":
        messages = messages[:-1]  # a chat dataset's answer is not part of the prompt
    if system and not any(m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": str(system)})
    row_task = take("task")
    if row_task is not None and not isinstance(row_task, str):
        raise ValueError(f"task: expected a string, got {type(row_task).__name__} {row_task!r}")
    reference = take("reference")
    tests = take("tests")
    pid = take("id")
    metadata = {k: v for k, v in row.items() if k not in used}
    if isinstance(metadata.get("metadata"), dict):  # a row in thresher's own Prompt form keeps its metadata as is
        metadata = {**metadata.pop("metadata"), **metadata}
    return Prompt.create(
        task=row_task if row_task is not None else (task or "default"),
        messages=messages,
        id=str(pid).replace("/", "-") if pid is not None else "",
        reference=None if reference is None else str(reference),
        tests=None if tests is None else str(tests),
        metadata=json.loads(json.dumps(metadata, default=str)),
    )


def check_mapped_columns(rows_seen: set[str], columns: Mapping[str, str], where: str) -> None:
    """A mapped column that no row has is a typo in the mapping, not missing data."""
    for field, col in columns.items():
        if col not in rows_seen:
            raise ConfigError(f"columns.{field}", f"column {col!r} appears in no row of {where}")


def load_jsonl_prompts(path: str | Path, columns: Mapping[str, str] | None = None, task: str | None = None) -> list[Prompt]:
    """Prompts from a JSONL file; every bad line is reported as file:line."""
    path = Path(path)
    columns = dict(columns or {})
    check_columns(columns)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    prompts = []
    seen: set[str] = set()
    for lineno, line in iter_lines(path):
        row = load_object(line, path, lineno)
        seen.update(row)
        try:
            prompts.append(row_to_prompt(row, columns, task))
        except (ValueError, ConfigError) as e:
            raise RecordError(path, lineno, str(e)) from None
    check_mapped_columns(seen, columns, str(path))
    return prompts


def rows_to_prompts(rows: Iterable[Mapping[str, Any]], where: str, columns: Mapping[str, str], task: str | None) -> list[Prompt]:
    out = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        seen.update(row)
        try:
            out.append(row_to_prompt(row, columns, task))
        except (ValueError, ConfigError) as e:
            raise UserError(f"{where} row {i}: {e}") from None
    check_mapped_columns(seen, columns, where)
    return out


def load_hf_prompts(
    name: str,
    split: str = "train",
    columns: Mapping[str, str] | None = None,
    task: str | None = None,
    **load_kwargs: Any,
) -> list[Prompt]:
    """Prompts from a Hugging Face dataset: a hub name, a local data directory, or a `save_to_disk` folder."""
    import datasets

    columns = dict(columns or {})
    check_columns(columns)
    local = Path(name)
    try:
        saved = any((local / f).exists() for f in ("dataset_info.json", "dataset_dict.json"))
        if local.is_dir() and saved:
            ds = datasets.load_from_disk(str(local))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise UserError(f"{name}: no split {split!r} (have: {', '.join(ds)})")
                ds = ds[split]
        else:
            ds = datasets.load_dataset(name, split=split, **load_kwargs)
    except (FileNotFoundError, ValueError, ConnectionError) as e:
        raise UserError(f"dataset {name!r} split {split!r}: {e}") from None
    return rows_to_prompts(ds, f"dataset {name}[{split}]", columns, task)
