"""Evaluate a model on prompts: per-task pass@1 (greedy), pass@k and maj@k with the verifiers.

Prompts with a reference are checked by the math verifier, prompts with
tests by the code verifier. In a run (`--run RUN --round K`), the model is
the round's trained model, the prompts are the recipe's held-out prompts,
and each judge of the round is measured too (selection accuracy and lift
against the oracle). Writes RUN/round_K/eval.json (and the generations) and
prints a per-task table. An unchanged rerun is skipped; another model,
other prompts or settings evaluate again (never the old model's numbers
under a new name).

Examples:
    thresher eval --run runs/x --round 1
    thresher eval --run runs/x --round 1 --model ./other-checkpoint --set eval.k=8
    thresher eval --model ./ckpt --prompts eval.jsonl --run runs/x --round 1 --k 4
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "per-task pass@1 / pass@k / maj@k of a model, and judge selection lift"


FLAGS = {"k": "--k", "temperature": "--temperature", "max_tokens": "--max-tokens"}
"""EvalConfig fields -> the flags that set them, so a range error names the flag the user typed."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from thresher.commands.common import add_output_arguments, add_recipe_arguments, add_run_arguments

    what = parser.add_argument_group("what to evaluate")
    what.add_argument("--model", help="model directory or hub id (default: the round's trained model)")
    what.add_argument("--prompts", help="JSONL of Prompt records with references or tests (default: the recipe's eval)")
    what.add_argument("--candidates", help="a round's candidates for judge lift (default: the round's own)")
    what.add_argument("--verdicts", help="a round's verdicts for judge lift (default: the round's own)")
    what.add_argument("--round-prompts", help="the prompts those candidates answer (default: the round's prompts.jsonl)")
    add_run_arguments(parser, "round to evaluate (default: the latest with candidates)")
    add_recipe_arguments(parser, "the eval settings (eval:) and held-out prompts")
    how = parser.add_argument_group("how to evaluate (override the recipe's eval: block)")
    how.add_argument("--k", type=int, help="samples per prompt for pass@k and maj@k; 1: greedy only (default 4)")
    how.add_argument("--temperature", type=float, help="sampling temperature of the k samples (default 1.0)")
    how.add_argument("--max-tokens", type=int, help="longest answer (default 512)")
    how.add_argument("--backend", choices=["hf", "vllm"], help="sampler (default: vllm on a GPU, else hf)")
    how.add_argument("--seed", type=int, help="seed (default 0, or the recipe's)")
    add_output_arguments(parser)


def _config(args: argparse.Namespace, recipe: Any) -> Any:
    from dataclasses import replace

    from thresher.config import EvalConfig
    from thresher.errors import ConfigError, UserError

    base = recipe.eval if recipe is not None else EvalConfig()
    changes = {k: v for k, v in {"k": args.k, "temperature": args.temperature, "max_tokens": args.max_tokens}.items()
               if v is not None}
    cfg_args = replace(base.args, backend=args.backend) if args.backend else base.args
    try:
        return replace(base, args=cfg_args, **changes)
    except ConfigError as e:
        flag = FLAGS.get(e.key.split(".")[-1])
        raise UserError(f"{flag}: {e.reason}" if flag else str(e)) from None


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from thresher.commands.common import locked, resolve, setup_logging
    from thresher.errors import UserError
    from thresher.eval.stage import eval_stage
    from thresher.records import Prompt
    from thresher.store import RoundDir, read_records

    setup_logging(args)
    if (args.candidates is None) != (args.verdicts is None):
        raise UserError("--candidates and --verdicts go together (judge lift needs both)")
    where = resolve(args, default_round="latest" if args.model is None else 1)
    recipe = where.recipe
    rd = RoundDir(where.round)
    cfg = _config(args, recipe)
    if args.prompts:
        prompts = list(read_records(args.prompts, Prompt))
    elif recipe is not None and recipe.prompts.eval is not None:
        from thresher.prompts import load_prompts

        prompts = load_prompts(recipe.prompts.eval, "prompts.eval")
    else:
        raise UserError("no prompts to evaluate on: give --prompts FILE.jsonl (or a run whose recipe has prompts.eval)")
    model = args.model or (str(rd.model) if rd.model.is_dir() else None)
    if model is None:
        raise UserError(f"{rd.model}: no trained model in this round; give --model PATH_OR_ID")
    if args.candidates:
        candidates, verdicts = Path(args.candidates), Path(args.verdicts)
    elif rd.candidates.exists() and rd.verdicts.exists():
        candidates, verdicts = rd.candidates, rd.verdicts
    else:
        candidates = verdicts = None
    round_prompts = list(read_records(args.round_prompts, Prompt)) if args.round_prompts else None
    seed = args.seed if args.seed is not None else (recipe.seed if recipe is not None else 0)
    with locked(where):
        result = eval_stage(
            model, prompts, cfg, rd.path, round_candidates=candidates, round_verdicts=verdicts,
            round_prompts=round_prompts, seed=seed, progress=not args.quiet, label=f"{rd.path.name} · eval",
        )
    console = Console()
    from thresher.eval.bootstrap import ci_key, is_ci_key

    def cell(ms: dict, m: str) -> str:
        if not isinstance(ms.get(m), int | float):
            return "-"
        ci = ms.get(ci_key(m))
        return f"{ms[m]:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")

    metrics = sorted({m for ms in result["tasks"].values() for m in ms if m != "prompts" and not is_ci_key(m)})
    table = Table(title=f"{model}: per task (95% intervals)")
    table.add_column("task")
    for m in metrics:
        table.add_column(m, justify="right")
    table.add_column("prompts", justify="right")
    for task, ms in sorted(result["tasks"].items()):
        table.add_row(task, *(cell(ms, m) for m in metrics), str(ms.get("prompts", "-")))
    console.print(table)
    for judge, per_task in sorted(result["judges"].items()):
        for task, m in sorted(per_task.items()):
            if isinstance(m, dict) and "selection_accuracy" in m:
                ci = m.get(ci_key("selection_lift"))
                interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
                console.print(f"judge {judge} on {task}: selection accuracy {m['selection_accuracy']:.3f}, "
                              f"lift {m['selection_lift']:+.3f}{interval} over random ({m['random_accuracy']:.3f}), "
                              f"{int(m.get('prompts', 0))} prompts")
    console.print(f"wrote {rd.eval}")
    return 0
