"""Candidates and verdicts regrouped per prompt, streaming, whatever order the shards hold.

Selection and pairing need every candidate of a prompt and every verdict on
them side by side, but a run's shards are big (millions of candidates) and
their order is not guaranteed: several samplers, several judges and resumed
jobs each append in their own order. So grouping is an external hash
partition: one pass spreads raw lines into bucket files on disk by a stable
hash of the prompt id, then each bucket (a few tens of MB) is loaded, grouped
and handed on. Memory stays bounded by one bucket, not by the run.

Reading stays strict: a malformed line or a record with a wrong field is a
`RecordError` naming the original shard and line, even though it is parsed
from a bucket file. Verdicts that carry `error` are kept on the group (so the
stage can count them) and never read as a score: `judge_score` returns None.
"""

from __future__ import annotations

import math
import os
import pickle
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thresher.errors import RecordError, UserError
from thresher.judges.verdicts import judge_score
from thresher.records import Candidate, Prompt, Verdict, iter_lines, load_object, to_record, writing

BUCKET_BYTES = 32 * 1024 * 1024
"""Input bytes per bucket; a bucket's records in Python take roughly 5-8x this."""


@dataclass(slots=True)
class JudgeInfo:
    """What one judge did across the whole round: how many verdicts of which kind.

    Policies resolve "which judge" from this catalog once, before any prompt
    is selected, so every prompt is selected by the same judge.
    """

    name: str
    verdicts: int = 0
    errors: int = 0
    scored: int = 0
    """Verdicts with a numeric score."""
    verified: int = 0
    """Verdicts with `correct` set."""
    critiqued: int = 0
    """Verdicts with critique text."""
    listwise: int = 0
    """Verdicts marked `chosen` / `rank` by a listwise best-of-N judge."""
    pairwise: int = 0
    """Verdicts summarising pairwise comparisons (`agreed` / `disagreed` counts)."""
    kinds: dict[str, int] = field(default_factory=dict)
    """The kinds the verdicts record (`Verdict.kind`), with their counts."""
    first_error: str | None = None
    """The first failed verdict's error, to say why a judge gave nothing usable."""

    @property
    def kind(self) -> str:
        """verifier, reward, llm, pairwise or listwise: what the judge's verdicts record.

        Verdicts written before judges recorded their kind have none; for those
        files only, the kind is read off what the verdicts hold (a `correct`
        flag: verifier; `rank` / `chosen`: listwise; `agreed` / `disagreed`:
        pairwise; critiques: llm; scores only: reward).
        """
        if self.kinds:
            return max(self.kinds, key=self.kinds.__getitem__)
        if self.verified:
            return "verifier"
        if self.listwise:
            return "listwise"
        if self.pairwise:
            return "pairwise"
        if self.critiqued:
            return "llm"
        return "reward"

    @property
    def usable(self) -> bool:
        """Whether any verdict of this judge did not fail."""
        return self.verdicts > self.errors

    def describe(self) -> str:
        """`name (kind)`, plus why it is unusable when every verdict failed: for error messages."""
        if self.usable:
            return f"{self.name} ({self.kind})"
        return f"{self.name} ({self.kind}; all {self.verdicts} verdicts failed, first: {self.first_error})"

    def add(self, v: dict[str, Any]) -> None:
        self.verdicts += 1
        kind = v.get("kind")
        if isinstance(kind, str):
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if v.get("error") is not None:
            self.errors += 1
            if self.first_error is None:
                self.first_error = str(v["error"])[:200]
            return
        if v.get("score") is not None:
            self.scored += 1
        if v.get("correct") is not None:
            self.verified += 1
        if v.get("critique"):
            self.critiqued += 1
        meta = v.get("metadata") or {}
        if "chosen" in meta or "rank" in meta:
            self.listwise += 1
        if "agreed" in meta and "disagreed" in meta:
            self.pairwise += 1


@dataclass(slots=True)
class PromptGroup:
    """One prompt, its candidates (in file order) and every verdict on them by judge."""

    prompt: Prompt
    candidates: list[Candidate]
    verdicts: dict[str, dict[str, Verdict]] = field(default_factory=dict)
    """candidate id -> judge name -> verdict."""

    def verdict(self, candidate_id: str, judge: str) -> Verdict | None:
        return self.verdicts.get(candidate_id, {}).get(judge)

    def score(self, candidate_id: str, judge: str) -> float | None:
        return judge_score(self.verdict(candidate_id, judge))

    def verifier_results(self, candidate_id: str) -> dict[str, bool]:
        """judge -> correct, for every verifier verdict on this candidate that did not fail."""
        return {
            j: v.correct
            for j, v in self.verdicts.get(candidate_id, {}).items()
            if v.error is None and v.correct is not None
        }


@dataclass(slots=True)
class GroupingStats:
    """What the grouping pass read, for the export summary."""

    candidates: int = 0
    verdicts: int = 0
    duplicate_candidates: int = 0
    duplicate_verdicts: int = 0
    orphan_verdicts: int = 0
    """Verdicts on a candidate id that no candidate shard holds."""
    buckets: int = 0
    judges: dict[str, JudgeInfo] = field(default_factory=dict)


def _sources(path: str | os.PathLike[str]) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        from thresher.store import ShardedJsonl

        return ShardedJsonl(p).shard_paths()
    if p.is_file():
        return [p]
    raise UserError(f"{p}: no such file or directory")


