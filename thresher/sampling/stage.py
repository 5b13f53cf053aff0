"""The sampling stage of a round: every model's n candidates for every prompt, resumable.

Each model of the pool is one *part* of the stage (its candidates live in
`shard-<model>-*.jsonl`), fingerprinted by the prompt set and the model's
identity (checkpoint), backend, arguments and sampling settings. The runner
(`thresher.runner`) skips a model whose fingerprint is unchanged, resumes
one a kill interrupted, and drops and resamples one whose request changed
(another checkpoint, another temperature): a stale candidate is never kept.

Work goes out in chunks of prompts, longest first, through an executor
(in process, or replicas on a Ray cluster); each finished chunk is written
and flushed as soon as it arrives, so a SIGKILL loses at most the chunks in
flight. Starting again reads what is on disk, works out per prompt which
candidate indices are missing, and samples only those.

Locally, models are sampled one after another, each sampler built just
before its turn and closed right after (unless the caller passed it in), so
two vLLM engines never compete for one GPU.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thresher.errors import UserError
from thresher.executors import ChunkTask, Executor, LocalExecutor, Resources
from thresher.records import Candidate, Prompt
from thresher.runner import Outcome, run_stage
from thresher.sampling.common import check_model_path, derive_seed
from thresher.sampling.params import Sampler, SamplingParams, failed, item_error
from thresher.sampling.pool import build_sampler, close_sampler
from thresher.store import RoundDir, ShardedJsonl

if TYPE_CHECKING:
    from thresher.config import ModelConfig

DEFAULT_CHUNK = 256
"""Prompts per `sample` call: large enough for vLLM to batch well, small enough that a kill loses little."""


def model_params(model: ModelConfig) -> SamplingParams:
    """The model's sampling params, with the pool entry's `n` (the one a recipe sets) in charge."""
    return replace(model.sampling, n=model.n, stop=list(model.sampling.stop))


def model_components(model: ModelConfig) -> dict[str, Any]:
    """What a model's candidates depend on: its checkpoint, backend, arguments and sampling settings."""
    from thresher.identity import model_identity, plain
    from thresher.models import resolve_model_path

    path = model.path if model.backend == "openai" else resolve_model_path(model.path)
    return {
        "model": model_identity(path, getattr(model.args, "revision", None), model.base_url),
        "role": model.role,
        "backend": model.backend,
        "n": model.n,
        "sampling": plain(model.sampling),
        "args": plain(model.args),
    }


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


def _existing(store: ShardedJsonl[Candidate], model: str) -> dict[str, set[int]]:
    """Candidate indices of one model already on disk, per prompt id; duplicates count once."""
    have: dict[str, set[int]] = defaultdict(set)
    for path in store.shard_paths(model):
        for c in ShardedJsonl.read_shard(path, Candidate):
            have[c.prompt_id].add(c.index)
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


@dataclass(slots=True)
class SampleChunk:
    """Prompts of one model to sample with `params`, and the candidate indices each answer fills."""

    model: ModelConfig
    prompts: list[Prompt]
    indices: list[list[int]]
    params: SamplingParams


def label_candidates(rows: list[list[Candidate]], chunk: SampleChunk) -> list[Candidate]:
    """Give a sampler's answers the pool's model name and the indices they fill; check the shape."""
    model = chunk.model
    if len(rows) != len(chunk.prompts):
        raise RuntimeError(f"sampler for {model.name!r} returned {len(rows)} rows for {len(chunk.prompts)} prompts")
    out = []
    for prompt, row, want in zip(chunk.prompts, rows, chunk.indices, strict=True):
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


def sample_chunk(sampler: Sampler, chunk: SampleChunk) -> list[Candidate]:
    """One chunk's candidates, labelled: what an executor's worker runs."""
    return label_candidates(sampler.sample(chunk.prompts, chunk.params), chunk)


