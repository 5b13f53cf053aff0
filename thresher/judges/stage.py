"""The judging stage of a round: every judge's verdict on every candidate, resumable.

Each judge is one *part* of the stage: its verdicts live in
`verdicts/shard-<judge>-*.jsonl`, fingerprinted by the judge's type and
arguments (with the identity of any model they name), the candidate set and
the prompt set. The runner (`thresher.runner`) skips a judge whose
fingerprint is unchanged, resumes one a kill interrupted, and drops and
re-judges only a judge whose arguments changed (another reward model,
another LLM-judge mode or language): an old verdict is never returned for a
new request.

Work goes in chunks of prompts through an executor (in process, or actors
and CPU tasks on a Ray cluster), each chunk's verdicts written and flushed
as it arrives, so a kill loses at most the chunks in flight. A prompt is
always judged with all its candidates (a listwise judge needs them together)
but only missing verdicts are written, so none is duplicated.

Summary, per judge: verdicts, errors (with a few examples), correct /
incorrect counts, verdicts with no opinion, the mean score, and for pairwise
LLM judges the position-bias rate (pairs whose verdict flipped when the order
was swapped).
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from thresher.config import JudgeConfig
from thresher.errors import UserError
from thresher.executors import ChunkTask, Executor, LocalExecutor, Resources
from thresher.judges.base import Judge, close_judge, record_kind
from thresher.records import Candidate, Prompt, Verdict
from thresher.runner import Outcome, run_stage
from thresher.store import RoundDir, ShardedJsonl, read_records

DEFAULT_CHUNK = 128
"""Prompts per `judge` call: enough for batched scoring, little to redo after a kill."""
ERROR_EXAMPLES = 3


def _judge_name(spec: JudgeConfig | Judge) -> str:
    return (spec.name or spec.type) if isinstance(spec, JudgeConfig) else spec.name


def group_candidates(
    prompts: Sequence[Prompt], candidates: Sequence[Candidate], where: object
) -> dict[str, list[Candidate]]:
    """Candidates by prompt id, in file order; a candidate of an unknown prompt is an error naming it."""
    ids = {p.id for p in prompts}
    by_prompt: dict[str, list[Candidate]] = defaultdict(list)
    seen: set[str] = set()
    for c in candidates:
        if c.prompt_id not in ids:
            raise UserError(f"{where}: candidate {c.id} answers prompt {c.prompt_id!r}, which is not in the prompts")
        if c.id in seen:
            raise UserError(f"{where}: candidate {c.id} appears twice")
        seen.add(c.id)
        by_prompt[c.prompt_id].append(c)
    return by_prompt


def summarize(verdicts: Sequence[Verdict], names: Sequence[str], n_prompts: int, n_candidates: int) -> dict[str, Any]:
    """The stage summary from the verdicts on disk (one per judge and candidate)."""
    per: dict[str, dict[str, Any]] = {}
    for name in names:
        vs = [v for v in verdicts if v.judge == name]
        scores = [v.score for v in vs if v.ok and v.score is not None]
        agreed = sum(v.metadata.get("agreed", 0) for v in vs)
        disagreed = sum(v.metadata.get("disagreed", 0) for v in vs)
        row: dict[str, Any] = {
            "verdicts": len(vs),
            "errors": sum(not v.ok for v in vs),
            "correct": sum(v.ok and v.correct is True for v in vs),
            "incorrect": sum(v.ok and v.correct is False for v in vs),
            "no_opinion": sum(v.ok and v.score is None and v.correct is None for v in vs),
            "mean_score": sum(scores) / len(scores) if scores else None,
            "error_examples": [v.error for v in vs if not v.ok][:ERROR_EXAMPLES],
        }
        if agreed + disagreed:
            row["position_bias"] = disagreed / (agreed + disagreed)
        per[name] = row
    return {"prompts": n_prompts, "candidates": n_candidates, "judges": per}


def format_summary(summary: dict[str, Any]) -> str:
    parts = []
    for name, r in summary["judges"].items():
        mean = "n/a" if r["mean_score"] is None else f"{r['mean_score']:.3f}"
        bias = f", position bias {r['position_bias']:.1%}" if "position_bias" in r else ""
        parts.append(
            f"{name}: {r['verdicts']} verdicts, {r['errors']} errors, {r['correct']} correct, mean score {mean}{bias}"
        )
    return f"judged {summary['candidates']} candidates of {summary['prompts']} prompts — " + "; ".join(parts)


def _check_output(judge: Judge, chunk_cands: list[list[Candidate]], out: list[list[Verdict]]) -> None:
    if len(out) != len(chunk_cands) or any(len(a) != len(b) for a, b in zip(out, chunk_cands)):
        raise RuntimeError(f"judge {judge.name!r} returned verdicts that do not line up with its candidates")
    for cs, vs in zip(chunk_cands, out):
        for c, v in zip(cs, vs):
            if v.candidate_id != c.id or v.judge != judge.name:
                raise RuntimeError(
                    f"judge {judge.name!r} returned a verdict for {v.judge}:{v.candidate_id} in the place of {c.id}"
                )


@dataclass(slots=True)
class JudgeChunk:
    """Prompts to judge together, each with all its candidates."""

    prompts: list[Prompt]
    candidates: list[list[Candidate]]


def judge_chunk(judge: Judge, chunk: JudgeChunk) -> list[Verdict]:
    """One chunk's verdicts, checked against the candidates: what an executor's worker runs."""
    out = record_kind(judge, judge.judge(chunk.prompts, chunk.candidates))
    _check_output(judge, chunk.candidates, out)
    return [v for row in out for v in row]


CPU_JUDGES = frozenset({"math", "code"})
"""Judge types that are CPU work (spread as tasks on a cluster) rather than a model held by an actor."""


def judge_task(spec: JudgeConfig | Judge) -> ChunkTask[Any, JudgeChunk, list[Verdict]]:
    """The executor task of one judge: build it once per replica (or use the object given)."""
    from thresher.judges.registry import build_judge

    if not isinstance(spec, JudgeConfig):
        return ChunkTask(f"judge {spec.name}", partial(_given, spec), judge_chunk, None, Resources(), "model")
    kind = "cpu" if spec.type in CPU_JUDGES else "model"
    return ChunkTask(f"judge {_judge_name(spec)}", partial(build_judge, spec), judge_chunk, close_judge,
                     spec.resources, kind)


def _given(judge: Judge) -> Judge:
    return judge


def judge_components(spec: JudgeConfig | Judge) -> dict[str, Any]:
    """What one judge's verdicts depend on: its type, arguments and the models those arguments name."""
    from thresher.identity import model_identity, plain

    if not isinstance(spec, JudgeConfig):
        return {"object": type(spec).__name__, "name": spec.name, "config": plain(getattr(spec, "config", None))}
    args = plain(spec.args)
    models = {}
    for key, value in _strings(args):
        if os.path.isdir(os.path.expanduser(value)):
            models[key] = model_identity(value)
    return {"type": spec.type, "args": args, "models": models}