def _lines(paths: Sequence[Path]) -> Iterator[tuple[int, int, str]]:
    for fi, p in enumerate(paths):
        for lineno, line in iter_lines(p):
            yield fi, lineno, line


def _bucket_of(prompt_id: str, buckets: int) -> int:
    return zlib.crc32(prompt_id.encode("utf-8")) % buckets


def group_by_prompt(
    prompts: Sequence[Prompt],
    candidates_path: str | os.PathLike[str],
    verdicts_path: str | os.PathLike[str] | None,
    work_dir: str | os.PathLike[str],
    stats: GroupingStats | None = None,
    bucket_bytes: int = BUCKET_BYTES,
    on_partitioned: Any = None,
) -> Iterator[list[PromptGroup]]:
    """Yield, bucket by bucket, the groups of every prompt that has candidates.

    Within a bucket groups follow the order of `prompts`; buckets follow a
    stable hash of the prompt id, so the same inputs give the same order on
    every run. A candidate whose prompt is not in `prompts` is an error (the
    wrong prompts file); a verdict on an unknown candidate is counted as an
    orphan. Duplicate records (a stage that rewrote a line) keep the first.
    `on_partitioned(stats)` is called once the first pass has read everything,
    so callers can resolve judges before the first group is selected.
    """
    stats = stats if stats is not None else GroupingStats()
    position = {p.id: i for i, p in enumerate(prompts)}
    cand_paths = _sources(candidates_path)
    verd_paths = _sources(verdicts_path) if verdicts_path is not None and Path(verdicts_path).exists() else []
    total = sum(p.stat().st_size for p in cand_paths + verd_paths)
    buckets = max(1, math.ceil(total / bucket_bytes))
    stats.buckets = buckets
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".export-groups-") as tmp:
        with writing(tmp), ExitStack() as stack:  # a full disk names the work directory
            cfiles = [stack.enter_context(open(Path(tmp) / f"c{b:04d}", "wb")) for b in range(buckets)]
            vfiles = [stack.enter_context(open(Path(tmp) / f"v{b:04d}", "wb")) for b in range(buckets)]
            for fi, lineno, line in _lines(cand_paths):
                data = load_object(line, cand_paths[fi], lineno)
                pid = data.get("prompt_id")
                if not isinstance(pid, str):
                    raise RecordError(cand_paths[fi], lineno, "prompt_id: expected a string")
                if pid not in position:
                    raise RecordError(cand_paths[fi], lineno, f"prompt id {pid!r} is not in the round's prompts")
                cfiles[_bucket_of(pid, buckets)].write(_pack(fi, lineno, data))
                stats.candidates += 1
            for fi, lineno, line in _lines(verd_paths):
                data = load_object(line, verd_paths[fi], lineno)
                cid = data.get("candidate_id")
                judge = data.get("judge")
                if not isinstance(cid, str) or "/" not in cid:
                    raise RecordError(verd_paths[fi], lineno, "candidate_id: expected 'prompt/model/index'")
                if not isinstance(judge, str):
                    raise RecordError(verd_paths[fi], lineno, "judge: expected a string")
                stats.judges.setdefault(judge, JudgeInfo(judge)).add(data)
                vfiles[_bucket_of(cid.split("/", 1)[0], buckets)].write(_pack(fi, lineno, data))
                stats.verdicts += 1
        if on_partitioned is not None:
            on_partitioned(stats)
        for b in range(buckets):
            yield _load_bucket(prompts, position, Path(tmp), b, cand_paths, verd_paths, stats)
            for name in (f"c{b:04d}", f"v{b:04d}"):
                (Path(tmp) / name).unlink()


def _pack(fi: int, lineno: int, data: dict[str, Any]) -> bytes:
    """A bucket entry: the parsed line and where it came from (pickled: no second JSON decode)."""
    return pickle.dumps((fi, lineno, data), protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    with open(path, "rb") as f:
        while True:
            try:
                yield pickle.load(f)
            except EOFError:
                return


def _load_bucket(
    prompts: Sequence[Prompt],
    position: dict[str, int],
    tmp: Path,
    b: int,
    cand_paths: Sequence[Path],
    verd_paths: Sequence[Path],
    stats: GroupingStats,
) -> list[PromptGroup]:
    by_prompt: dict[str, list[Candidate]] = {}
    seen: set[str] = set()
    for fi, lineno, data in _unpack(tmp / f"c{b:04d}"):
        c: Candidate = to_record(Candidate, data, cand_paths[fi], lineno)
        cid = c.id
        if cid in seen:
            stats.duplicate_candidates += 1
            continue
        seen.add(cid)
        by_prompt.setdefault(c.prompt_id, []).append(c)
    verdicts: dict[str, dict[str, Verdict]] = {}
    for fi, lineno, data in _unpack(tmp / f"v{b:04d}"):
        v: Verdict = to_record(Verdict, data, verd_paths[fi], lineno)
        if v.candidate_id not in seen:
            stats.orphan_verdicts += 1
            continue
        per = verdicts.setdefault(v.candidate_id, {})
        if v.judge in per:
            stats.duplicate_verdicts += 1
            continue
        per[v.judge] = v
    groups = []
    for pid in sorted(by_prompt, key=position.__getitem__):
        cands = by_prompt[pid]
        groups.append(
            PromptGroup(
                prompts[position[pid]], cands, {c.id: verdicts[c.id] for c in cands if c.id in verdicts}
            )
        )
    return groups


def iter_groups(batches: Iterable[list[PromptGroup]]) -> Iterator[PromptGroup]:
    for batch in batches:
        yield from batch
