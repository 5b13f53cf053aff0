"""Supervised fine-tuning on selected answers (and critiques) with TRL's SFTTrainer.

Rows are TRL conversational rows `{"messages": [...]}`; the loss covers the
assistant turns only (`assistant_only_loss`), so the student learns to answer,
not to reproduce questions. TRL swaps in a training chat template with
`{% generation %}` markers for known model families whose template lacks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thresher.config import TrainConfig
from thresher.train.common import (
    is_finished,
    load_policy,
    load_tokenizer,
    read_rows,
    train_and_save,
    trainer_config,
)


def _has_answer(row: dict[str, Any]) -> str | None:
    if not any(m["role"] == "assistant" for m in row["messages"]):
        return "messages: no assistant turn to train on"
    return None


def train_sft(
    base_model: str,
    data_files: Sequence[str | Path],
    out_dir: str | Path,
    cfg: TrainConfig,
    seed: int = 0,
    report_to: str = "none",
) -> Path:
    """Fine-tune `base_model` on the SFT rows of `data_files`; returns `out_dir`, the saved model.

    Skips (returning `out_dir`) when `out_dir` already holds a finished model.
    `out_dir` gets the weights (or the adapter), the tokenizer,
    `train_log.json` (TRL's log history: the loss curve) and `.complete`.
    """
    out_dir = Path(out_dir)
    if is_finished(out_dir):
        return out_dir
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    rows = read_rows(data_files, ["messages"], check=_has_answer)
    set_seed(seed)
    tokenizer = load_tokenizer(base_model)
    model, peft_config = load_policy(base_model, cfg)
    args = trainer_config(SFTConfig, cfg, out_dir, seed, report_to, assistant_only_loss=True)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    summary = {"method": "sft", "base_model": str(base_model), "rows": len(rows), "lora": cfg.lora}
    return train_and_save(trainer, out_dir, cfg.merge_lora, summary)
