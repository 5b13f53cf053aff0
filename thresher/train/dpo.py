"""Direct preference optimisation on exported pairs with TRL's DPOTrainer.

Rows are TRL conversational preference rows `{"prompt", "chosen",
"rejected"}`; the provenance the DPO export adds (scores, margin, rule,
models) is dropped before training. The reference model is the base unless
another is named; with LoRA, TRL uses the base with the adapter disabled,
which for an adapter carried over from an earlier round (`merge_lora: false`)
is the original base, not the previous round's policy. Iterative DPO that
wants the previous policy as reference keeps the default `merge_lora: true`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from thresher.config import TrainConfig
from thresher.errors import UserError
from thresher.train.common import (
    is_finished,
    load_policy,
    load_tokenizer,
    read_rows,
    train_and_save,
    trainer_config,
)

PAIR_COLUMNS = ["prompt", "chosen", "rejected"]


def train_dpo(
    base_model: str,
    data_files: Sequence[str | Path],
    out_dir: str | Path,
    cfg: TrainConfig,
    seed: int = 0,
    ref_model: str | None = None,
    report_to: str = "none",
) -> Path:
    """Train `base_model` with DPO on the pairs of `data_files`; returns `out_dir`, the saved model.

    `ref_model` names the frozen reference (a path or hub id); None uses the
    base model itself, the usual choice in iterative DPO where each round's
    reference is the previous round's policy. DPO's `beta` and loss type come
    through `train.args`.
    """
    out_dir = Path(out_dir)
    if is_finished(out_dir):
        return out_dir
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, set_seed
    from trl import DPOConfig, DPOTrainer

    rows = read_rows(data_files, PAIR_COLUMNS)
    set_seed(seed)
    tokenizer = load_tokenizer(base_model)
    model, peft_config = load_policy(base_model, cfg)
    ref = None
    if ref_model is not None:
        try:
            ref = AutoModelForCausalLM.from_pretrained(ref_model)
        except OSError as e:
            raise UserError(f"{ref_model}: cannot load the DPO reference model ({e})") from None
    args = trainer_config(DPOConfig, cfg, out_dir, seed, report_to)
    trainer = DPOTrainer(
        model=model,
        ref_model=ref,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    summary = {
        "method": "dpo",
        "base_model": str(base_model),
        "ref_model": ref_model or str(base_model),
        "rows": len(rows),
        "lora": cfg.lora,
    }
    return train_and_save(trainer, out_dir, cfg.merge_lora, summary)
