"""The sampling stage of a round: every model's n candidates for every prompt, resumable.

Candidates go through `ShardedJsonl`: each chunk of prompts is written and
flushed as soon as it is sampled, so a SIGKILL loses at most the chunk in
flight. Starting again reads what is on disk, works out per prompt and model
which candidate indices are missing, and samples only those; shards written
earlier are never rewritten. A finished stage writes `.complete` with a
summary, and a later call returns that summary without loading any model.

Models are sampled one after another, each sampler built just before its turn
and closed right after (unless the caller passed it in), so two vLLM engines
never compete for one GPU.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thresher.errors import UserError
from thresher.records import Candidate, Prompt
from thresher.sampling.common import check_model_path, derive_seed
from thresher.sampling.params import Sampler, SamplingParams
from thresher.sampling.pool import build_sampler, close_sampler
from thresher.store import ShardedJsonl

if TYPE_CHECKING:
    from thresher.config import ModelConfig

DEFAULT_CHUNK = 256
"""Prompts per `sample` call: large enough for vLLM to batch well, small enough that a kill loses little."""


def fingerprint(prompts: Sequence[Prompt], models: Sequence[ModelConfig]) -> str:
    """What a finished stage was asked to do: its prompt ids and each model's name and n."""
    blob = json.dumps([sorted(p.id for p in prompts), [[m.name, m.n] for m in models]])
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def model_params(model: ModelConfig) -> SamplingParams:
    """The model's sampling params, with the pool entry's `n` (the one a recipe sets) in charge."""
    return replace(model.sampling, n=model.n, stop=list(model.sampling.stop))


def _check_inputs(prompts: Sequence[Prompt], models: Sequence[ModelConfig], prebuilt: set[str]) -> None:
    """Fail before the first model loads on what would fail later: duplicate ids, a missing model path."""
    seen: set[str] = set()
    for p in prompts:
        if p.id in seen:
            raise UserError(f"prompt id {p.id!r} appears twice; prompt ids must be unique")
        seen.add(p.id)
    names = [m.name for m in models]
    for n in names:
        if names.count(n) > 1:
            raise UserError(f"model name {n!r} appears twice in the pool; give each model its own name")
    for m in models:
        if m.backend != "openai" and m.name not in prebuilt:
            check_model_path(m.path)


def _existing(store: ShardedJsonl[Candidate]) -> dict[tuple[str, str], set[int]]:
    """Candidate indices already on disk per (prompt id, model); duplicates count once."""
    have: dict[tuple[str, str], set[int]] = defaultdict(set)
    for c in store:
        have[(c.prompt_id, c.model)].add(c.index)
    return have


class _Progress:
    """A tqdm bar per model: prompts done, with candidates/s and tokens/s of this run."""

    def __init__(self, model: str, total: int, done: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total, initial=done, desc=f"sample {model}", unit="prompt", disable=not enabled, dynamic_ncols=True
        )
        self.start = time.perf_counter()
        self.candidates = 0
        self.tokens = 0

    def update(self, prompts: int, cands: list[Candidate]) -> None:
        self.candidates += len(cands)
        self.tokens += sum(c.num_tokens or 0 for c in cands)
        dt = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{self.candidates / dt:.1f} cand/s, {self.tokens / dt:.0f} tok/s", refresh=False)
        self.bar.update(prompts)

    def close(self) -> None:
        self.bar.close()


def _label(
    rows: list[list[Candidate]], prompts: Sequence[Prompt], indices: list[list[int]], model: ModelConfig
) -> list[Candidate]:
    """Give a sampler's answers the pool's model name and the indices they fill; check the shape."""
    if len(rows) != len(prompts):
        raise RuntimeError(f"sampler for {model.name!r} returned {len(rows)} rows for {len(prompts)} prompts")
    out = []
    for prompt, row, want in zip(prompts, rows, indices, strict=True):
        if len(row) != len(want):
            raise RuntimeError(
                f"sampler for {model.name!r} returned {len(row)} candidates for prompt "
                f"{prompt.id!r}, expected {len(want)}"
            )
        for cand, index in zip(row, want, strict=True):
            if cand.prompt_id != prompt.id:
                raise RuntimeError(
                    f"sampler for {model.name!r} answered prompt {cand.prompt_id!r} in the slot of {prompt.id!r}"
                )
            cand.model, cand.index = model.name, index
            cand.metadata = {**cand.metadata, "role": model.role}
            out.append(cand)
    return out


