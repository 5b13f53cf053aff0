"""The round loop's train stage: train the student on this round's exports, as the recipe says.

`train.method` picks the trainer and `train.data` the exports it reads
(`sft`, `critique_sft`, `dpo`: files in the round directory). The trained
model goes to the round's `model/`; the next round samples from it.

The runner fingerprints training by the base model's identity, the
exports' identity (the export stage's fingerprint) and the train settings,
so a changed `selection.args.k` that re-exported the data also retrains the
model, and its eval follows; an unchanged rerun skips, and a killed one
resumes from the trainer's last checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from thresher.config import TrainConfig
from thresher.errors import ConfigError, UserError
from thresher.runner import Outcome, run_stage
from thresher.store import RoundDir

DATA_FOR_METHOD = {"sft": ("sft", "critique_sft"), "dpo": ("dpo",)}
"""Which exports each method can read: SFT takes message rows, DPO takes preference rows."""


def stage_data_files(round_dir: Path, cfg: TrainConfig, check_exist: bool = True) -> list[Path]:
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
        if check_exist and not path.is_file():
            raise UserError(f"{path}: no such export; run the export stage for this round first")
        files.append(path)
    if not files:
        raise ConfigError("train.data", f"names no export to train on with method {cfg.method!r}")
    return files


class TrainStage:
    """The runner's view of training: one part, the round's `model/` directory."""

    name = "train"

    def __init__(self, base_model: str, round_dir: Path, cfg: TrainConfig, seed: int, report_to: str):
        self.base_model, self.cfg, self.seed, self.report_to = base_model, cfg, seed, report_to
        self.rd = RoundDir(Path(round_dir))
        self.marker = self.rd.marker("train")

    def parts(self) -> dict[str, Any]:
        from thresher.identity import model_identity, plain, records_identity

        files = stage_data_files(self.rd.path, self.cfg, check_exist=False)
        export_marker = self.rd.marker("export")
        return {"train": {
            "base_model": model_identity(self.base_model),
            "data": {f.name: records_identity(f, export_marker) for f in files},
            "config": plain(self.cfg),
            "seed": self.seed,
        }}

    def has_outputs(self, part: str) -> bool:
        return self.rd.model.exists()

    def drop(self, part: str) -> None:
        shutil.rmtree(self.rd.model, ignore_errors=True)

    def run(self, todo: list[str]) -> dict[str, Any]:
        from thresher.train.common import training_summary

        files = stage_data_files(self.rd.path, self.cfg)
        if self.cfg.method == "sft":
            from thresher.train.sft import train_sft

            train_sft(self.base_model, files, self.rd.model, self.cfg, seed=self.seed, report_to=self.report_to)
        else:
            from thresher.train.dpo import train_dpo

            train_dpo(self.base_model, files, self.rd.model, self.cfg, seed=self.seed, report_to=self.report_to)
        return {"model": str(self.rd.model), **training_summary(self.rd.model)}

    def describe(self, summary: dict[str, Any]) -> str:
        first, final = summary.get("first_loss"), summary.get("final_loss")
        loss = f", loss {first:.3f} -> {final:.3f}" if first is not None and final is not None else ""
        return f"{summary.get('steps', 0)} steps{loss}"


def train_outcome(
    base_model: str, round_dir: Path, cfg: TrainConfig, seed: int = 0, report_to: str = "none",
    progress: bool = True, label: str = "train",
) -> Outcome:
    """Run the train stage through the runner; `cfg.method == "none"` trains nothing."""
    return run_stage(TrainStage(base_model, round_dir, cfg, seed, report_to), label, quiet=not progress)


def train_stage(
    base_model: str, round_dir: Path, cfg: TrainConfig, seed: int = 0, report_to: str = "none", progress: bool = True,
    label: str = "train",
) -> Path:
    """Train `base_model` on the round's exports into `round_dir/model`; returns the model path.

    Method `none` trains nothing and returns `base_model`, so the next round
    samples from the same student. A round whose model is finished for the
    same base model, data and settings is skipped.
    """
    if cfg.method == "none":
        return Path(base_model)
    train_outcome(base_model, round_dir, cfg, seed, report_to, progress, label)
    return RoundDir(Path(round_dir)).model
