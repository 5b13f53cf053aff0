"""What SFT, DPO and reward training share: reading exports, trainer arguments, saving, the done marker.

Each trainer module (`sft.py`, `dpo.py`, `reward.py`) is a short function
that reads its rows, builds TRL's trainer and hands it to `train_and_save`.
The pieces that must behave the same everywhere live here:

- exports are read strictly (a bad row names its `file:line`) and reduced to
  the columns TRL reads, so provenance fields (scores, judges, nested
  metadata) never reach Arrow's schema inference or the trainer;
- trainer arguments come from `TrainConfig`, with CPU-safe defaults (no bf16,
  `use_cpu` without a GPU) and `train.args` passed through to TRL's config
  after checking each key exists there;
- a finished model directory holds `.complete` (a summary) and
  `train_log.json` (TRL's log history, the loss curve); a directory with the
  marker is skipped, one without it is trained again from the last
  checkpoint if `train.args` asked for checkpoints, else from the start.
"""

from __future__ import annotations

import dataclasses
import gzip
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from thresher.config import TrainConfig
from thresher.errors import ConfigError, RecordError, UserError
from thresher.records import parse_line
from thresher.store import COMPLETE, read_json, write_json

CHECKPOINTS = "checkpoints"
"""Sub-directory of the model directory holding mid-training checkpoints; removed once training ends."""
TRAIN_LOG = "train_log.json"
ADAPTER_CONFIG = "adapter_config.json"


def is_finished(out_dir: str | Path) -> bool:
    """True when `out_dir` holds a model whose training ran to the end."""
    return (Path(out_dir) / COMPLETE).is_file()


def training_summary(out_dir: str | Path) -> dict[str, Any]:
    """The summary a finished training wrote (method, rows, steps, first and final loss)."""
    return read_json(Path(out_dir) / COMPLETE)


def is_adapter_dir(path: str | Path) -> bool:
    """True for a directory holding a PEFT adapter rather than full weights."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                yield lineno, parse_line(line, path, lineno)  # type: ignore[misc]


def _messages(value: Any, path: Path, lineno: int, column: str) -> list[dict[str, str]]:
    """A message list reduced to role and content, or a RecordError naming the row."""
    if not isinstance(value, list) or not value:
        raise RecordError(path, lineno, f"{column}: expected a non-empty list of messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise RecordError(path, lineno, f"{column}[{i}]: expected {{'role': str, 'content': str}}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


RowCheck = Callable[[dict[str, Any]], str | None]
"""Returns why a row is unusable, or None."""


def read_rows(files: Sequence[str | Path], columns: Sequence[str], check: RowCheck | None = None) -> list[dict]:
    """Rows of TRL conversational exports, keeping only `columns` (each a message list).

    Provenance columns are dropped here on purpose: they are for people and
    reports, and TRL would otherwise try to tokenize or collate them.
    """
    if not files:
        raise UserError("no training data files given")
    rows: list[dict] = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise UserError(f"{path}: no such training data file")
        for lineno, data in _lines(path):
            missing = [c for c in columns if c not in data]
            if missing:
                raise RecordError(path, lineno, f"missing {', '.join(missing)} (expected TRL rows with {', '.join(columns)})")
            row = {c: _messages(data[c], path, lineno, c) for c in columns}
            why = check(row) if check else None
            if why:
                raise RecordError(path, lineno, why)
            rows.append(row)
    if not rows:
        raise UserError(f"no training rows in {', '.join(str(f) for f in files)}")
    return rows


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def trainer_config(config_cls: type, cfg: TrainConfig, out_dir: Path, seed: int, report_to: str, **fixed: Any) -> Any:
    """TRL's config for one trainer: TrainConfig fields, CPU-safe defaults, then `train.args`.

    `train.args` wins over everything else (a user who sets `bf16: false` on a
    GPU gets it), but each key must be a field of `config_cls`, so a typo fails
    here naming `train.args.<key>` instead of being ignored.
    """
    import torch

    gpu = has_gpu()
    kwargs: dict[str, Any] = {
        "output_dir": str(out_dir / CHECKPOINTS),
        "num_train_epochs": cfg.epochs,
        "learning_rate": cfg.learning_rate,
        "per_device_train_batch_size": cfg.batch_size,
        "max_length": cfg.max_length,
        "seed": seed,
        "data_seed": seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": report_to,
        "use_cpu": not gpu,
        "bf16": gpu and torch.cuda.is_bf16_supported(),
        # Recomputing activations saves GPU memory on real models; on a CPU it only costs time.
        "gradient_checkpointing": gpu,
        "dataloader_num_workers": 0,
    }
    kwargs.update(fixed)
    extra = cfg.args.trainer_kwargs()
    valid = {f.name for f in dataclasses.fields(config_cls) if f.init}
    for key in extra:
        if key not in valid:
            where = f"train.args.trl.{key}" if key in cfg.args.trl else f"train.args.{key}"
            raise ConfigError(where, f"not a field of TRL's {config_cls.__name__}")
    kwargs.update(extra)
    return config_cls(**kwargs)


def lora_config(cfg: TrainConfig, task_type: str) -> Any:
    """PEFT LoRA on every linear layer (the heads excepted), or None for full fine-tuning."""
    if not cfg.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules="all-linear",
        task_type=task_type,
    )


def load_tokenizer(path: str) -> Any:
    """The base model's tokenizer, with a pad token (the EOS token where the model has none)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise UserError(f"{path}: cannot load a tokenizer ({e})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_policy(base_model: str, cfg: TrainConfig) -> tuple[Any, Any]:
    """What to hand TRL as the model, and the LoRA config to add to it.

    A full model goes in as its path (TRL loads it in float32 unless
    `train.args.model_init_kwargs` says otherwise). A LoRA adapter from an
    earlier round (saved with `merge_lora: false`) is loaded on its base and
    trained further with LoRA, or merged first for full fine-tuning.
    """
    if not is_adapter_dir(base_model):
        return base_model, lora_config(cfg, "CAUSAL_LM")
    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(base_model, is_trainable=cfg.lora)
    if cfg.lora:
        return model, None
    return model.merge_and_unload(), None


