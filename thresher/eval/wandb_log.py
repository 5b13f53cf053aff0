"""Weights & Biases mirror of a run: per-task curves, training loss, export counts and datasets, examples.

One thresher run is one W&B run, grouped with the runs it is compared with
(`eval.wandb_group`, default the run's name: the quickstart puts its main
and control arms in one group) and tagged `policy:<name>` plus
`eval.wandb_tags` (the quickstart adds `arm:main` / `arm:control`). It holds:

- round metrics `task/<task>/<metric>` and `judge/<judge>/<task>/<metric>`
  against the `round` step (95% intervals as `<metric>_ci_low` / `_ci_high`),
  so W&B draws one line per task round by round, as `curves.png` does;
- training loss, learning rate and gradient norm of every logged step as
  `train/*` against `train/step`, which keeps counting across rounds;
- export counts (`export/<kind>/rows`, `export/<kind>/dropped/<reason>`,
  `export/no_pass/<reason>`, ...) against `round`, and each round's exported
  files as a version of one `dataset` artifact (aliases `round-<k>`);
- the evaluation examples as one table logged incrementally: each round
  uploads only its own rows.

Without `WANDB_API_KEY` (and no explicit `WANDB_MODE`) the run is written
offline under the run directory, so a run never needs a network; `wandb sync
<run>/wandb/offline-run-*` uploads it later. The W&B run id is kept in the
run directory, so a resumed thresher run continues the same W&B run, and
each stage is logged only when it ran, never again on a resume.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

from thresher.store import COMPLETE, read_json
from thresher.typed import to_data

RUN_ID_FILE = "wandb_run_id"
EXAMPLE_COLUMNS = ["round", "task", "prompt", "reference", "answer", "extracted", "correct"]
TRAIN_KEYS = {"loss": "loss", "learning_rate": "learning_rate", "grad_norm": "grad_norm", "epoch": "epoch"}
"""TRL log-history keys logged per step, and their names under `train/`."""
EXPORT_FILES = ("sft.jsonl", "critique_sft.jsonl", "dpo.jsonl", "export_decisions.jsonl")


def wandb_mode() -> str:
    """`WANDB_MODE` if set; otherwise online with an API key, offline without one."""
    explicit = os.environ.get("WANDB_MODE")
    if explicit:
        return explicit
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def _numbers(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric metrics under `prefix/`; an interval `[low, high]` becomes two keys; anything else is left out."""
    out: dict[str, float] = {}
    for metric, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[f"{prefix}/{metric}"] = float(value)
        elif isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            out[f"{prefix}/{metric}_low"] = float(value[0])
            out[f"{prefix}/{metric}_high"] = float(value[1])
    return out


def round_log(round_index: int, eval_dict: dict[str, Any]) -> dict[str, float]:
    """The scalars of one round's eval.json, under W&B keys."""
    data: dict[str, float] = {"round": round_index}
    for task, metrics in eval_dict.get("tasks", {}).items():
        data.update(_numbers(f"task/{task}", metrics))
    for judge, per_task in eval_dict.get("judges", {}).items():
        for task, metrics in per_task.items():
            if isinstance(metrics, dict):
                data.update(_numbers(f"judge/{judge}/{task}", metrics))
    return data


def export_log(round_index: int, summary: dict[str, Any]) -> dict[str, float]:
    """The counts of one round's export summary (what the export stage returns), under W&B keys."""
    data: dict[str, float] = {"round": round_index}
    for key in ("prompts", "prompts_passed"):
        if isinstance(summary.get(key), int):
            data[f"export/{key}"] = summary[key]
    for reason, n in (summary.get("no_pass") or {}).get("reasons", {}).items():
        data[f"export/no_pass/{reason}"] = n
    for reason, n in (summary.get("candidates") or {}).get("filtered", {}).items():
        data[f"export/filtered/{reason}"] = n
    for kind, e in (summary.get("exports") or {}).items():
        data[f"export/{kind}/rows"] = e.get("rows", 0)
        for reason, n in (e.get("dropped") or {}).items():
            data[f"export/{kind}/dropped/{reason}"] = n
    return data


