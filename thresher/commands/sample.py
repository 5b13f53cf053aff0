"""Sample N candidate answers per prompt from one or more models (teachers and students).

Candidates go to RUN/round_K/candidates/ as JSONL shards (one Candidate per
line, recording the model that wrote it); the prompts are copied to
RUN/round_K/prompts.jsonl for the judging stage. The run is resumable: after
a crash or a kill, the same command samples only what is missing; an
unchanged rerun is skipped; a changed request (another checkpoint,
temperature or n for a model) resamples that model and says so.

Examples:
    thresher sample --prompts prompts.jsonl --model ./my-model --n 4 --backend hf --run runs/try
    thresher sample --prompts prompts.jsonl --model teacher=Qwen/Qwen2.5-7B-Instruct --student ./ckpt \\
        --n 8 --backend vllm --temperature 0.8 --run runs/try --round 1
    thresher sample --prompts prompts.jsonl --model gpt-4o-mini --backend openai \\
        --base-url https://api.openai.com/v1 --n 2 --run runs/try
    thresher sample --recipe recipes/quickstart.yaml          # the recipe's models and train prompts
    thresher sample --recipe recipes/quickstart.yaml --executor ray --set models[0].resources.replicas=2
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "sample N answers per prompt from teachers and students (vllm, hf, openai; resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from thresher.commands.common import add_output_arguments, add_recipe_arguments, add_run_arguments

    src = parser.add_argument_group("what to sample")
    src.add_argument("--prompts", metavar="FILE.jsonl", help="Prompt records, one JSON object per line")
    src.add_argument(
        "--model", action="append", default=[], metavar="[NAME=]PATH_OR_ID",
        help="a teacher: local directory, hub id, or served model name (backend openai); repeatable",
    )
    src.add_argument(
        "--student", action="append", default=[], metavar="[NAME=]PATH_OR_ID",
        help="like --model, with role student; repeatable",
    )
    add_recipe_arguments(parser, "models and train prompts (--prompts still overrides the prompts)")
    add_run_arguments(parser, "round to sample into (default: 1)")

    how = parser.add_argument_group("how to sample (for --model / --student)")
    how.add_argument("--backend", choices=["vllm", "hf", "openai"], default="vllm", help="sampler backend")
    how.add_argument("--n", type=int, default=4, help="candidates per prompt from each model")
    how.add_argument("--temperature", type=float, default=1.0, help="0 means greedy")
    how.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling")
    how.add_argument("--max-tokens", type=int, default=512, help="longest answer in tokens")
    how.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop string; repeatable")
    how.add_argument("--seed", type=int, default=None, help="seed for reproducible sampling")
    how.add_argument("--base-url", help="OpenAI-compatible server URL (backend openai)")
    how.add_argument(
        "--model-arg", action="append", default=[], metavar="KEY=VALUE",
        help="backend option, value parsed as YAML: dtype=float32, tensor_parallel_size=2, "
        "batch_size=64 (hf), max_concurrency=32 (openai); repeatable",
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--chunk-size", type=int, default=None, help="prompts per sampling call and per durable write (default 256)"
    )
    run.add_argument("--executor", choices=["local", "ray"], help="where chunks run (default: the recipe's, else local)")
    add_output_arguments(parser)


def _split_name(spec: str) -> tuple[str | None, str]:
    """`teacher=./path` -> ("teacher", "./path"); a bare path or URL-like id has no name."""
    name, sep, path = spec.partition("=")
    if sep and name and "/" not in name and ":" not in name:
        return name, path
    return None, spec


def _model_args(items: list[str]) -> dict[str, Any]:
    import yaml

    from thresher.errors import UserError

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--model-arg {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(raw)
    return out


def _cli_models(args: argparse.Namespace) -> list[Any]:
    from thresher.config import ModelConfig
    from thresher.errors import ConfigError
    from thresher.sampling.common import default_model_name
    from thresher.sampling.params import SamplingParams

    try:
        sampling = SamplingParams(
            n=args.n,
            temperature=args.temperature,
            top_p=args.top_p,
            max_tokens=args.max_tokens,
            stop=list(args.stop),
            seed=args.seed,
        )
    except ConfigError as e:  # "top_p: must be in (0, 1], got 2" -> "--top-p: ..."
        raise e.as_flag() from None
    extra = _model_args(args.model_arg)
    models, names = [], set()
    specs = [(s, "teacher") for s in args.model] + [(s, "student") for s in args.student]
    for spec, role in specs:
        name, path = _split_name(spec)
        base = name or (path.replace("/", "_") if args.backend == "openai" else default_model_name(path))
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.add(name)
        try:
            models.append(
                ModelConfig(
                    name=name,
                    path=path,
                    role=role,
                    backend=args.backend,
                    n=args.n,
                    sampling=sampling,
                    base_url=args.base_url,
                    args=dict(extra),
                )
            )
        except ConfigError as e:
            model_arg = f"--model-arg {e.key.removeprefix('args.')}" if e.key.startswith("args.") else None
            raise e.as_flag({e.key: model_arg} if model_arg else {}) from None
    return models


def run(args: argparse.Namespace) -> int:
    from thresher.commands.common import executor_for, locked, resolve, setup_logging
    from thresher.errors import UserError
    from thresher.records import Prompt, read_jsonl, write_jsonl
    from thresher.sampling.stage import DEFAULT_CHUNK, sample_stage

    setup_logging(args)
    if args.chunk_size is not None and args.chunk_size < 1:
        raise UserError(f"--chunk-size: must be at least 1, got {args.chunk_size}")
    where = resolve(args, default_round=1)
    recipe = where.recipe
    explicit = bool(args.model or args.student)
    if explicit and args.recipe:
        raise UserError("--model / --student and --recipe both name models; use one of them")
    models = _cli_models(args) if explicit else (recipe.models if recipe is not None else [])
    if not models:
        raise UserError("no model to sample from: give --model PATH (repeatable) or --recipe RECIPE.yaml")
    if args.prompts:
        prompts = list(read_jsonl(args.prompts, Prompt))
    elif recipe is not None:
        from thresher.prompts import load_prompts

        prompts = load_prompts(recipe.prompts.train, "prompts.train")
    else:
        raise UserError("no prompts: give --prompts FILE.jsonl or --recipe RECIPE.yaml")
    if not prompts:
        raise UserError(f"{args.prompts or args.recipe}: no prompts to sample")
    from dataclasses import replace

    from thresher.models import resolve_model_path

    models = [replace(m, path=resolve_model_path(m.path)) if m.backend != "openai" else m for m in models]
    with locked(where):
        where.round.mkdir(parents=True, exist_ok=True)
        write_jsonl(where.round / "prompts.jsonl", prompts)
        executor = executor_for(args, recipe)
        try:
            sample_stage(
                prompts, models, where.round / "candidates", progress=not args.quiet,
                chunk_size=args.chunk_size or DEFAULT_CHUNK, executor=executor,
            )
        finally:
            executor.close()
    return 0
