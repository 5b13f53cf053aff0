"""Train a model on exported data: SFT on message rows, DPO or a reward model on preference rows.

SFT rows are TRL conversational rows `{"messages": [...]}` (sft.jsonl,
critique_sft.jsonl); DPO and reward rows are `{"prompt", "chosen",
"rejected"}` (dpo.jsonl). Provenance columns are ignored.

Two ways to name what to train:
  --run RUN [--round K]     the round's exports, as the run's recipe says (train.data,
                            train.method; --set and the flags below override it); the base
                            model is the previous round's model (or the recipe's student) and
                            the model goes to RUN/round_K/model
  --data F.. --model M --out DIR
                            any export files and base model; the model goes to DIR
Either way the model, its tokenizer, `train_log.json` (the loss curve) and
`.complete` are saved; an unchanged rerun is skipped, a changed one (other
data, base model or settings) trains again and says why, and a killed one
resumes from the last checkpoint.

Several GPUs: `--launcher accelerate --num-processes 8 [--accelerate-config fsdp.yaml]` (or the
recipe's `train: {launcher: accelerate, ...}`) runs the trainer under `accelerate launch` and
waits for it; DDP by default, FSDP or DeepSpeed ZeRO as the config file says.

Examples:
    thresher train --run runs/x --round 1
    thresher train --data runs/x/round_1/sft.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --out runs/x/round_1/model
    thresher train --data dpo.jsonl --model ./student --out ./dpo_model --method dpo --lora
    thresher train --data dpo.jsonl --model ./student --out ./rm --method reward
    thresher train --run runs/x --round 1 --launcher accelerate --num-processes 8 --accelerate-config fsdp.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from thresher.errors import UserError

HELP = "train on exported data with TRL (SFT, DPO or a reward model; full or LoRA)"


FLAGS = {"learning_rate": "--lr", "epochs": "--epochs", "batch_size": "--batch-size", "max_length": "--max-length",
         "lora_r": "--lora-r", "method": "--method", "num_processes": "--num-processes",
         "config_file": "--accelerate-config", "launcher": "--launcher"}
"""TrainConfig fields -> the flags that set them, so a range error names the flag the user typed."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from thresher.commands.common import add_output_arguments, add_recipe_arguments, add_run_arguments

    what = parser.add_argument_group("what to train (without --run)")
    what.add_argument("--data", nargs="+", metavar="FILE", help="JSONL export(s) to train on")
    what.add_argument("--model", help="base model: local directory or hub id (with --run: default the round's base)")
    what.add_argument("--out", help="directory to save the trained model in")
    add_run_arguments(parser, "round whose exports to train on (default: the latest with candidates)", out_alias=False)
    add_recipe_arguments(parser, "the train settings (train:)")
    how = parser.add_argument_group("how to train (override the recipe's train: block)")
    how.add_argument("--method", choices=["sft", "dpo", "reward"], help="trainer (default: sft, or the recipe's)")
    how.add_argument("--lora", action="store_true", default=None, help="train a LoRA adapter instead of all weights")
    how.add_argument("--no-merge", action="store_true", help="with --lora, save the adapter instead of merged weights")
    how.add_argument("--epochs", type=float, help="passes over the data (default 1)")
    how.add_argument("--lr", type=float, help="learning rate (default 1e-4)")
    how.add_argument("--batch-size", type=int, help="per-device batch size (default 8)")
    how.add_argument("--max-length", type=int, help="longest sequence in tokens (default 1024)")
    how.add_argument("--ref-model", help="DPO reference model (default: the base model)")
    how.add_argument("--seed", type=int, help="seed (default 0, or the recipe's)")
    how.add_argument("--report-to", default="none", help="trainer logging integration: none, wandb, tensorboard")
    many = parser.add_argument_group("several GPUs (override the recipe's train.launcher)")
    many.add_argument("--launcher", choices=["inline", "accelerate"],
                      help="inline: this process (default); accelerate: `accelerate launch` and wait for it")
    many.add_argument("--num-processes", type=int, metavar="N", help="with accelerate: training processes (GPUs)")
    many.add_argument("--accelerate-config", metavar="FILE.yaml",
                      help="with accelerate: an `accelerate config` file (DDP, FSDP, DeepSpeed ZeRO)")
    add_output_arguments(parser)