def _last_checkpoint(out_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    ckpt_dir = out_dir / CHECKPOINTS
    return get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None


def _losses(log_history: list[dict[str, Any]]) -> list[float]:
    return [float(e["loss"]) for e in log_history if "loss" in e]


def train_and_save(trainer: Any, out_dir: Path, merge_lora: bool, summary: dict[str, Any]) -> Path:
    """Train (resuming from a checkpoint if one exists), save the model, then write the log and the marker.

    A LoRA model is saved merged into its base when `merge_lora`, so the next
    round's sampler loads a plain model; otherwise the adapter is saved. The
    marker comes last: a kill during saving leaves no marker and the next run
    trains again.
    """
    from peft import PeftModel

    out_dir.mkdir(parents=True, exist_ok=True)
    result = trainer.train(resume_from_checkpoint=_last_checkpoint(out_dir))
    trainer.accelerator.wait_for_everyone()
    model = trainer.accelerator.unwrap_model(trainer.model)
    is_peft = isinstance(model, PeftModel)
    main = trainer.accelerator.is_main_process
    # Trainers switch the KV cache off for training; the saved model is for sampling, so switch it back on.
    model.config.use_cache = True
    if is_peft and merge_lora:
        if main:
            merged = model.merge_and_unload()
            merged.config.use_cache = True
            merged.save_pretrained(str(out_dir))
            trainer.processing_class.save_pretrained(str(out_dir))
    else:
        trainer.save_model(str(out_dir))
    if main:
        history = trainer.state.log_history
        losses = _losses(history)
        write_json(out_dir / TRAIN_LOG, {"log_history": history})
        shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
        done = dict(summary)
        done.update(
            saved="merged" if is_peft and merge_lora else ("adapter" if is_peft else "full"),
            steps=trainer.state.global_step,
            processes=trainer.accelerator.num_processes,
            train_loss=result.training_loss,
            first_loss=losses[0] if losses else None,
            final_loss=losses[-1] if losses else None,
        )
        write_json(out_dir / COMPLETE, done)
    trainer.accelerator.wait_for_everyone()
    return out_dir
