"""The run directory, and append-only sharded JSONL that survives a SIGKILL.

Long generation and judging jobs die: preempted nodes, OOM kills, a laptop
lid. A stage writes its records through `ShardedJsonl`, which appends whole
lines to numbered shard files and flushes each batch to disk. After a kill,
opening the set again repairs it: a partly written last line (the only damage
an append can leave) is cut off, every completed record is kept, and the
stage asks `counts()` / `done()` which prompts are finished so it redoes
only the rest. Shards may belong to a *part* (`shard-<part>-00000.jsonl`:
one model's candidates, one judge's verdicts), so the runner can drop the
outputs of exactly the part whose inputs changed. Whether a stage is
finished, and for which request, is the runner's marker's business
(`thresher.runner`), not the shards'.

Layout (a contract tests, benchmarks and users rely on):

    runs/<name>/
      recipe.yaml
      round_0/eval.json
      round_<k>/candidates/shard-00000.jsonl ...
      round_<k>/verdicts/shard-00000.jsonl ...
      round_<k>/sft.jsonl  critique_sft.jsonl  dpo.jsonl
      round_<k>/model/
      round_<k>/eval.json
      metrics.jsonl  report.html  curves.png
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from thresher.errors import RecordError, UserError
from thresher.records import dumps, read_jsonl, read_text, writing

R = TypeVar("R")
_SHARD = re.compile(r"^shard-(?:(?P<part>[A-Za-z0-9._-]+)-)?(?P<num>\d{5})\.jsonl$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
COMPLETE = ".complete"
"""A finished model directory holds this file (the trainer's summary)."""


def part_label(part: str) -> str:
    """A part name as it can stand in a shard file name (model and judge names are free text)."""
    safe = _UNSAFE.sub("_", part)
    if safe != part:
        safe += "_" + hashlib.blake2b(part.encode(), digest_size=3).hexdigest()
    return safe


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with writing(path):
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: str | os.PathLike[str]) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def repair_tail(path: Path) -> int:
    """Cut a torn last line off an append-only JSONL file; return the bytes removed.

    Only the last line can be torn by a kill during an append. A last line
    without its newline is kept if it is a whole JSON object (the kill came
    between the record and its newline) and cut otherwise. A bad line anywhere
    else is real damage and raises RecordError with its line number.
    """
    data = path.read_bytes()
    if not data:
        return 0
    end = len(data)
    if not data.endswith(b"\n"):
        start = data.rfind(b"\n") + 1
        tail = data[start:]
        try:
            json.loads(tail)
            with open(path, "ab") as f:
                f.write(b"\n")
            return 0
        except (json.JSONDecodeError, UnicodeDecodeError):
            end = start
    if end < len(data):  # an intact file is left untouched (its mtime marks when records were last added)
        with open(path, "r+b") as f:
            f.truncate(end)
    return len(data) - end


