"""Select the best judged candidates of a round and write its training data.

Reads a round's prompts, candidates and verdicts and writes sft.jsonl,
critique_sft.jsonl and dpo.jsonl (TRL conversational rows with provenance),
then prints what was kept and what was dropped, by reason.

  thresher export --run runs/demo                       # latest round, as the run's recipe says
  thresher export --run runs/demo --round 2 --sft --dpo best-vs-worst --policy gated
  thresher export --run runs/demo --set selection.args.k=2
  thresher export --recipe recipes/quickstart.yaml --critique

Settings come from the recipe (the run's recipe.yaml, or --recipe) with
--set overrides; the flags below override them too. Naming any of --sft /
--critique / --dpo exports only those. An unchanged rerun is skipped; any
change of inputs or settings exports again.
"""

from __future__ import annotations

import argparse

HELP = "select judged candidates and export SFT / critique-SFT / DPO data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from thresher.commands.common import add_output_arguments, add_recipe_arguments, add_run_arguments, rule_name

    add_run_arguments(parser, "round to export (default: the latest with candidates)", out_alias=False)
    add_recipe_arguments(parser, "selection and export settings")
    what = parser.add_argument_group("what to export (overrides the recipe)")
    what.add_argument("--sft", action="store_true", help="export sft.jsonl")
    what.add_argument("--critique", action="store_true", help="export critique_sft.jsonl")
    what.add_argument(
        "--dpo", metavar="RULE", type=rule_name,
        help="export dpo.jsonl: best-vs-worst, best-vs-random, margin, on-policy (- or _ alike)",
    )
    what.add_argument("--policy", metavar="NAME", type=rule_name,
                      help="selection policy: best, threshold, gated, vote, top-k, random")
    what.add_argument("--judge", metavar="NAME", help="judge the policy selects by (selection.args.judge)")
    what.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                      help="deprecated: use --set selection.args.KEY=VALUE")
    what.add_argument("--language", choices=["en", "zh"], help="critique template language")
    what.add_argument("--student", action="append", default=[], metavar="MODEL", help="student model name (no recipe)")
    what.add_argument("--seed", type=int, help="seed for tie breaks, shuffles and random picks")
    what.add_argument("--force", action="store_true", help="export again even if the outputs are up to date")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import yaml

    from thresher.commands.common import locked, resolve, setup_logging
    from thresher.config import ExportConfig, SelectionConfig
    from thresher.errors import UserError
    from thresher.feedback.stage import export_stage
    from thresher.feedback.table import summary_table
    from thresher.records import Prompt, read_jsonl
    from thresher.store import RoundDir

    setup_logging(args)
    where = resolve(args, default_round="latest")
    recipe = where.recipe
    rd = RoundDir(where.round)
    if not rd.candidates.exists():
        raise UserError(f"{rd.candidates}: no candidates in round {rd.index}")
    selection = replace(recipe.selection, args=dict(recipe.selection.args)) if recipe else SelectionConfig()
    if args.policy and args.policy != selection.policy:
        selection = SelectionConfig(args.policy, {})
    for item in args.arg:
        if "=" not in item:
            raise UserError(f"--arg {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        selection.args[key] = yaml.safe_load(value)
    if args.judge:
        selection.args["judge"] = args.judge
    export = replace(recipe.export, args=dict(recipe.export.args)) if recipe is not None else ExportConfig()
    if args.sft or args.critique or args.dpo:
        export.sft, export.critique, export.dpo = args.sft, args.critique, args.dpo
    if export.dpo is not None:
        export.dpo = export.dpo.replace("-", "_")
    if args.language:
        export.language = args.language
    students = set(args.student) | ({m.name for m in recipe.students()} if recipe else set())
    seed = args.seed if args.seed is not None else (recipe.seed if recipe else 0)
    prompts = list(read_jsonl(rd.prompts, Prompt))
    with locked(where):
        summary = export_stage(
            prompts, rd.candidates, rd.verdicts if rd.verdicts.exists() else None, rd.path, selection, export,
            students, seed=seed, force=args.force, progress=not args.quiet,
        )
    if not args.quiet:
        print(summary_table(summary, title=rd.path.name))
    return 0
