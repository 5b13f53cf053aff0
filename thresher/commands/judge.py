"""Judge sampled candidates with verifiers, reward models and LLM judges (resumable).

Verdicts go to OUT/verdicts/ as JSONL shards, one Verdict per line and per
(judge, candidate); all judges share the directory, told apart by the
`judge` field. After a crash or a kill the same command judges only what is
missing; a finished run is skipped. The summary line counts, per judge,
verdicts, errors (timeouts, unparseable judge output), correct answers, the
mean score and, for pairwise LLM judges, the position-bias rate.

Judge SPECs:
    math                       final answer vs Prompt.reference (math-verify, worker processes)
    code                       candidate code vs Prompt.tests in a sandbox (bubblewrap if installed)
    rm:PATH                    a sequence-classification reward model
    llm:PATH[:MODE]            an LLM judge on a local model (backend hf, or --llm-backend vllm);
                               MODE is pointwise (default), pairwise or listwise
    llm:URL[:MODE]             an LLM judge on an OpenAI-compatible server (http://host:port/v1);
                               the served model name comes from --llm-model or the server's first model

Examples:
    thresher judge --out runs/try/round_1 --judge math --judge rm:./my-rm
    thresher judge --prompts prompts.jsonl --candidates cands.jsonl --judge code --out runs/try/round_1
    thresher judge --out runs/try/round_1 --judge llm:http://127.0.0.1:8000/v1:listwise --language zh
    thresher judge --recipe recipes/quickstart.yaml --out runs/quickstart/round_1
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "judge candidates with math/code verifiers, reward models and LLM judges (resumable)"

MODES = ("pointwise", "pairwise", "listwise")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompts", metavar="FILE.jsonl", help="Prompt records (default: OUT/prompts.jsonl)")
    parser.add_argument(
        "--candidates", metavar="FILE_OR_DIR", help="Candidate JSONL file or shard directory (default: OUT/candidates)"
    )
    parser.add_argument(
        "--judge", action="append", default=[], metavar="SPEC", help="math, code, rm:PATH, llm:PATH_OR_URL[:MODE]"
    )
    parser.add_argument("--recipe", metavar="RECIPE.yaml", help="take the judges from a recipe's `judges:` list")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", metavar="RUN_DIR", help="where verdicts/ goes (a round directory)")
    llm = parser.add_argument_group("LLM judge options (for --judge llm:...)")
    llm.add_argument("--llm-backend", choices=["hf", "vllm"], default="hf", help="backend for a local judge model")
    llm.add_argument("--llm-model", help="served model name for an OpenAI-compatible judge URL")
    llm.add_argument("--language", choices=["en", "zh"], default="en", help="language of the judge's templates")
    llm.add_argument("--max-tokens", type=int, default=1024, help="longest judge answer (default 1024)")
    parser.add_argument("--chunk-size", type=int, default=None, help="prompts per judge call (default 128)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or summary line")


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
    if kind == "llm" and rest:
        mode = "pointwise"
        head, _, last = rest.rpartition(":")
        if head and last in MODES:
            rest, mode = head, last
        common = {"mode": mode, "language": args.language, "max_tokens": args.max_tokens}
        if rest.startswith(("http://", "https://")):
            model = args.llm_model or served_model(rest)
            return JudgeConfig(type="llm", args={"model": model, "backend": "openai", "base_url": rest, **common})
        return JudgeConfig(type="llm", args={"model": rest, "backend": args.llm_backend, **common})
    raise UserError(f"--judge {spec!r}: expected math, code, rm:PATH or llm:PATH_OR_URL[:{'|'.join(MODES)}]")


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
    from thresher.config import load_recipe
    from thresher.errors import UserError
    from thresher.judges.stage import DEFAULT_CHUNK, judge_stage
    from thresher.records import Prompt, read_jsonl

    recipe = load_recipe(args.recipe, args.overrides) if args.recipe else None
    if recipe is None and args.overrides:
        raise UserError("--set needs --recipe")
    if recipe is not None and args.judge:
        raise UserError("--judge and --recipe both name judges; use one of them")
    configs = list(recipe.judges) if recipe is not None else _unique_names([parse_spec(s, args) for s in args.judge])
    if not configs:
        raise UserError("no judge: give --judge SPEC (repeatable) or --recipe RECIPE.yaml")
    if args.out:
        out = Path(args.out)
    elif recipe is not None:
        out = recipe.run_dir / "round_1"
    else:
        raise UserError("--out RUN_DIR is required (verdicts go to RUN_DIR/verdicts/)")
    prompts_path = Path(args.prompts) if args.prompts else out / "prompts.jsonl"
    candidates_path = Path(args.candidates) if args.candidates else out / "candidates"
    if not prompts_path.exists():
        raise UserError(f"{prompts_path}: no such file (give --prompts FILE.jsonl)")
    if not candidates_path.exists():
        raise UserError(f"{candidates_path}: no such file or directory (give --candidates FILE_OR_DIR)")
    prompts = list(read_jsonl(prompts_path, Prompt))
    judge_stage(
        prompts,
        candidates_path,
        configs,
        out / "verdicts",
        progress=not args.no_progress,
        chunk_size=args.chunk_size or DEFAULT_CHUNK,
    )
    return 0
