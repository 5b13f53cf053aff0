"""Select the best judged candidates of a round and write its training data.

Reads a round's prompts, candidates and verdicts and writes sft.jsonl,
critique_sft.jsonl and dpo.jsonl (TRL conversational rows with provenance),
then prints what was kept and what was dropped, by reason.

  thresher export --run runs/demo                       # latest round, as the run's recipe says
  thresher export --run runs/demo --round 2 --sft --dpo best_vs_worst --policy gated
  thresher export --recipe recipes/quickstart.yaml --critique

Settings come from the recipe (the run's recipe.yaml, or --recipe); flags
override them. Naming any of --sft / --critique / --dpo exports only those.
"""

from __future__ import annotations

import argparse

HELP = "select judged candidates and export SFT / critique-SFT / DPO data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="RUN_DIR", help="run directory (default: the recipe's out_dir/name)")
    parser.add_argument("--recipe", metavar="RECIPE", help="recipe YAML (default: RUN_DIR/recipe.yaml if present)")
    parser.add_argument("--round", type=int, metavar="K", help="round to export (default: the latest with candidates)")
    parser.add_argument("--sft", action="store_true", help="export sft.jsonl")
    parser.add_argument("--critique", action="store_true", help="export critique_sft.jsonl")
    parser.add_argument("--dpo", metavar="RULE", help="export dpo.jsonl: best_vs_worst, best_vs_random, margin, on_policy")
    parser.add_argument("--policy", metavar="NAME", help="selection policy: best, threshold, gated, vote, top_k, random")
    parser.add_argument("--judge", metavar="NAME", help="judge the policy selects by (selection.args.judge)")
    parser.add_argument(
        "--arg", action="append", default=[], metavar="KEY=VALUE", help="selection policy argument (repeatable)"
    )
    parser.add_argument("--language", choices=["en", "zh"], help="critique template language")
    parser.add_argument("--student", action="append", default=[], metavar="MODEL", help="student model name (no recipe)")
    parser.add_argument("--seed", type=int, help="seed for tie breaks, shuffles and random picks")
    parser.add_argument("--force", action="store_true", help="export again even if the outputs are complete")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from thresher.config import ExportConfig, SelectionConfig, load_recipe
    from thresher.errors import UserError
    from thresher.feedback.stage import export_stage
    from thresher.feedback.table import summary_table
    from thresher.records import Prompt, read_jsonl
    from thresher.store import RunDir

    recipe = None
    if args.recipe:
        recipe = load_recipe(args.recipe, check_files=False)
    elif args.run and (Path(args.run) / "recipe.yaml").is_file():
        recipe = load_recipe(Path(args.run) / "recipe.yaml", check_files=False)
    if args.run is None and recipe is None:
        raise UserError("give --run RUN_DIR or --recipe RECIPE")
    run_dir = RunDir(args.run if args.run else recipe.run_dir)  # type: ignore[union-attr]
    if not run_dir.path.is_dir():
        raise UserError(f"{run_dir.path}: no such run directory")
    if args.round is not None:
        rd = run_dir.round(args.round)
        if not rd.candidates.exists():
            raise UserError(f"{rd.candidates}: no candidates in round {args.round}")
    else:
        rounds = [r for r in run_dir.rounds() if r.candidates.exists()]
        if not rounds:
            raise UserError(f"{run_dir.path}: no round with candidates yet (run `thresher sample` first)")
        rd = rounds[-1]

    selection = SelectionConfig(recipe.selection.policy, dict(recipe.selection.args)) if recipe else SelectionConfig()
    if args.policy and args.policy != selection.policy:
        selection = SelectionConfig(args.policy, {})
    for item in args.arg:
        if "=" not in item:
            raise UserError(f"--arg {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        selection.args[key] = yaml.safe_load(value)
    if args.judge:
        selection.args["judge"] = args.judge

    export = ExportConfig()
    if recipe is not None:
        e = recipe.export
        export = ExportConfig(sft=e.sft, critique=e.critique, dpo=e.dpo, language=e.language, args=dict(e.args))
    if args.sft or args.critique or args.dpo:
        export.sft, export.critique, export.dpo = args.sft, args.critique, args.dpo
    if args.language:
        export.language = args.language

    students = set(args.student) | ({m.name for m in recipe.students()} if recipe else set())
    seed = args.seed if args.seed is not None else (recipe.seed if recipe else 0)
    prompts = list(read_jsonl(rd.prompts, Prompt))
    summary = export_stage(
        prompts, rd.candidates, rd.verdicts, rd.path, selection, export, students, seed=seed, force=args.force
    )
    print(summary_table(summary, title=rd.path.name))
    return 0