def train_steps(log_history: list[dict[str, Any]], round_index: int, offset: int) -> list[dict[str, float]]:
    """One W&B row per logged training step: loss, learning rate, ... at `train/step` = offset + step."""
    rows = []
    for entry in log_history:
        if "loss" not in entry or "step" not in entry:
            continue  # the end-of-training summary, eval rows
        row = {f"train/{name}": float(entry[key]) for key, name in TRAIN_KEYS.items() if isinstance(entry.get(key), (int, float))}
        row.update({"train/step": offset + int(entry["step"]), "train/round": round_index})
        rows.append(row)
    return rows


def _artifact_name(run_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", run_name).strip("-") + "-exports"


class WandbLogger:
    """Logs one thresher run to W&B; with `enabled=False` every method does nothing."""

    def __init__(self, recipe: Any, run_dir: str | Path, enabled: bool = True, project: str | None = None):
        self.run: Any = None
        self.examples: Any = None
        self.run_dir = Path(run_dir)
        if not enabled:
            return
        import wandb

        self.run_dir.mkdir(parents=True, exist_ok=True)
        id_file = self.run_dir / RUN_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        config = to_data(recipe) if recipe is not None else {}
        config = config if isinstance(config, dict) else {}
        ev = config.get("eval") or {}
        self.name = config.get("name") or self.run_dir.name
        policy = (config.get("selection") or {}).get("policy")
        tags = ([f"policy:{policy}"] if policy else []) + list(ev.get("wandb_tags") or [])
        self.run = wandb.init(
            project=project or ev.get("wandb_project") or "thresher",
            name=self.name,
            id=run_id,
            resume="allow",
            dir=str(self.run_dir),
            config=config,
            group=ev.get("wandb_group") or self.name,
            tags=tags,
            mode=wandb_mode(),
        )
        self.run.define_metric("round")
        for prefix in ("task/*", "judge/*", "export/*"):
            self.run.define_metric(prefix, step_metric="round")
        self.run.define_metric("train/step")
        self.run.define_metric("train/*", step_metric="train/step")

    @property
    def enabled(self) -> bool:
        return self.run is not None

    def log_round(self, round_index: int, eval_dict: dict[str, Any]) -> None:
        """Log one round's metrics, and its examples as the new rows of the incremental examples table."""
        if self.run is None:
            return
        import wandb

        data: dict[str, Any] = round_log(round_index, eval_dict)
        rows = [[round_index, *(e.get(c) for c in EXAMPLE_COLUMNS[1:])] for e in eval_dict.get("examples", [])]
        if rows:
            if self.examples is None:
                self.examples = wandb.Table(columns=EXAMPLE_COLUMNS, log_mode="INCREMENTAL")
            for r in rows:
                self.examples.add_data(*r)
            data["examples"] = self.examples
        self.run.log(data)

    def log_export(self, round_index: int, summary: dict[str, Any], round_dir: str | Path) -> None:
        """Log a round's export counts, and its exported files as a version of the run's dataset artifact."""
        if self.run is None:
            return
        import wandb

        self.run.log(export_log(round_index, summary))
        files = [Path(round_dir) / f for f in EXPORT_FILES if (Path(round_dir) / f).is_file()]
        if not files:
            return
        meta = {"round": round_index, "policy": summary.get("policy"), "prompts": summary.get("prompts"),
                "rows": {k: e.get("rows") for k, e in (summary.get("exports") or {}).items()}}
        artifact = wandb.Artifact(_artifact_name(self.name), type="dataset", metadata=meta,
                                  description=f"round {round_index} exports of {self.name}")
        for f in files:
            artifact.add_file(str(f), name=f.name)
        self.run.log_artifact(artifact, aliases=[f"round-{round_index}"])

    def log_training(self, round_index: int, model_dir: str | Path) -> None:
        """Log every step of a finished training (from `train_log.json`), continuing the step count of earlier rounds."""
        if self.run is None:
            return
        log_file = Path(model_dir) / "train_log.json"
        if not log_file.is_file():
            return
        offset = 0
        for k in range(1, round_index):
            marker = self.run_dir / f"round_{k}" / "model" / COMPLETE
            if marker.is_file():
                offset += int(read_json(marker).get("steps") or 0)
        for row in train_steps(read_json(log_file).get("log_history", []), round_index, offset):
            self.run.log(row)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
