"""Evaluate a model on prompts: per-task pass@1 (greedy), pass@k and maj@k with the verifiers.

Prompts with a reference are checked by the math verifier, prompts with
tests by the code verifier. With --candidates and --verdicts (a round's
files), each judge's selection accuracy and lift against the oracle are
measured too; the prompts those candidates answer come from --round-prompts.
Writes OUT/eval.json (and the generations) and prints a per-task table; an
OUT that already holds eval.json is reported, not evaluated again.

Example:
    thresher eval --model runs/x/round_1/model --prompts eval.jsonl --out runs/x/round_1 --k 4
"""

from __future__ import annotations

import argparse

HELP = "per-task pass@1 / pass@k / maj@k of a model, and judge selection lift"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--prompts", required=True, help="JSONL of Prompt records (with references or tests)")
    parser.add_argument("--out", required=True, help="directory for eval.json (a round directory)")
    parser.add_argument("--k", type=int, default=4, help="samples per prompt for pass@k and maj@k (1: greedy only)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--backend", choices=["hf", "vllm"], help="sampler (default: vllm on a GPU, else hf)")
    parser.add_argument("--candidates", help="a round's candidates (file or shard directory), for judge lift")
    parser.add_argument("--verdicts", help="a round's verdicts (file or shard directory), for judge lift")
    parser.add_argument("--round-prompts", help="the prompts those candidates answer (default OUT/prompts.jsonl)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from thresher.config import EvalConfig
    from thresher.errors import UserError
    from thresher.eval.stage import eval_stage
    from thresher.records import Prompt
    from thresher.store import read_records

    if (args.candidates is None) != (args.verdicts is None):
        raise UserError("--candidates and --verdicts go together (judge lift needs both)")
    prompts = list(read_records(args.prompts, Prompt))
    round_prompts = list(read_records(args.round_prompts, Prompt)) if args.round_prompts else None
    cfg = EvalConfig(k=args.k, temperature=args.temperature, max_tokens=args.max_tokens,
                     args={"backend": args.backend} if args.backend else {})
    result = eval_stage(
        args.model, prompts, cfg, Path(args.out),
        round_candidates=Path(args.candidates) if args.candidates else None,
        round_verdicts=Path(args.verdicts) if args.verdicts else None,
        round_prompts=round_prompts, seed=args.seed,
    )
    console = Console()
    metrics = sorted({m for ms in result["tasks"].values() for m in ms})
    table = Table(title=f"{args.model}: per task")
    table.add_column("task")
    for m in metrics:
        table.add_column(m, justify="right")
    for task, ms in sorted(result["tasks"].items()):
        table.add_row(task, *(f"{ms[m]:.3f}" if m in ms else "-" for m in metrics))
    console.print(table)
    for judge, per_task in sorted(result["judges"].items()):
        for task, m in sorted(per_task.items()):
            console.print(f"judge {judge} on {task}: selection accuracy {m['selection_accuracy']:.3f}, "
                          f"lift {m['selection_lift']:+.3f} over random ({m['random_accuracy']:.3f})")
    console.print(f"wrote {Path(args.out) / 'eval.json'}")
    return 0
