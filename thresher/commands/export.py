"""Select the best judged candidates of a round and write its training data.

Reads a round's prompts, candidates and verdicts and writes sft.jsonl,
critique_sft.jsonl and dpo.jsonl (TRL conversational rows with provenance),
then prints what was kept and what was dropped, by reason.

  thresher export --run runs/demo                       # latest round, as the run's recipe says
  thresher export --run runs/demo --round 2 --sft --dpo best-vs-worst --policy gated
  thresher export --run runs/demo --set selection.args.k=2
  thresher export --recipe recipes/quickstart.yaml --critique
  thresher export --run runs/demo --format parquet       # + round_<k>/hf/: Parquet and a dataset card
  thresher export --run runs/demo --save-to-disk out/ds  # datasets.load_from_disk("out/ds")
  thresher export --run runs/demo --push-to-hub user/arith-sft   # or a folder: --push-to-hub ./hub-copy
  thresher export --run runs/demo --critique --critique-judge judge_72b   # two LLM judges: whose reasoning

Settings come from the recipe (the run's recipe.yaml, or --recipe) with
--set overrides; the flags below override them too. Naming any of --sft /
--critique / --dpo exports only those. An unchanged rerun is skipped; any
change of inputs or settings exports again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
    what.add_argument(
        "--critique-judge", metavar="NAME",
        help="judge whose reasoning becomes critique rows, when several could (export.args.critique.judge)",
    )
    what.add_argument(
        "--language", choices=["en", "zh", "auto"],
        help="language of critique rows thresher writes itself (auto: each prompt's); "
        "a listwise judge's rows keep the language it judged in",
    )
    what.add_argument("--student", action="append", default=[], metavar="MODEL", help="student model name (no recipe)")
    what.add_argument("--seed", type=int, help="seed for tie breaks, shuffles and random picks")
    what.add_argument("--force", action="store_true", help="export again even if the outputs are up to date")
    hf = parser.add_argument_group("Hugging Face forms (besides the round's JSONL files)")
    hf.add_argument(
        "--format", choices=["jsonl", "parquet"], default="jsonl",
        help="parquet: also write round_<k>/hf/ (Parquet per config + README.md dataset card) for load_dataset",
    )
    hf.add_argument("--save-to-disk", metavar="DIR", help="also write a DatasetDict (sft, dpo) for load_from_disk")
    hf.add_argument(
        "--push-to-hub", metavar="REPO",
        help="also upload the Parquet layout to a Hub dataset repo (user/name; a path like ./dir copies it there)",
    )
    hf.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import yaml

    from thresher.commands.common import locked, resolve, setup_logging
    from thresher.config import ExportConfig, SelectionConfig
    from thresher.errors import ConfigError, UserError
    from thresher.feedback.stage import export_stage
    from thresher.feedback.table import summary_table
    from thresher.records import Prompt, read_jsonl
    from thresher.store import RoundDir
    from thresher.typed import to_data

    setup_logging(args)
    where = resolve(args, default_round="latest")
    recipe = where.recipe
    rd = RoundDir(where.round)
    if not rd.candidates.exists():
        raise UserError(f"{rd.candidates}: no candidates in round {rd.index}")
    policy, policy_args = (recipe.selection.policy, to_data(recipe.selection.args)) if recipe else ("best", {})
    if args.policy and args.policy.replace("-", "_") != policy:
        policy, policy_args = args.policy, {}
    for item in args.arg:
        if "=" not in item:
            raise UserError(f"--arg {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        policy_args[key] = yaml.safe_load(value)
    if args.judge:
        policy_args["judge"] = args.judge
    try:
        selection = SelectionConfig(policy, policy_args)
        export = recipe.export if recipe is not None else ExportConfig()
        if args.sft or args.critique or args.dpo:
            export = replace(export, sft=args.sft, critique=args.critique, dpo=args.dpo)
        if args.language:
            export = replace(export, language=args.language)
        if args.critique_judge:
            critique = replace(export.args.critique, judge=args.critique_judge)
            export = replace(export, args=replace(export.args, critique=critique))
    except ConfigError as e:
        flag = f"--arg {e.key.removeprefix('args.')}" if e.key.startswith("args.") else None
        raise e.as_flag({e.key: flag} if flag else {"policy": "--policy"}) from None

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
        _write_hf(args, rd.path)
    return 0


def _write_hf(args: argparse.Namespace, round_dir: Path) -> None:
    """The Hugging Face forms of the round's exports that the flags ask for."""
    from thresher.feedback import hf_export

    if args.format == "parquet":
        counts = hf_export.write_parquet(round_dir, round_dir / "hf")
        print(f"parquet: {round_dir / 'hf'} ({', '.join(f'{k} {v} rows' for k, v in counts.items())})")
    if args.save_to_disk:
        counts = hf_export.save_to_disk(round_dir, args.save_to_disk)
        print(f"save_to_disk: {args.save_to_disk} ({', '.join(f'{k} {v} rows' for k, v in counts.items())})")
    if args.push_to_hub:
        where = hf_export.push_to_hub(round_dir, args.push_to_hub, private=args.private)
        print(f"pushed: {where}")
