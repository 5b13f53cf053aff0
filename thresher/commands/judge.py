"""Judge sampled candidates with verifiers, reward models and LLM judges (resumable).

Verdicts go to RUN/round_K/verdicts/ as JSONL shards, one Verdict per line
and per (judge, candidate), one set of shards per judge. After a crash or a
kill the same command judges only what is missing; an unchanged rerun is
skipped; a judge whose arguments changed (another reward model, LLM-judge
mode or language) is judged again, alone, and the command says so. With
--candidates FILE (and --prompts FILE) the candidates and prompts are first
recorded in the round, so `thresher export --run RUN` and `thresher eval`
work on them. The summary line counts, per judge, verdicts, errors
(timeouts, unparseable judge output), correct answers, the mean score and,
for pairwise LLM judges, the position-bias rate.

Judge SPECs:
    math                       final answer vs Prompt.reference (math-verify, worker processes)
    code                       candidate code vs Prompt.tests in a sandbox (bubblewrap if installed)
    rm:PATH                    a sequence-classification reward model
    loglik:PATH                a causal LM's mean log-probability per answer token
    loglik:PATH:REF_PATH       DPO's implicit reward: log-ratio of the model at PATH to the one at REF_PATH
    llm:PATH[:MODE]            an LLM judge on a local model (backend hf, or --llm-backend vllm);
                               MODE is pointwise (default), pairwise or listwise
    llm:URL[:MODE]             an LLM judge on an OpenAI-compatible server (http://host:port/v1);
                               the served model name comes from --llm-model or the server's first model

Examples:
    thresher judge --run runs/try --judge math --judge rm:./my-rm
    thresher judge --prompts prompts.jsonl --candidates cands.jsonl --judge code --run runs/try
    thresher judge --run runs/try --round 2 --judge llm:http://127.0.0.1:8000/v1:listwise --language zh
    thresher judge --run runs/try --judge llm:./Qwen2.5-72B-Instruct:listwise --llm-backend vllm \\
        --model-arg tensor_parallel_size=4
    thresher judge --recipe recipes/quickstart.yaml            # the recipe's judges, its run's latest round
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from thresher.errors import UserError

HELP = "judge candidates with math/code verifiers, reward models and LLM judges (resumable)"

MODES = ("pointwise", "pairwise", "listwise")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from thresher.commands.common import add_output_arguments, add_recipe_arguments, add_run_arguments

    what = parser.add_argument_group("what to judge")
    what.add_argument("--prompts", metavar="FILE.jsonl", help="Prompt records (default: the round's prompts.jsonl)")
    what.add_argument(
        "--candidates", metavar="FILE_OR_DIR",
        help="Candidate JSONL file or shard directory, recorded into the round (default: the round's candidates)",
    )
    what.add_argument(
        "--judge", action="append", default=[], metavar="SPEC",
        help="math, code, rm:PATH, loglik:PATH[:REF_PATH], llm:PATH_OR_URL[:MODE]",
    )
    add_recipe_arguments(parser, "the judges (its `judges:` list)")
    add_run_arguments(parser, "round to judge (default: the latest round with candidates)")
    llm = parser.add_argument_group("LLM judge options (for --judge llm:...)")
    llm.add_argument("--llm-backend", choices=["hf", "vllm"], default="hf", help="backend for a local judge model")
    llm.add_argument("--llm-model", help="served model name for an OpenAI-compatible judge URL")
    llm.add_argument(
        "--language", choices=["en", "zh", "auto"], default="en",
        help="language of the judge's templates (auto: each prompt's own language)",
    )
    llm.add_argument(
        "--no-reference", action="store_true",
        help="do not show prompts' reference answers to the judge (it judges unaided)",
    )
    llm.add_argument("--max-tokens", type=int, default=1024, help="longest judge answer")
    llm.add_argument(
        "--model-arg", action="append", default=[], metavar="KEY=VALUE",
        help="judge model backend option, value parsed as YAML: tensor_parallel_size=4, dtype=bfloat16, "
        "batch_size=64 (hf), max_concurrency=32 (openai); repeatable",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--chunk-size", type=int, default=None, help="prompts per judge call (default 128)")
    run.add_argument("--executor", choices=["local", "ray"], help="where chunks run (default: the recipe's, else local)")
    add_output_arguments(parser)


def served_model(base_url: str) -> str:
    """The first model an OpenAI-compatible server lists."""
    import openai

    from thresher.errors import UserError

    try:
        models = openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=2).models.list().data
    except openai.OpenAIError as e:
        raise UserError(f"--judge llm:{base_url}: cannot list the server's models ({e})") from None
    if not models:
        raise UserError(f"--judge llm:{base_url}: the server serves no model")
    return models[0].id


def parse_spec(spec: str, args: argparse.Namespace) -> Any:
    """A `--judge` SPEC as a JudgeConfig."""
    from thresher.config import JudgeConfig
    from thresher.errors import UserError

    kind, _, rest = spec.partition(":")
    if kind in ("math", "code") and not rest:
        return JudgeConfig(type=kind)
    if kind == "rm" and rest:
        return JudgeConfig(type="rm", args={"model": rest})
    if kind == "loglik" and rest:
        model, _, reference = rest.partition(":")
        return JudgeConfig(type="loglik", args={"model": model, **({"reference": reference} if reference else {})})
    if kind == "llm" and rest:
        mode = "pointwise"
        head, _, last = rest.rpartition(":")
        if head and last in MODES:
            rest, mode = head, last
        common = {"mode": mode, "language": args.language, "max_tokens": args.max_tokens}
        if getattr(args, "model_arg", None):
            from thresher.commands.sample import _model_args

            common["sampler_args"] = _model_args(args.model_arg)
        if args.no_reference:
            common["with_reference"] = False
        if rest.startswith(("http://", "https://")):
            model = args.llm_model or served_model(rest)
            return JudgeConfig(type="llm", args={"model": model, "backend": "openai", "base_url": rest, **common})
        return JudgeConfig(type="llm", args={"model": rest, "backend": args.llm_backend, **common})
    raise UserError(f"--judge {spec!r}: expected math, code, rm:PATH, loglik:PATH[:REF_PATH] or "
                    f"llm:PATH_OR_URL[:{'|'.join(MODES)}]")


def _unique_names(configs: list[Any]) -> list[Any]:
    """Two specs of one type (rm:a, rm:b) get names rm, rm-2."""
    seen: set[str] = set()
    for c in configs:
        base = c.name or c.type
        name, k = base, 2
        while name in seen:
            name, k = f"{base}-{k}", k + 1
        seen.add(name)
        c.name = name
    return configs


def run(args: argparse.Namespace) -> int:
    from thresher.commands.common import executor_for, locked, resolve, setup_logging
    from thresher.config import check_judge_paths
    from thresher.errors import ConfigError, UserError
    from thresher.judges.stage import DEFAULT_CHUNK, judge_stage
    from thresher.records import Prompt, read_jsonl

    setup_logging(args)
    if args.chunk_size is not None and args.chunk_size < 1:
        raise UserError(f"--chunk-size: must be at least 1, got {args.chunk_size}")
    if args.recipe and args.judge:
        raise UserError("--judge and --recipe both name judges; use one of them")
    if args.model_arg and not any(s.startswith("llm:") for s in args.judge):
        raise UserError("--model-arg configures an LLM judge's backend: give --judge llm:PATH_OR_URL[:MODE]")
    where = resolve(args, default_round=1 if args.candidates else "latest")
    recipe = where.recipe
    if args.judge:
        configs = _unique_names([parse_spec(s, args) for s in args.judge])
    elif recipe is not None:
        from thresher.rounds import judges_for_round

        configs = judges_for_round(recipe)
    else:
        configs = []
    for spec, cfg in zip(args.judge, configs):
        try:
            check_judge_paths(cfg, f"--judge {spec}")
        except ConfigError as e:
            raise UserError(f"--judge {spec}: {e.reason}") from None
    if not configs:
        raise UserError("no judge: give --judge SPEC (repeatable) or --recipe RECIPE.yaml")
    from thresher.store import RoundDir

    rd = RoundDir(where.round)
    prompts_path = Path(args.prompts) if args.prompts else rd.prompts
    if not prompts_path.exists():
        raise UserError(f"{prompts_path}: no such file (give --prompts FILE.jsonl)")
    prompts = list(read_jsonl(prompts_path, Prompt))
    with locked(where):
        if args.candidates:
            record_candidates(rd, Path(args.candidates), prompts, quiet=args.quiet)
        elif args.prompts and not rd.prompts.exists():
            _record_prompts(rd, prompts)
        if not rd.candidates.exists():
            raise UserError(f"{rd.candidates}: no candidates in this round (give --candidates FILE_OR_DIR)")
        executor = executor_for(args, recipe)
        try:
            judge_stage(
                prompts, rd.candidates, configs, rd.verdicts, progress=not args.quiet,
                chunk_size=args.chunk_size or DEFAULT_CHUNK, executor=executor,
            )
        finally:
            executor.close()
    return 0


IMPORTED = "imported"
"""The shard part that holds candidates recorded from a file by `thresher judge --candidates`."""


def record_candidates(rd: Any, source: Path, prompts: list[Any], quiet: bool = False) -> None:
    """Copy candidates (and their prompts) into the round, so export, eval and the report see them.

    The copy is checked first (every candidate answers a known prompt, no id
    twice) and replaced only when the file's contents changed. The round's
    sampling marker goes: its candidates are no longer what it sampled.
    """
    import sys

    from thresher.judges.stage import group_candidates
    from thresher.records import Candidate
    from thresher.runner import digest, file_digest
    from thresher.store import ShardedJsonl, read_records

    if not source.exists():
        raise UserError(f"{source}: no such file or directory (give --candidates FILE_OR_DIR)")
    if source.resolve() == rd.candidates.resolve():
        return
    stamp = rd.path / ".stages" / "imported.json"
    new = digest([file_digest(source), str(source.resolve())])
    _record_prompts(rd, prompts)
    if stamp.is_file() and stamp.read_text().strip() == new and rd.candidates.exists():
        return
    cands = list(read_records(source, Candidate))
    group_candidates(prompts, cands, source)
    store: ShardedJsonl[Candidate] = ShardedJsonl(rd.candidates, Candidate, shard_size=max(1, len(cands)))
    store.drop()
    with store.writer(IMPORTED) as w:
        w.write_many(cands)
    rd.marker("sample").unlink(missing_ok=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(new + "\n")
    if not quiet:
        print(f"recorded {len(cands)} candidates from {source} in {rd.candidates}", file=sys.stderr)


def _record_prompts(rd: Any, prompts: list[Any]) -> None:
    from thresher.records import write_jsonl

    rd.path.mkdir(parents=True, exist_ok=True)
    write_jsonl(rd.prompts, prompts)