def _sample_model(
    model: ModelConfig,
    sampler: Sampler,
    todo: list[tuple[Prompt, list[int]]],
    writer: Any,
    progress: _Progress,
    chunk_size: int,
) -> None:
    params = model_params(model)
    full = [p for p, missing in todo if len(missing) == model.n]
    for start in range(0, len(full), chunk_size):
        chunk = full[start : start + chunk_size]
        cands = _label(sampler.sample(chunk, params), chunk, [list(range(model.n))] * len(chunk), model)
        writer.write_many(cands)
        progress.update(len(chunk), cands)
    # Prompts a kill left half written (at most one chunk's worth): draw only the missing indices,
    # grouped by which are missing, with a seed of their own so they do not repeat answers on disk.
    partial: dict[tuple[int, ...], list[Prompt]] = defaultdict(list)
    for prompt, missing in todo:
        if len(missing) < model.n:
            partial[tuple(missing)].append(prompt)
    for missing, group in partial.items():
        part = replace(params, n=len(missing), seed=derive_seed(params.seed, "resume", *missing))
        cands = _label(sampler.sample(group, part), group, [list(missing)] * len(group), model)
        writer.write_many(cands)
        progress.update(len(group), cands)


def _summary(
    store: ShardedJsonl[Candidate], prompts: Sequence[Prompt], models: Sequence[ModelConfig], seconds: float
) -> dict[str, Any]:
    wanted_prompts = {p.id for p in prompts}
    wanted_models = {m.name for m in models}
    n_of = {m.name: m.n for m in models}
    per_model: dict[str, dict[str, int]] = {m.name: {"candidates": 0, "tokens": 0, "truncated": 0} for m in models}
    for c in store.unique(lambda c: c.id):
        if c.prompt_id in wanted_prompts and c.model in wanted_models and c.index < n_of[c.model]:
            row = per_model[c.model]
            row["candidates"] += 1
            row["tokens"] += c.num_tokens or 0
            row["truncated"] += c.finish_reason == "length"
    for m in models:
        expected = len(prompts) * m.n
        if per_model[m.name]["candidates"] != expected:
            raise RuntimeError(
                f"sampling {m.name!r} ended with {per_model[m.name]['candidates']} candidates, expected {expected}"
            )
    return {
        "prompts": len(prompts),
        "candidates": sum(r["candidates"] for r in per_model.values()),
        "tokens": sum(r["tokens"] for r in per_model.values()),
        "seconds": round(seconds, 3),
        "models": per_model,
        "fingerprint": fingerprint(prompts, models),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """One line for the end of a run: totals, then each model's share."""
    secs = summary.get("seconds") or 0.0
    rate = f", {summary['tokens'] / secs:.0f} tok/s" if secs else ""
    per = "; ".join(
        f"{name}: {r['candidates']} candidates, {r['tokens']} tokens, {r['truncated']} truncated"
        for name, r in summary["models"].items()
    )
    return (
        f"sampled {summary['candidates']} candidates for {summary['prompts']} prompts "
        f"({summary['tokens']} tokens) in {secs:.1f}s{rate} — {per}"
    )


def sample_stage(
    prompts: list[Prompt],
    models: list[ModelConfig],
    out_dir: Path,
    samplers: dict[str, Sampler] | None = None,
    progress: bool = True,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    shard_size: int = 10_000,
) -> dict[str, Any]:
    """Sample `model.n` candidates per prompt from every model into `out_dir` (shards); return the summary.

    `samplers` maps model names to samplers the caller already built (a round
    loop reusing a vLLM engine); other models are built from their configs and
    closed when done. Summary: prompts, candidates, tokens, seconds (this run),
    and per model its candidates, tokens and answers cut by max_tokens.
    """
    if chunk_size < 1:
        raise UserError(f"chunk_size: must be at least 1, got {chunk_size}")
    out_dir = Path(out_dir)
    store: ShardedJsonl[Candidate] = ShardedJsonl(out_dir, Candidate, shard_size=shard_size)
    if store.complete:
        summary = store.summary()
        if summary.get("fingerprint") not in (None, fingerprint(prompts, models)):
            raise UserError(
                f"{out_dir}: already holds finished sampling of other prompts or models; "
                "use another output directory or delete this one"
            )
        if progress and "models" in summary:
            print(f"{out_dir}: already complete; {format_summary(summary)}", file=sys.stderr)
        return summary
    samplers = samplers or {}
    _check_inputs(prompts, models, set(samplers))
    have = _existing(store)
    start = time.perf_counter()
    with store.writer() as writer:
        for model in models:
            todo = [
                (p, missing)
                for p in prompts
                if (missing := [i for i in range(model.n) if i not in have.get((p.id, model.name), ())])
            ]
            if not todo:
                continue
            built = model.name not in samplers
            sampler = build_sampler(model) if built else samplers[model.name]
            bar = _Progress(model.name, len(prompts), len(prompts) - len(todo), progress)
            try:
                _sample_model(model, sampler, todo, writer, bar, chunk_size)
            finally:
                bar.close()
                if built:
                    close_sampler(sampler)
    summary = _summary(store, prompts, models, time.perf_counter() - start)
    store.mark_complete(summary)
    if progress:
        print(format_summary(summary), file=sys.stderr)
    return summary
