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

from thresher.config import DATA_FOR_METHOD, TrainConfig
from thresher.errors import ConfigError, UserError
from thresher.runner import Outcome, run_stage
from thresher.store import RoundDir


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


TRAINERS = ("sft", "dpo", "reward")
"""What `TrainStage` can run: TRL's SFTTrainer, DPOTrainer and RewardTrainer."""


class TrainStage:
    """The runner's view of training: one part, a model directory, made from a base model and data files."""

    name = "train"

    def __init__(
        self, base_model: str, data_files: list[Path], out_dir: Path, marker: Path, cfg: TrainConfig,
        seed: int = 0, report_to: str = "none", method: str | None = None, ref_model: str | None = None,
        data_marker: Path | None = None,
    ):
        self.base_model, self.files, self.out_dir, self.marker = base_model, data_files, Path(out_dir), marker
        self.cfg, self.seed, self.report_to, self.ref_model = cfg, seed, report_to, ref_model
        self.method = method or cfg.method
        if self.method not in TRAINERS:
            raise ConfigError("train.method", f"{self.method!r} is not one of {', '.join(TRAINERS)}")
        self.data_marker = data_marker

    def parts(self) -> dict[str, Any]:
        from thresher.identity import model_identity, plain, records_identity

        return {"train": {
            "base_model": model_identity(self.base_model),
            "reference": None if self.ref_model is None else model_identity(self.ref_model),
            "data": {str(f): records_identity(f, self.data_marker) for f in self.files},
            "method": self.method,
            "config": plain(self.cfg),
            "seed": self.seed,
        }}

    def has_outputs(self, part: str) -> bool:
        return self.out_dir.exists() and any(p.name != ".stages" for p in self.out_dir.iterdir())

    def drop(self, part: str) -> None:
        if self.out_dir.is_dir():
            for p in self.out_dir.iterdir():
                if p.name != ".stages":  # a standalone model directory keeps its marker here
                    shutil.rmtree(p) if p.is_dir() else p.unlink()

    def run(self, todo: list[str]) -> dict[str, Any]:
        from thresher.train.common import training_summary

        for f in self.files:
            if not Path(f).is_file():
                raise UserError(f"{f}: no such export; run the export stage for this round first")
        if self.cfg.launcher == "accelerate":  # several processes (GPUs): launched, waited for, then read back
            from thresher.train.launch import launch_training

            launch_training(self.method, self.base_model, self.files, self.out_dir, self.cfg, self.seed,
                            self.report_to, self.ref_model)
        elif self.method == "sft":
            from thresher.train.sft import train_sft

            train_sft(self.base_model, self.files, self.out_dir, self.cfg, seed=self.seed, report_to=self.report_to)
        elif self.method == "dpo":
            from thresher.train.dpo import train_dpo

            train_dpo(self.base_model, self.files, self.out_dir, self.cfg, seed=self.seed,
                      ref_model=self.ref_model, report_to=self.report_to)
        else:
            from thresher.train.reward import train_reward_model

            train_reward_model(self.base_model, self.files, self.out_dir, self.cfg, seed=self.seed,
                               report_to=self.report_to)
        return {"model": str(self.out_dir), **training_summary(self.out_dir)}

    def describe(self, summary: dict[str, Any]) -> str:
        first, final = summary.get("first_loss"), summary.get("final_loss")
        loss = f", loss {first:.3f} -> {final:.3f}" if first is not None and final is not None else ""
        return f"{summary.get('steps', 0)} steps{loss}"


def train_outcome(
    base_model: str, round_dir: Path, cfg: TrainConfig, seed: int = 0, report_to: str = "none",
    progress: bool = True, label: str = "train",
) -> Outcome:
    """Train the round's student on its exports through the runner."""
    rd = RoundDir(Path(round_dir))
    stage = TrainStage(base_model, stage_data_files(rd.path, cfg, check_exist=False), rd.model, rd.marker("train"),
                       cfg, seed, report_to, data_marker=rd.marker("export"))
    return run_stage(stage, label, quiet=not progress)


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