class ShardWriter(Generic[R]):
    """Appends records to new shard files; `flush()` makes every written record durable."""

    def __init__(self, shards: ShardedJsonl[R], first_index: int, max_records: int, part: str | None = None):
        self._shards = shards
        self._part = part
        self._index = first_index
        self._max = max_records
        self._in_shard = 0
        self._file: Any = None
        self.written = 0

    def _open(self) -> None:
        prefix = f"shard-{part_label(self._part)}-" if self._part is not None else "shard-"
        path = self._shards.dir / f"{prefix}{self._index:05d}.jsonl"
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: R | dict[str, Any]) -> None:
        if self._file is None or self._in_shard >= self._max:
            if self._file is not None:
                self.flush()
                self._file.close()
                self._index += 1
                self._in_shard = 0
            self._open()
        with writing(self._file.name):
            self._file.write(dumps(record) + "\n")
        self._in_shard += 1
        self.written += 1

    def write_many(self, records: Iterable[R | dict[str, Any]]) -> None:
        """Write a batch (say, all candidates of some prompts) and flush it to disk."""
        for r in records:
            self.write(r)
        self.flush()

    def flush(self) -> None:
        if self._file is not None:
            with writing(self._file.name):
                self._file.flush()
                os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    def __enter__(self) -> ShardWriter[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ShardedJsonl(Generic[R]):
    """A directory of `shard-NNNNN.jsonl` files holding one stage's records.

    Opening repairs torn tails, so reading after a crash sees every completed
    record exactly once. Each writer appends to fresh shard numbers; earlier
    shards are never rewritten.
    """

    def __init__(self, directory: str | os.PathLike[str], cls: type[R] | None = None, shard_size: int = 10_000):
        self.dir = Path(directory)
        self.cls = cls
        self.shard_size = shard_size
        self.repaired_bytes = 0
        if self.dir.exists() and not self.dir.is_dir():
            raise UserError(f"{self.dir}: expected a directory of shards, found a file")
        if self.dir.is_dir():
            for p in self.shard_paths():
                self.repaired_bytes += repair_tail(p)

    def shard_paths(self, part: str | None = None) -> list[Path]:
        """Every shard in order, or only those of `part`."""
        if not self.dir.is_dir():
            return []
        found = []
        for p in self.dir.iterdir():
            m = _SHARD.match(p.name)
            if m and (part is None or m.group("part") == part_label(part)):
                found.append((m.group("part") or "", int(m.group("num")), p))
        return [p for _, _, p in sorted(found)]

    def writer(self, part: str | None = None) -> ShardWriter[R]:
        """A writer that appends to new shards (of `part`, if given) after the existing ones."""
        self.dir.mkdir(parents=True, exist_ok=True)
        nums = [int(_SHARD.match(p.name).group("num")) for p in self.shard_paths()]  # type: ignore[union-attr]
        return ShardWriter(self, max(nums) + 1 if nums else 0, self.shard_size, part)

    def drop(self, part: str | None = None) -> int:
        """Delete the shards of `part` (all shards when None); returns how many files went."""
        paths = self.shard_paths(part)
        for p in paths:
            p.unlink()
        return len(paths)

    def __iter__(self) -> Iterator[R]:
        for p in self.shard_paths():
            yield from self.read_shard(p, self.cls)

    @staticmethod
    def read_shard(path: Path, cls: type[R] | None = None) -> Iterator[R]:
        """The records of one shard file, in order."""
        return read_jsonl(path, cls)

    def unique(self, key: Callable[[R], Hashable]) -> Iterator[R]:
        """Records with duplicate keys removed (first kept): a guard for stages that may rewrite one."""
        seen: set[Hashable] = set()
        for r in self:
            k = key(r)
            if k not in seen:
                seen.add(k)
                yield r

    def counts(self, key: Callable[[R], Hashable]) -> Counter[Hashable]:
        """How many records each key has, e.g. candidates per (prompt id, model)."""
        return Counter(key(r) for r in self)

    def done(self, key: Callable[[R], Hashable], expected: Callable[[Hashable], int] | int) -> set[Hashable]:
        """Keys with at least `expected` records: the work a resumed stage can skip."""
        want = (lambda _k: expected) if isinstance(expected, int) else expected
        return {k for k, c in self.counts(key).items() if c >= want(k)}


def read_records(path: str | os.PathLike[str], cls: type[R] | None = None) -> Iterator[R]:
    """Read a JSONL file or a directory of shards, whichever `path` is."""
    p = Path(path)
    if p.is_dir():
        return iter(ShardedJsonl(p, cls))
    if not p.exists():
        raise UserError(f"{p}: no such file or directory")
    return read_jsonl(p, cls)


@dataclass(slots=True)
class RoundDir:
    """The files of one round; round 0 holds only the baseline evaluation."""

    path: Path

    @property
    def index(self) -> int:
        return int(self.path.name.split("_")[1])

    @property
    def candidates(self) -> Path:
        return self.path / "candidates"

    @property
    def verdicts(self) -> Path:
        return self.path / "verdicts"

    @property
    def sft(self) -> Path:
        return self.path / "sft.jsonl"

    @property
    def critique_sft(self) -> Path:
        return self.path / "critique_sft.jsonl"

    @property
    def dpo(self) -> Path:
        return self.path / "dpo.jsonl"

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def eval(self) -> Path:
        return self.path / "eval.json"

    @property
    def prompts(self) -> Path:
        return self.path / "prompts.jsonl"

    def marker(self, stage: str) -> Path:
        """The runner's marker of one stage of this round (`sample`, `judge`, `export`, `train`, `eval`)."""
        return self.path / ".stages" / f"{stage}.json"


@dataclass(slots=True)
class RunDir:
    """`runs/<name>/`: everything one run writes, at fixed names."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def round(self, k: int) -> RoundDir:
        return RoundDir(self.path / f"round_{k}")

    def rounds(self) -> list[RoundDir]:
        """Existing rounds, in order."""
        if not self.path.is_dir():
            return []
        found = [p for p in self.path.iterdir() if p.is_dir() and re.fullmatch(r"round_\d+", p.name)]
        return [RoundDir(p) for p in sorted(found, key=lambda p: int(p.name.split("_")[1]))]

    @property
    def recipe(self) -> Path:
        return self.path / "recipe.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    def append_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add rows {"round", "task", "metric", "value"}, replacing older rows with the same key.

        Rewriting (not appending) keeps metrics.jsonl free of duplicates when a
        round is re-evaluated after a resume.
        """
        rows = list(rows)
        new_keys = {(r["round"], r["task"], r["metric"]) for r in rows}
        old = []
        if self.metrics.is_file():
            old = [r for r in read_jsonl(self.metrics) if (r["round"], r["task"], r["metric"]) not in new_keys]
        from thresher.records import write_jsonl

        write_jsonl(self.metrics, sorted(old + rows, key=lambda r: (r["round"], r["task"], r["metric"])))


__all__ = [
    "COMPLETE",
    "RecordError",
    "RoundDir",
    "RunDir",
    "ShardWriter",
    "ShardedJsonl",
    "read_json",
    "read_records",
    "repair_tail",
    "write_json",
]