def plan_chunks(model: ModelConfig, todo: list[tuple[Prompt, list[int]]], chunk_size: int) -> list[SampleChunk]:
    """Chunks of missing work for one model: whole prompts longest first, then half-written ones.

    Prompts a kill left half written (at most the chunks in flight) draw only
    their missing indices, grouped by which are missing, with a seed of their
    own so they do not repeat answers already on disk.
    """
    params = model_params(model)
    full = sorted((p for p, missing in todo if len(missing) == model.n), key=_length, reverse=True)
    chunks = [
        SampleChunk(model, full[s : s + chunk_size], [list(range(model.n))] * len(full[s : s + chunk_size]), params)
        for s in range(0, len(full), chunk_size)
    ]
    partial_groups: dict[tuple[int, ...], list[Prompt]] = defaultdict(list)
    for prompt, missing in todo:
        if len(missing) < model.n:
            partial_groups[tuple(missing)].append(prompt)
    for missing, group in partial_groups.items():
        part = replace(params, n=len(missing), seed=derive_seed(params.seed, "resume", *missing))
        for s in range(0, len(group), chunk_size):
            g = group[s : s + chunk_size]
            chunks.append(SampleChunk(model, g, [list(missing)] * len(g), part))
    return chunks


def _length(p: Prompt) -> int:
    return sum(len(m["content"]) for m in p.messages)


def split_sample_chunk(chunk: SampleChunk) -> list[SampleChunk]:
    """Halves of a chunk's prompts (nothing for one prompt): how a failing chunk is narrowed down."""
    if len(chunk.prompts) <= 1:
        return []
    mid = len(chunk.prompts) // 2
    return [replace(chunk, prompts=chunk.prompts[:mid], indices=chunk.indices[:mid]),
            replace(chunk, prompts=chunk.prompts[mid:], indices=chunk.indices[mid:])]


def failed_candidates(chunk: SampleChunk, error: str) -> list[Candidate]:
    """The candidates of a prompt whose sampling raised (it failed the whole batch it was in): item
    errors like a backend's own rejections (`failed`), which the stage then reports by prompt."""
    return label_candidates([[failed(p.id, chunk.model.name, i, error) for i in indices]
                             for p, indices in zip(chunk.prompts, chunk.indices, strict=True)], chunk)


def sampler_task(model: ModelConfig, sampler: Sampler | None = None) -> ChunkTask[Any, SampleChunk, list[Candidate]]:
    """The executor task of one model: build its sampler once per replica (or use the one given).

    A prompt whose sampling raises becomes item errors (`failed_candidates`) instead of failing the
    other prompts of its chunk; the executor narrows the chunk down to it (`split_sample_chunk`).
    """
    if sampler is not None:
        return ChunkTask(f"sample {model.name}", partial(_given, sampler), sample_chunk, None, Resources(), "model",
                         on_item_error=failed_candidates, split=split_sample_chunk)
    return ChunkTask(f"sample {model.name}", partial(build_sampler, model), sample_chunk, close_sampler,
                     model.resources, "model", on_item_error=failed_candidates, split=split_sample_chunk)


def _given(sampler: Sampler) -> Sampler:
    return sampler


class SampleStage:
    """The runner's view of sampling: one part per model of the pool."""

    name = "sample"

    def __init__(
        self,
        prompts: list[Prompt],
        models: list[ModelConfig],
        out_dir: Path,
        marker: Path,
        samplers: dict[str, Sampler] | None = None,
        progress: bool = True,
        chunk_size: int = DEFAULT_CHUNK,
        shard_size: int = 10_000,
        executor: Executor | None = None,
    ):
        if chunk_size < 1:
            raise UserError(f"chunk_size: must be at least 1, got {chunk_size}")
        self.prompts, self.models = prompts, models
        self.marker = marker
        self.samplers = samplers or {}
        self.progress = progress
        self.chunk_size = chunk_size
        self.executor = executor or LocalExecutor()
        self.store: ShardedJsonl[Candidate] = ShardedJsonl(out_dir, Candidate, shard_size=shard_size)
        self.this_run = {"candidates": 0, "tokens": 0}

    def parts(self) -> dict[str, Any]:
        from thresher.identity import prompts_identity

        ids = prompts_identity(self.prompts)
        return {m.name: {"prompts": ids, **model_components(m)} for m in self.models}

    def has_outputs(self, part: str) -> bool:
        return bool(self.store.shard_paths(part))

    def drop(self, part: str) -> None:
        self.store.drop(part)

    def run(self, todo: list[str]) -> dict[str, Any]:
        _check_inputs(self.prompts, self.models, set(self.samplers))
        owned = {p for m in self.models for p in self.store.shard_paths(m.name)}
        for path in self.store.shard_paths():  # shards of no model of this pool (an older layout)
            if path not in owned:
                path.unlink()
        start = time.perf_counter()
        for model in self.models:
            if model.name in todo:
                self._sample(model)
        return _summary(self.store, self.prompts, self.models, time.perf_counter() - start, self.this_run)

    def _sample(self, model: ModelConfig) -> None:
        have = _existing(self.store, model.name)
        todo = [
            (p, missing) for p in self.prompts
            if (missing := [i for i in range(model.n) if i not in have.get(p.id, ())])
        ]
        if not todo:
            return
        chunks = plan_chunks(model, todo, self.chunk_size)
        bar = _Progress(model.name, len(self.prompts), len(self.prompts) - len(todo), self.progress)
        try:
            with self.store.writer(model.name) as writer:
                for chunk, cands in self.executor.map(sampler_task(model, self.samplers.get(model.name)), chunks):
                    writer.write_many(cands)
                    bar.update(len(chunk.prompts), cands)
                    self.this_run["candidates"] += len(cands)
                    self.this_run["tokens"] += sum(c.num_tokens or 0 for c in cands)
        finally:
            bar.close()

    def describe(self, summary: dict[str, Any]) -> str:
        return format_summary(summary)


