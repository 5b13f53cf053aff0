"""Mixing exports by ratio and per-task repeats, deterministic by seed, without loading the rows.

Domain data alone makes a model forget general skills, so a round's SFT rows
are usually mixed with other data ("domain : general = 1 : 1") and some
tasks are seen more than once (repeats, i.e. epochs per task). Mixing works
on line offsets: each source file is indexed once (offset and task of every
row), the draw is made on those indices with a seeded generator, and the
chosen lines are copied to the output in a seeded shuffled order. The rows
themselves are never all in memory.

Counts: without `total`, the mix is the largest one in which no source is
repeated (the scarcest source, relative to its ratio, is used whole). With
`total`, sources are repeated whole as often as needed and the remainder is a
seeded sample. Per-task `repeats` (a float: 2 = twice, 1.5 = once plus a
seeded half) then apply to rows by their task (`metadata.task`, or `task`,
or the source name when a row has none). Every output row records its source:
`metadata.source` in thresher's rows, a top-level `source` in other data.
"""

from __future__ import annotations

import json
import math
import os
import random
from array import array
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from thresher.errors import ConfigError, UserError
from thresher.feedback.rows import row_task, set_source
from thresher.records import load_object
from thresher.typed import NonNegativeFloat, PositiveInt, check_fields


@dataclass(slots=True)
class MixSource:
    path: str
    """A JSONL export (rows in the same format as the target)."""
    ratio: NonNegativeFloat = 1.0
    name: str | None = None
    """Name recorded in each row's `source`; defaults to the file's stem."""

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(slots=True)
class MixConfig:
    """`export.args.mix[i]`: mix one of this round's exports with other data."""

    sources: list[MixSource]
    target: Literal["sft", "critique_sft", "dpo"] = "sft"
    ratio: NonNegativeFloat = 1.0
    """This round's own rows' share, against each source's ratio."""
    repeats: dict[str, NonNegativeFloat] = field(default_factory=dict)
    """Times each task (or source name) is repeated; tasks not named appear once."""
    total: PositiveInt | None = None
    """Rows in the mix before repeats; None: the largest mix that repeats no source."""

    def __post_init__(self) -> None:
        check_fields(self)
        if any(r < 0 for r in self.repeats.values()):
            raise ConfigError("repeats", "repeat counts must be >= 0")


Keep = Callable[[str, dict[str, Any]], bool]
"""(source name, row) -> whether the row may be mixed in."""


@dataclass(slots=True)
class _Index:
    name: str
    path: Path
    ratio: float
    offsets: array
    tasks: array
    task_names: list[str]


def _index(name: str, path: Path, ratio: float, keep: Keep | None = None) -> tuple[_Index, int]:
    """The source's rows (offset and task of each) and how many `keep` turned away."""
    if not path.is_file():
        raise UserError(f"{path}: no such file (mix source {name!r})")
    offsets, tasks = array("q"), array("I")
    refused = 0
    names: dict[str, int] = {}
    with open(path, "rb") as f:
        pos = 0
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                row = load_object(line, path, lineno)
                if keep is not None and not keep(name, row):
                    refused += 1
                    pos += len(line)
                    continue
                task = row_task(row) or name
                offsets.append(pos)
                tasks.append(names.setdefault(task, len(names)))
            pos += len(line)
    return _Index(name, path, ratio, offsets, tasks, list(names)), refused


def _draw(n: int, size: int, rng: random.Random) -> list[int]:
    """n indices from range(size): whole copies, then a seeded sample without replacement."""
    if size == 0 or n == 0:
        return []
    whole, rest = divmod(n, size)
    return [i for _ in range(whole) for i in range(size)] + sorted(rng.sample(range(size), rest))


def mix_files(
    sources: list[tuple[str, Path, float]],
    out: str | os.PathLike[str],
    seed: int,
    repeats: dict[str, float] | None = None,
    total: int | None = None,
    keep: Keep | None = None,
) -> dict[str, Any]:
    """Write the mix of `sources` (name, path, ratio) to `out` atomically; return counts by source and task.

    `keep(source_name, row)` false leaves a row out before anything is drawn
    (the export's contamination check); those rows are counted under `refused`.
    """
    rng = random.Random(f"mix:{seed}")
    indexed = [_index(name, Path(path), ratio, keep) for name, path, ratio in sources]
    idx = [i for i, _ in indexed]
    weights = [i.ratio for i in idx if i.ratio > 0]
    if not weights:
        raise ConfigError("export.args.mix", "every ratio is 0")
    wsum = sum(weights)
    if total is None:
        scale = min(len(i.offsets) / i.ratio for i in idx if i.ratio > 0)
        wanted = [math.floor(scale * i.ratio + 1e-9) if i.ratio > 0 else 0 for i in idx]
    else:
        wanted = [round(total * i.ratio / wsum) for i in idx]
    for i, n in zip(idx, wanted, strict=True):
        if n and not len(i.offsets):
            raise UserError(f"{i.path}: mix source {i.name!r} is empty")
    repeats = repeats or {}
    entries: list[tuple[int, int]] = []
    by_source: Counter[str] = Counter()
    by_task: Counter[str] = Counter()
    for s, (i, n) in enumerate(zip(idx, wanted, strict=True)):
        drawn = _draw(n, len(i.offsets), rng)
        per_task: dict[int, list[int]] = {}
        for row in drawn:
            per_task.setdefault(i.tasks[row], []).append(row)
        for t, rows in sorted(per_task.items()):
            name = i.task_names[t]
            r = repeats.get(name, repeats.get(i.name, 1.0))
            times = _draw(round(r * len(rows)), len(rows), rng)
            for k in times:
                entries.append((s, rows[k]))
            by_task[name] += len(times)
            by_source[i.name] += len(times)
    rng.shuffle(entries)
    out = Path(out)
    tmp = out.with_name(out.name + ".mixtmp")
    with ExitStack() as stack:
        handles = [stack.enter_context(open(i.path, "rb")) for i in idx]
        f = stack.enter_context(open(tmp, "w", encoding="utf-8"))
        for s, row in entries:
            h = handles[s]
            h.seek(idx[s].offsets[row])
            data = json.loads(h.readline())
            set_source(data, idx[s].name)
            f.write(json.dumps(data, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return {
        "rows": len(entries),
        "by_source": dict(sorted(by_source.items())),
        "by_task": dict(sorted(by_task.items())),
        "available": {i.name: len(i.offsets) for i in idx},
        **({"refused": {i.name: n for i, n in indexed if n}} if keep is not None else {}),
    }
