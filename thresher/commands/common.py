"""The vocabulary every subcommand shares: `--run`, `--round`, `--recipe`, `--set`, `--quiet`, `--verbose`.

A user who learned `thresher sample --run runs/x --round 2` can guess every
other command's flags. One place defines them, resolves them into the run
and round directories (with `--out ROUND_DIR` kept as a deprecated alias
where it existed), reads the run's recipe with `--set` overrides, and takes
the run's lock, so two processes never write one run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thresher.errors import UserError


def add_run_arguments(parser: argparse.ArgumentParser, round_help: str, out_alias: bool = True) -> None:
    """`--run RUN` and `--round K` (and the deprecated `--out ROUND_DIR` where a command had it)."""
    g = parser.add_argument_group("where (a run directory holds round_0, round_1, ...)")
    g.add_argument("--run", metavar="RUN", help="the run directory (default: the recipe's <out_dir>/<name>)")
    g.add_argument("--round", type=_round_number, metavar="K", help=round_help)
    if out_alias:
        g.add_argument("--out", metavar="ROUND_DIR", help="deprecated: a round directory; use --run RUN --round K")


def add_recipe_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """`--recipe` and `--set KEY=VALUE` (the recipe defaults to RUN/recipe.yaml when the run has one)."""
    g = parser.add_argument_group("recipe")
    g.add_argument("--recipe", metavar="RECIPE.yaml", help=f"take {what} from a recipe (default: RUN/recipe.yaml)")
    g.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value (repeatable), e.g. --set selection.args.k=2",
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """`--quiet` (no progress bars or summary lines) and `--verbose` (library logs too)."""
    g = parser.add_argument_group("output")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars, summaries only as exit codes")
    g.add_argument("-v", "--verbose", action="store_true", help="also show the libraries' informational logs")
    g.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)


def _round_number(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a round number, got {text!r}") from None
    if k < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {k}")
    return k


def rule_name(text: str) -> str:
    """`best-vs-worst` and `best_vs_worst` name the same rule; so do `top-k` and `top_k`."""
    return text.strip().replace("-", "_")


def setup_logging(args: argparse.Namespace) -> None:
    """`--verbose` shows INFO logs of thresher and the libraries; the default shows warnings only."""
    level = logging.INFO if getattr(args, "verbose", False) else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if getattr(args, "quiet", False):
        import os

        os.environ.setdefault("TQDM_DISABLE", "1")


@dataclass(slots=True)
class Where:
    """The run and round a command works on, and the recipe that made the run (if any)."""

    run: Path
    round: Path
    recipe: Any


def load_run_recipe(args: argparse.Namespace, run: Path | None) -> Any:
    """`--recipe` with `--set`, else the run's own recipe.yaml with `--set`; None when neither exists."""
    from thresher.config import load_recipe

    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "recipe", None):
        return load_recipe(args.recipe, overrides, check_files=False)
    if run is not None and (run / "recipe.yaml").is_file():
        return load_recipe(run / "recipe.yaml", overrides, check_files=False)
    if overrides:
        raise UserError("--set needs a recipe: give --recipe RECIPE.yaml or a --run that has recipe.yaml")
    return None


def resolve(args: argparse.Namespace, default_round: str | int, need_recipe: bool = False) -> Where:
    """The run directory, the round directory and the recipe, from `--run` / `--round` / `--out` / `--recipe`.

    `default_round` is a number, or `latest` (the latest round that has
    candidates). `--out ROUND_DIR` (deprecated) names the round directory
    itself; its parent is the run.
    """
    out = getattr(args, "out", None)
    if out is not None and args.run is not None:
        raise UserError("--out and --run both name the output; use --run RUN --round K (--out is deprecated)")
    if out is not None:
        if args.round is not None:
            raise UserError("--out names a round directory already; use --run RUN --round K instead")
        print(f"note: --out is deprecated; use --run {Path(out).parent} --round K", file=sys.stderr)
        round_dir = Path(out)
        recipe = load_run_recipe(args, round_dir.parent if (round_dir.parent / "recipe.yaml").is_file() else None)
        return Where(round_dir.parent, round_dir, recipe)
    run = Path(args.run) if args.run else None
    recipe = load_run_recipe(args, run)
    if run is None:
        if recipe is None:
            raise UserError("give --run RUN (a run directory) or --recipe RECIPE.yaml")
        run = Path(recipe.run_dir)
    if run.exists() and not run.is_dir():
        raise UserError(f"--run {run}: is a file, not a run directory")
    if need_recipe and recipe is None:
        raise UserError(f"{run}: no recipe.yaml in the run; give --recipe RECIPE.yaml")
    k = args.round
    if k is None:
        k = _latest_round(run) if default_round == "latest" else int(default_round)
    return Where(run, run / f"round_{k}", recipe)


def _latest_round(run: Path) -> int:
    from thresher.store import RunDir

    rounds = [r for r in RunDir(run).rounds() if r.candidates.exists()]
    if not rounds:
        if not run.is_dir():
            raise UserError(f"--run {run}: no such run directory")
        raise UserError(f"{run}: no round with candidates yet (run `thresher sample --run {run}` first)")
    return rounds[-1].index


def locked(where: Where) -> AbstractContextManager[Path]:
    """The run's lock (one writer at a time)."""
    from thresher.lock import run_lock

    return run_lock(where.run)


def executor_for(args: argparse.Namespace, recipe: Any) -> Any:
    """`--executor` if given, else the recipe's `executor:` block, else local."""
    from dataclasses import replace

    from thresher.executors import ExecutorConfig, build_executor

    cfg = recipe.executor if recipe is not None else ExecutorConfig()
    if getattr(args, "executor", None) and args.executor != cfg.type:
        cfg = replace(cfg, type=args.executor)
    return build_executor(cfg)
