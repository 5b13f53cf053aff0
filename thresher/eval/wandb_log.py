"""Weights & Biases mirror of a run: per-task curves across rounds, sampled examples, the recipe.

Curves are keyed `task/<task>/<metric>` (and `judge/<judge>/<task>/<metric>`)
against a `round` step metric, so W&B draws one line per task round by round
just as `curves.png` does. Without `WANDB_API_KEY` (and no explicit
`WANDB_MODE`) the run is written offline under the run directory, so a run
never needs a network; `wandb sync` uploads it later. The W&B run id is kept
in the run directory, so a resumed thresher run continues the same W&B run.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from thresher.typed import to_data

RUN_ID_FILE = "wandb_run_id"
EXAMPLE_COLUMNS = ["round", "task", "prompt", "reference", "answer", "extracted", "correct"]


def wandb_mode() -> str:
    """`WANDB_MODE` if set; otherwise online with an API key, offline without one."""
    explicit = os.environ.get("WANDB_MODE")
    if explicit:
        return explicit
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def round_log(round_index: int, eval_dict: dict[str, Any]) -> dict[str, float]:
    """The scalars of one round's eval.json, under W&B keys (intervals and curves are not scalars)."""
    data: dict[str, float] = {"round": round_index}
    for task, metrics in eval_dict.get("tasks", {}).items():
        for metric, value in metrics.items():
            if _scalar(value):
                data[f"task/{task}/{metric}"] = float(value)
    for judge, per_task in eval_dict.get("judges", {}).items():
        for task, metrics in per_task.items():
            for metric, value in metrics.items():
                if _scalar(value):
                    data[f"judge/{judge}/{task}/{metric}"] = float(value)
    return data


class WandbLogger:
    """Logs rounds of one thresher run to W&B; with `enabled=False` every method does nothing."""

    def __init__(self, recipe: Any, run_dir: str | Path, enabled: bool = True, project: str | None = None):
        self.run: Any = None
        self.examples: list[list[Any]] = []
        if not enabled:
            return
        import wandb

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        id_file = run_dir / RUN_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        config = to_data(recipe) if recipe is not None else {}
        name = config.get("name") if isinstance(config, dict) else None
        if project is None:
            project = ((config.get("eval") or {}).get("wandb_project") if isinstance(config, dict) else None)
        self.run = wandb.init(
            project=project or "thresher",
            name=name or run_dir.name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            config=config,
            mode=wandb_mode(),
        )
        self.run.define_metric("round")
        for prefix in ("task/*", "judge/*"):
            self.run.define_metric(prefix, step_metric="round")

    @property
    def enabled(self) -> bool:
        return self.run is not None

    def log_round(self, round_index: int, eval_dict: dict[str, Any]) -> None:
        """Log one round's metrics, and its sampled examples as a table that grows round by round."""
        if self.run is None:
            return
        import wandb

        data: dict[str, Any] = round_log(round_index, eval_dict)
        for e in eval_dict.get("examples", []):
            self.examples.append([round_index, *(e.get(c) for c in EXAMPLE_COLUMNS[1:])])
        if self.examples:
            data["examples"] = wandb.Table(columns=EXAMPLE_COLUMNS, data=[list(r) for r in self.examples])
        self.run.log(data)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