def _strings(value: Any, path: str = "args") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _strings(v, f"{path}[{i}]")]
    return []


class JudgeStage:
    """The runner's view of judging: one part per judge."""

    name = "judge"

    def __init__(
        self,
        prompts: list[Prompt],
        candidates_path: Path,
        judges: list[JudgeConfig] | list[Judge],
        out_dir: Path,
        marker: Path,
        progress: bool = True,
        chunk_size: int = DEFAULT_CHUNK,
        executor: Executor | None = None,
        candidates_marker: Path | None = None,
    ):
        if chunk_size < 1:
            raise UserError(f"chunk_size: must be at least 1, got {chunk_size}")
        self.names = [_judge_name(j) for j in judges]
        for i, n in enumerate(self.names):
            if self.names.index(n) != i:
                raise UserError(f"judges[{i}]: duplicate judge name {n!r}; give each judge its own name")
        self.prompts, self.judges = prompts, judges
        self.candidates_path = Path(candidates_path)
        self.candidates_marker = candidates_marker
        self.marker = marker
        self.progress = progress
        self.chunk_size = chunk_size
        self.executor = executor or LocalExecutor()
        self.store: ShardedJsonl[Verdict] = ShardedJsonl(out_dir, Verdict)
        self.seconds = 0.0

    def parts(self) -> dict[str, Any]:
        from thresher.identity import prompts_identity, records_identity

        common = {
            "prompts": prompts_identity(self.prompts),
            "candidates": records_identity(self.candidates_path, self.candidates_marker),
        }
        return {n: {**common, "judge": judge_components(j)} for n, j in zip(self.names, self.judges)}

    def has_outputs(self, part: str) -> bool:
        return bool(self.store.shard_paths(part)) or (self.store.dir.is_dir() and not self._any_candidates())

    def _any_candidates(self) -> bool:
        return any(True for _ in read_records(self.candidates_path, Candidate)) if self.candidates_path.exists() else False

    def drop(self, part: str) -> None:
        self.store.drop(part)

    def run(self, todo: list[str]) -> dict[str, Any]:
        candidates = list(read_records(self.candidates_path, Candidate))
        by_prompt = group_candidates(self.prompts, candidates, self.candidates_path)
        owned = {p for n in self.names for p in self.store.shard_paths(n)}
        for path in self.store.shard_paths():  # verdicts of no judge of this stage (an older layout)
            if path not in owned:
                path.unlink()
        todo_prompts = [p for p in self.prompts if by_prompt.get(p.id)]
        start = time.perf_counter()
        for name, spec in zip(self.names, self.judges):
            if name in todo:
                self._judge(name, spec, todo_prompts, by_prompt)
        self.seconds = time.perf_counter() - start
        wanted = {c.id for c in candidates}
        verdicts = [v for v in self.store.unique(lambda v: (v.judge, v.candidate_id)) if v.candidate_id in wanted]
        summary = summarize(verdicts, self.names, len(todo_prompts), len(candidates))
        summary["this_run"] = {"seconds": round(self.seconds, 3)}
        return summary

    def _judge(self, name: str, spec: Any, prompts: list[Prompt], by_prompt: dict[str, list[Candidate]]) -> None:
        have = {v.candidate_id for p in self.store.shard_paths(name) for v in ShardedJsonl.read_shard(p, Verdict)}
        work = [p for p in prompts if any(c.id not in have for c in by_prompt[p.id])]
        if not work:
            return
        chunks = [
            JudgeChunk(work[s : s + self.chunk_size], [by_prompt[p.id] for p in work[s : s + self.chunk_size]])
            for s in range(0, len(work), self.chunk_size)
        ]
        bar = _bar(name, sum(len(by_prompt[p.id]) for p in work), self.progress)
        try:
            with self.store.writer(name) as writer:
                for chunk, verdicts in self.executor.map(judge_task(spec), chunks):
                    new = [v for v in verdicts if v.candidate_id not in have]
                    writer.write_many(new)
                    have.update(v.candidate_id for v in new)
                    if bar is not None:
                        bar.update(sum(len(cs) for cs in chunk.candidates))
        finally:
            if bar is not None:
                bar.close()

    def describe(self, summary: dict[str, Any]) -> str:
        return format_summary(summary)


