"""The judging stage of a round: every judge's verdict on every candidate, resumable.

All judges write into one shard directory (`round_<k>/verdicts/`), told apart
by `Verdict.judge`. Work goes in chunks of prompts, each chunk's verdicts
written and flushed together, so a kill loses at most the chunk in flight.
Starting again reads which (judge, candidate) pairs already have a verdict
and judges only prompts with a missing one; a prompt is always judged with
all its candidates (a listwise judge needs them together) but only missing
verdicts are written, so none is duplicated. A finished stage writes
`.complete` with its summary, and a later call with the same judges and
candidates returns that summary without loading a model.

Summary, per judge: verdicts, errors (with a few examples), correct /
incorrect counts, verdicts with no opinion, the mean score, and for pairwise
LLM judges the position-bias rate (pairs whose verdict flipped when the order
was swapped).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thresher.config import JudgeConfig
from thresher.errors import UserError
from thresher.judges.base import Judge, close_judge
from thresher.records import Candidate, Prompt, Verdict
from thresher.store import ShardedJsonl, read_records

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


def judge_stage(
    prompts: list[Prompt],
    candidates_dir: Path,
    judges: list[JudgeConfig] | list[Judge],
    out_dir: Path,
    progress: bool = True,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, Any]:
    """Judge every candidate in `candidates_dir` (a shard dir or a JSONL file) with every judge; return the summary.

    `judges` are recipe configs (built here, one at a time, and closed after
    their turn so two models never share a GPU) or ready Judge objects (left
    open for the caller).
    """
    from thresher.judges.registry import build_judge

    if chunk_size < 1:
        raise UserError(f"chunk_size: must be at least 1, got {chunk_size}")
    names = [_judge_name(j) for j in judges]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise UserError(f"judges[{i}]: duplicate judge name {n!r}; give each judge its own name")
    out_dir = Path(out_dir)
    store: ShardedJsonl[Verdict] = ShardedJsonl(out_dir, Verdict)
    candidates = list(read_records(candidates_dir, Candidate))
    if store.complete:
        done = store.summary()
        if set(names) <= set(done.get("judges", {})) and done.get("candidates") == len(candidates):
            return done
    by_prompt = group_candidates(prompts, candidates, candidates_dir)
    todo_prompts = [p for p in prompts if by_prompt.get(p.id)]
    have = {(v.judge, v.candidate_id) for v in store}
    start = time.perf_counter()
    with store.writer() as writer:
        for i, spec in enumerate(judges):
            name = names[i]
            work = [p for p in todo_prompts if any((name, c.id) not in have for c in by_prompt[p.id])]
            if not work:
                continue
            built = isinstance(spec, JudgeConfig)
            judge = build_judge(spec, f"judges[{i}]") if built else spec
            total = sum(len(by_prompt[p.id]) for p in work)
            bar = _bar(name, total, progress)
            try:
                for s in range(0, len(work), chunk_size):
                    chunk = work[s : s + chunk_size]
                    chunk_cands = [by_prompt[p.id] for p in chunk]
                    out = judge.judge(chunk, chunk_cands)
                    _check_output(judge, chunk_cands, out)
                    new = [v for row in out for v in row if (name, v.candidate_id) not in have]
                    writer.write_many(new)
                    have.update((name, v.candidate_id) for v in new)
                    if bar is not None:
                        bar.update(sum(len(cs) for cs in chunk_cands))
            finally:
                if bar is not None:
                    bar.close()
                if built:
                    close_judge(judge)
    wanted = {c.id for c in candidates}
    verdicts = [v for v in store.unique(lambda v: (v.judge, v.candidate_id)) if v.candidate_id in wanted]
    summary = summarize(verdicts, names, len(todo_prompts), len(candidates))
    summary["seconds"] = round(time.perf_counter() - start, 3)
    store.mark_complete(summary)
    if progress:
        print(format_summary(summary), file=sys.stderr)
    return summary


def _bar(name: str, total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"judge {name}", unit="cand", file=sys.stderr)