def _config(args: argparse.Namespace, base: Any) -> Any:
    """The recipe's (or the default) TrainConfig with the flags applied; range errors name the flag."""
    from dataclasses import replace

    from thresher.config import TrainConfig
    from thresher.errors import ConfigError, UserError

    changes = {k: v for k, v in {
        "epochs": args.epochs, "learning_rate": args.lr, "batch_size": args.batch_size,
        "max_length": args.max_length, "lora": args.lora, "num_processes": args.num_processes,
        "config_file": args.accelerate_config,
    }.items() if v is not None}
    if args.launcher is not None:
        changes["launcher"] = args.launcher
        if args.launcher == "inline":  # the recipe's launch settings no longer apply
            changes.update(num_processes=None, config_file=None, launch_args=[])
    elif args.num_processes is not None or args.accelerate_config is not None:
        changes["launcher"] = "accelerate"  # asking for processes or a config means launching them
    if args.no_merge:
        changes["merge_lora"] = False
    if args.method in ("sft", "dpo"):
        changes["method"] = args.method
    try:
        return replace(base or TrainConfig(method=changes.get("method", "sft")), **changes)
    except ConfigError as e:
        flag = FLAGS.get(e.key.split(".")[-1])
        raise UserError(f"{flag}: {e.reason}" if flag else str(e)) from None


def run(args: argparse.Namespace) -> int:
    import json

    from thresher.commands.common import locked, resolve, setup_logging
    from thresher.errors import UserError
    from thresher.runner import run_stage
    from thresher.train.stage import TrainStage, stage_data_files

    setup_logging(args)
    standalone = args.data is not None or args.out is not None
    if standalone:
        if args.run or args.round is not None:
            raise UserError("--data/--out and --run/--round name different things to train; use one way")
        if not (args.data and args.model and args.out):
            raise UserError("without --run, give --data FILE.. --model BASE --out DIR")
        cfg = _config(args, None)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out}: is a file, not a directory")
        if out.is_dir() and any(out.iterdir()) and not (out / ".stages" / "train.json").is_file():
            raise UserError(f"--out {out}: holds files this command did not train; give an empty or new directory")
        stage = TrainStage(args.model, [Path(f) for f in args.data], out, out / ".stages" / "train.json", cfg,
                           args.seed or 0, args.report_to, args.method or "sft", args.ref_model)
        summary = run_stage(stage, "train", quiet=args.quiet).summary
    else:
        where = resolve(args, default_round="latest", need_recipe=True)
        recipe = where.recipe
        cfg = _config(args, recipe.train)
        from thresher.store import RoundDir

        rd = RoundDir(where.round)
        base = args.model or _base_model(where.run, rd.index, recipe)
        method = args.method or cfg.method
        if method == "none":
            raise UserError("train.method is none in this run's recipe; give --method sft|dpo|reward")
        seed = args.seed if args.seed is not None else recipe.seed
        with locked(where):
            stage = TrainStage(base, stage_data_files(rd.path, cfg, check_exist=False), rd.model,
                               rd.marker("train"), cfg, seed, args.report_to, method, args.ref_model,
                               data_marker=rd.marker("export"))
            summary = run_stage(stage, f"{rd.path.name} · train", quiet=args.quiet).summary
    print(json.dumps(summary))
    return 0


def _base_model(run: Path, k: int, recipe: Any) -> str:
    """The model round k trains from: round k-1's model, or the recipe's student for round 1."""
    from thresher.models import resolve_model_path
    from thresher.rounds import trained_student
    from thresher.store import RunDir

    for j in range(k - 1, 0, -1):
        prev = RunDir(run).round(j).model
        if prev.is_dir():
            return str(prev)
    student = trained_student(recipe)
    if student is None:
        raise UserError(f"{run}: the recipe has no student to train; give --model BASE")
    return resolve_model_path(student.path)
