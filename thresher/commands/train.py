"""Train a model on exported data: SFT on message rows, DPO or a reward model on preference rows.

SFT rows are TRL conversational rows `{"messages": [...]}` (sft.jsonl,
critique_sft.jsonl); DPO and reward rows are `{"prompt", "chosen",
"rejected"}` (dpo.jsonl). Provenance columns are ignored. The model, its
tokenizer, `train_log.json` (the loss curve) and `.complete` go to --out; an
--out that already holds a finished model is left as it is.

Multi-GPU: start it through accelerate, e.g.
    accelerate launch -m thresher.cli train --data sft.jsonl --model M --out OUT

Examples:
    thresher train --data runs/x/round_1/sft.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --out runs/x/round_1/model
    thresher train --data dpo.jsonl --model ./student --out ./dpo_model --method dpo --lora
    thresher train --data dpo.jsonl --model ./student --out ./rm --method reward
"""

from __future__ import annotations

import argparse

HELP = "train on exported data with TRL (SFT, DPO or a reward model; full or LoRA)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="JSONL export(s) to train on")
    parser.add_argument("--model", required=True, help="base model: local directory or hub id")
    parser.add_argument("--out", required=True, help="directory to save the trained model in")
    parser.add_argument("--method", choices=["sft", "dpo", "reward"], default="sft")
    parser.add_argument("--lora", action="store_true", help="train a LoRA adapter instead of all weights")
    parser.add_argument("--no-merge", action="store_true", help="with --lora, save the adapter instead of merged weights")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate")
    parser.add_argument("--batch-size", type=int, default=8, help="per-device batch size")
    parser.add_argument("--max-length", type=int, default=1024, help="longest sequence in tokens")
    parser.add_argument("--ref-model", help="DPO reference model (default: the base model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report-to", default="none", help="trainer logging integration: none, wandb, tensorboard")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from thresher.config import TrainConfig
    from thresher.train.common import is_finished, training_summary

    cfg = TrainConfig(
        method="dpo" if args.method == "dpo" else "sft",
        lora=args.lora,
        merge_lora=not args.no_merge,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_length=args.max_length,
    )
    out = Path(args.out)
    if is_finished(out):
        print(f"{out}: already trained (remove it to train again)")
    elif args.method == "sft":
        from thresher.train.sft import train_sft

        train_sft(args.model, args.data, out, cfg, seed=args.seed, report_to=args.report_to)
    elif args.method == "dpo":
        from thresher.train.dpo import train_dpo

        train_dpo(args.model, args.data, out, cfg, seed=args.seed, ref_model=args.ref_model, report_to=args.report_to)
    else:
        from thresher.train.reward import train_reward_model

        train_reward_model(args.model, args.data, out, cfg, seed=args.seed, report_to=args.report_to)
    print(json.dumps(training_summary(out)))
    return 0
