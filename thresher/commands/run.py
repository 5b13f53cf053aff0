"""Run a recipe: round after round of sample -> judge -> select -> export -> train -> eval.

Every stage writes its outputs into the run directory (`<out_dir>/<name>/`);
running the same command again after a crash or a kill resumes where it
stopped. `--dry-run` checks the whole recipe (every key, type, range and
path, every `args:` block of every judge, policy, backend, prompt source,
export, train and eval option) and its prompt files, loads no model, and
prints the resolved form with every default filled in.

Example:
    thresher run recipes/quickstart.yaml
    thresher run recipes/quickstart.yaml --set rounds=1 --set train.epochs=2
"""

from __future__ import annotations

import argparse
import sys

HELP = "run a YAML recipe for one or more rounds (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="path to a YAML recipe (see recipes/)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set rounds=2 --set models[0].n=8",
    )
    parser.add_argument("--dry-run", action="store_true", help="check the recipe and print it resolved; run nothing")
    parser.add_argument("--executor", choices=["local", "ray"], help="where chunks run (default: the recipe's executor)")
    from thresher.commands.common import add_output_arguments

    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import yaml

    from thresher.commands.common import setup_logging
    from thresher.config import load_recipe
    from thresher.typed import to_data

    setup_logging(args)
    overrides = list(args.overrides) + ([f"executor.type={args.executor}"] if args.executor else [])
    recipe = load_recipe(args.recipe, overrides)
    if args.dry_run:
        yaml.safe_dump(to_data(recipe), sys.stdout, sort_keys=False, allow_unicode=True)
        _check_prompts(recipe)
        return 0
    from thresher.rounds import run_recipe

    run_recipe(recipe, progress=not args.quiet)
    return 0


def _check_prompts(recipe) -> None:
    """Load every prompt source once, so a malformed line fails now with its file:line."""
    from collections import Counter

    from thresher.prompts import load_prompts
    from thresher.prompts.synth_sources import SYNTH_SOURCES

    for split in ("train", "eval"):
        src = getattr(recipe.prompts, split)
        if src is None:
            continue
        if src.source in SYNTH_SOURCES:  # made by a model when the run starts; its inputs were checked above
            print(f"# prompts.{split}: made by {src.source} when the run starts")
            continue
        prompts = load_prompts(src, f"prompts.{split}")
        tasks = Counter(p.task for p in prompts)
        print(f"# prompts.{split}: {len(prompts)} prompts; " + ", ".join(f"{t}={n}" for t, n in sorted(tasks.items())))