def _summary(
    store: ShardedJsonl[Candidate], prompts: Sequence[Prompt], models: Sequence[ModelConfig], seconds: float,
    this_run: dict[str, int],
) -> dict[str, Any]:
    wanted_prompts = {p.id for p in prompts}
    n_of = {m.name: m.n for m in models}
    per_model: dict[str, dict[str, Any]] = {
        m.name: {"candidates": 0, "tokens": 0, "truncated": 0, "errors": 0} for m in models
    }
    for c in store.unique(lambda c: c.id):
        if c.prompt_id in wanted_prompts and c.model in n_of and c.index < n_of[c.model]:
            row = per_model[c.model]
            row["candidates"] += 1
            row["tokens"] += c.num_tokens or 0
            row["truncated"] += c.finish_reason == "length"
            if (why := item_error(c)) is not None:  # recorded, not fatal: export drops it as sampling_error
                row["errors"] += 1
                row.setdefault("error_example", f"prompt {c.prompt_id}: {why}")
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
        "models": per_model,
        "this_run": {**this_run, "seconds": round(seconds, 3)},
    }


def format_summary(summary: dict[str, Any]) -> str:
    """One line for the end of a run: totals, this run's rate, then each model's share."""
    run = summary.get("this_run", {})
    secs = run.get("seconds") or 0.0
    rate = f", {run.get('tokens', 0) / secs:.0f} tok/s this run" if secs and run.get("tokens") else ""
    per = "; ".join(
        f"{name}: {r['candidates']} candidates, {r['tokens']} tokens, {r['truncated']} truncated"
        + (f", {r['errors']} rejected by the backend (first: {r['error_example']})" if r.get("errors") else "")
        for name, r in summary["models"].items()
    )
    return (
        f"{summary['candidates']} candidates for {summary['prompts']} prompts ({summary['tokens']} tokens; "
        f"{run.get('candidates', 0)} sampled in {secs:.1f}s{rate}) — {per}"
    )


def sample_outcome(
    prompts: list[Prompt],
    models: list[ModelConfig],
    out_dir: Path,
    samplers: dict[str, Sampler] | None = None,
    progress: bool = True,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    shard_size: int = 10_000,
    marker: Path | None = None,
    executor: Executor | None = None,
    label: str = "sample",
) -> Outcome:
    """Sample `model.n` candidates per prompt from every model into `out_dir` (shards); return the runner's outcome.

    `samplers` maps model names to samplers the caller already built (a round
    loop reusing a vLLM engine); other models are built from their configs and
    closed when done. `marker` defaults to the round's (`out_dir` is a round's
    `candidates/`). Summary: prompts, candidates, tokens, per model its
    candidates, tokens and answers cut by max_tokens, and this run's work.
    """
    out_dir = Path(out_dir)
    stage = SampleStage(prompts, models, out_dir, marker or RoundDir(out_dir.parent).marker("sample"),
                        samplers, progress, chunk_size, shard_size, executor)
    return run_stage(stage, label, quiet=not progress)


def sample_stage(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """`sample_outcome(...)`'s summary: the same arguments, the stage summary it recorded (see `sample_outcome`)."""
    return sample_outcome(*args, **kwargs).summary