def judge_outcome(
    prompts: list[Prompt],
    candidates_dir: Path,
    judges: list[JudgeConfig] | list[Judge],
    out_dir: Path,
    progress: bool = True,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    marker: Path | None = None,
    candidates_marker: Path | None = None,
    executor: Executor | None = None,
    label: str = "judge",
) -> Outcome:
    """Judge every candidate in `candidates_dir` (a shard dir or a JSONL file) with every judge; return the runner's outcome.

    `judges` are recipe configs (built here, one at a time, and closed after
    their turn so two models never share a GPU) or ready Judge objects (left
    open for the caller). `marker` defaults to the round's (`out_dir` is a
    round's `verdicts/`).
    """
    out_dir = Path(out_dir)
    rd = RoundDir(out_dir.parent)
    if candidates_marker is None and Path(candidates_dir).parent == rd.path:
        candidates_marker = rd.marker("sample")
    stage = JudgeStage(prompts, Path(candidates_dir), judges, out_dir, marker or rd.marker("judge"),
                       progress, chunk_size, executor, candidates_marker)
    return run_stage(stage, label, quiet=not progress)


def _bar(name: str, total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"judge {name}", unit="cand", file=sys.stderr)


def judge_stage(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """`judge_outcome(...)`'s summary: the same arguments, the stage summary it recorded (see `judge_outcome`)."""
    return judge_outcome(*args, **kwargs).summary
