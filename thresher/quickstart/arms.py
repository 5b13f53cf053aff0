"""The quickstart's two arms and the table that compares them.

The main arm keeps, per prompt, the k candidates the verifier passed and the
reward model ranked first (`selection.policy: gated`). The control arm is
the same recipe with `selection.policy: random`: k candidates per prompt
drawn at random, right or wrong, from the same pool. Both train the same
student for the same rounds; the control arm gets k rows for every prompt,
the main arm only where k answers passed, so the control arm trains on at
least as many rows (both counts are printed). A gap between them is what
selection bought, not what more training bought.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from thresher.config import Recipe, SelectionConfig, load_recipe
from thresher.records import read_jsonl
from thresher.runner import stage_summary
from thresher.store import RunDir, read_json

RECIPE = Path(__file__).with_name("quickstart.yaml")
"""The quickstart recipe shipped with the package (`recipes/quickstart.yaml` is the same file)."""
GAIN_POINTS = 10.0
"""The gain in pass@1 points from round 0 to the last round the quickstart sets out to show on every task."""


def main_recipe(out_dir: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> Recipe:
    recipe = main_arm(load_recipe(RECIPE, overrides))
    return replace(recipe, out_dir=str(out_dir)) if out_dir is not None else recipe


def main_arm(recipe: Recipe) -> Recipe:
    """A recipe as the main arm: in W&B it opens the group its control arm joins, tagged `arm:main`."""
    tags = [t for t in recipe.eval.wandb_tags if not t.startswith("arm:")] + ["arm:main"]
    ev = replace(recipe.eval, wandb_group=recipe.eval.wandb_group or recipe.name, wandb_tags=tags)
    return replace(recipe, eval=ev)


def control_recipe(recipe: Recipe) -> Recipe:
    """The control arm: the same recipe with randomly chosen candidates instead of selected ones.

    In W&B it shares the main arm's group, tagged `arm:control` (and `policy:random`).
    """
    k = getattr(recipe.selection.args, "k", 1)
    tags = [t for t in recipe.eval.wandb_tags if not t.startswith("arm:")] + ["arm:control"]
    ev = replace(recipe.eval, wandb_group=recipe.eval.wandb_group or recipe.name, wandb_tags=tags)
    return replace(recipe, name=f"{recipe.name}-control", selection=SelectionConfig(policy="random", args={"k": k}),
                   eval=ev)


def pass_at_1(run_dir: Path) -> dict[int, dict[str, float]]:
    """round -> task -> pass@1 from a run's metrics.jsonl."""
    out: dict[int, dict[str, float]] = {}
    path = RunDir(run_dir).metrics
    if path.is_file():
        for row in read_jsonl(path):
            if row["metric"] == "pass@1":
                out.setdefault(int(row["round"]), {})[row["task"]] = float(row["value"])
    return out


def sft_rows(run_dir: Path) -> dict[int, int]:
    """round -> SFT rows the arm trained on (critique rows not counted)."""
    out = {}
    for rd in RunDir(run_dir).rounds():
        summary = stage_summary(rd.marker("export"))
        if summary is not None:
            out[rd.index] = int(summary["exports"].get("sft", {}).get("rows", 0))
    return out


def comparison(main_dir: Path, control_dir: Path) -> dict[str, Any]:
    """Per task: pass@1 by round (main arm), the control arm's last round, the gain and the margin over control."""
    main, control = pass_at_1(main_dir), pass_at_1(control_dir)
    last = max(main) if main else 0
    last_control = max(control) if control else None
    tasks = sorted(main.get(0, {}))
    rows = []
    for task in tasks:
        first, final = main[0].get(task), main.get(last, {}).get(task)
        ctrl = control.get(last_control, {}).get(task) if last_control is not None else None
        rows.append({
            "task": task,
            "rounds": [main.get(r, {}).get(task) for r in sorted(main)],
            "control": ctrl,
            "gain": None if first is None or final is None else 100 * (final - first),
            "over_control": None if ctrl is None or final is None else 100 * (final - ctrl),
        })
    judges: dict[str, dict[str, float]] = {}
    last_eval = RunDir(main_dir).round(last).eval
    if last > 0 and last_eval.is_file():
        for judge, per_task in read_json(last_eval).get("judges", {}).items():
            judges[judge] = {t: m["selection_lift"] for t, m in per_task.items() if "selection_lift" in m}
    return {
        "rounds": sorted(main),
        "judge_lift": judges,
        "control_round": last_control,
        "tasks": rows,
        "rows": {"main": sft_rows(main_dir), "control": sft_rows(control_dir)},
        "every_task_gained": bool(rows) and all(r["gain"] is not None and r["gain"] >= GAIN_POINTS for r in rows),
        "every_task_beats_control": bool(rows) and all(
            r["over_control"] is not None and r["over_control"] > 0 for r in rows
        ),
    }


def print_comparison(cmp: dict[str, Any], console: Any = None) -> None:
    """The quickstart's table: pass@1 per task and round, the control arm, the gain and the margin."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="held-out pass@1 (%): selected data (main arm) vs random data (control arm)")
    table.add_column("task", no_wrap=True)
    for r in cmp["rounds"]:
        table.add_column(f"r{r}", justify="right")
    table.add_column(f"control r{cmp['control_round']}", justify="right")
    table.add_column("gain", justify="right")
    table.add_column("vs control", justify="right")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    def pts(v: float | None, good: float) -> str:
        if v is None:
            return "-"
        style = "green" if v >= good else "red"
        return f"[{style}]{v:+.1f}[/{style}]"

    for row in cmp["tasks"]:
        table.add_row(
            row["task"], *[pct(v) for v in row["rounds"]], pct(row["control"]),
            pts(row["gain"], GAIN_POINTS), pts(row["over_control"], 1e-9),
        )
    console.print(table)
    console.print(
        "gain: last round minus round 0, in points; vs control: main arm minus control arm, last round",
        highlight=False, style="dim",
    )
    for judge, lifts in sorted(cmp.get("judge_lift", {}).items()):
        console.print(
            f"selection lift of judge {judge} in round {cmp['rounds'][-1]} (its pick's accuracy minus a random "
            "candidate's): " + ", ".join(f"{t} {v:+.2f}" for t, v in sorted(lifts.items())),
            highlight=False,
        )
    main_rows, control_rows = cmp["rows"]["main"], cmp["rows"]["control"]
    console.print(
        "SFT rows per round — main: " + ", ".join(f"r{k} {v}" for k, v in sorted(main_rows.items()))
        + "; control: " + ", ".join(f"r{k} {v}" for k, v in sorted(control_rows.items())),
        highlight=False,
    )
    console.print(
        f"every task gained >= {GAIN_POINTS:g} points: {'yes' if cmp['every_task_gained'] else 'NO'}; "
        f"main arm beats the control arm on every task: {'yes' if cmp['every_task_beats_control'] else 'NO'}",
        highlight=False,
    )
