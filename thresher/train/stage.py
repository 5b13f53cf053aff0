"""The round loop's train stage: train the student on this round's exports, as the recipe says.

`train.method` picks the trainer and `train.data` the exports it reads
(`sft`, `critique_sft`, `dpo`: files in the round directory). The trained
model goes to the round's `model/`; the next round samples from it.
"""

from __future__ import annotations

from pathlib import Path

from thresher.config import TrainConfig
from thresher.errors import ConfigError, UserError
from thresher.store import RoundDir

DATA_FOR_METHOD = {"sft": ("sft", "critique_sft"), "dpo": ("dpo",)}
"""Which exports each method can read: SFT takes message rows, DPO takes preference rows."""


def stage_data_files(round_dir: Path, cfg: TrainConfig) -> list[Path]:
    """The export files `cfg.data` names in `round_dir`; an error names a missing or mismatched one."""
    rd = RoundDir(Path(round_dir))
    allowed = DATA_FOR_METHOD[cfg.method]
    for i, name in enumerate(cfg.data):
        if name not in allowed:
            raise ConfigError(f"train.data[{i}]", f"{name!r} cannot be used with method {cfg.method!r} "
                              f"(expected one of: {', '.join(allowed)})")
    files = []
    for name in cfg.data:
        path = {"sft": rd.sft, "critique_sft": rd.critique_sft, "dpo": rd.dpo}[name]
        if not path.is_file():
            raise UserError(f"{path}: no such export; run the export stage for this round first")
        files.append(path)
    if not files:
        raise ConfigError("train.data", f"names no export to train on with method {cfg.method!r}")
    return files


def train_stage(base_model: str, round_dir: Path, cfg: TrainConfig, seed: int = 0, report_to: str = "none") -> Path:
    """Train `base_model` on the round's exports into `round_dir/model`; returns the model path.

    Method `none` trains nothing and returns `base_model`, so the next round
    samples from the same student. A round whose `model/` is finished is skipped.
    """
    if cfg.method == "none":
        return Path(base_model)
    round_dir = Path(round_dir)
    out_dir = RoundDir(round_dir).model
    files = stage_data_files(round_dir, cfg)
    if cfg.method == "sft":
        from thresher.train.sft import train_sft

        return train_sft(base_model, files, out_dir, cfg, seed=seed, report_to=report_to)
    from thresher.train.dpo import train_dpo

    return train_dpo(base_model, files, out_dir, cfg, seed=seed, report_to=report_to)
