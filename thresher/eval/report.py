"""What each round gained or lost, per task: metrics.jsonl rows, regression warnings, curves, HTML, a table.

The common failure of this kind of training is a task that regresses while
the others rise (Tulu 3's HumanEval fell while GSM8K climbed), and an
average hides it. So every view here is per task and round by round, with
the 95% interval of each number and the prompts it rests on. A drop is
flagged (in the terminal, in the HTML and in the returned warning lines)
when it is larger than the configured threshold and falls below the
previous round's interval: a drop inside the interval is noise.

The report also shows the other arm of a main / control pair beside this
one, each round's export (kept, dropped by reason, contamination), training
candidates with their verdicts and critiques, each judge's report card with
its best-of-N curve, and the command that opens the viewer.

Everything is built from run directories alone (`metrics.jsonl`, each
round's `eval.json`, export summaries and shards, `model/.complete`), so
`thresher report RUN_DIR` works on a finished, a running or a copied run.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from thresher.eval import report_html as H
from thresher.eval.bootstrap import ci_key, is_ci_key
from thresher.eval.report_data import export_summaries, resolve_partner, training_examples
from thresher.eval.report_plots import BON_FILE, plot_best_of_n
from thresher.eval.report_plots import plot_curves as _plot_curves
from thresher.records import read_jsonl
from thresher.store import RunDir, read_json

JUDGE_METRICS = ("selection_accuracy", "selection_lift")
"""Judge metrics copied into metrics.jsonl, as `<metric>/<judge>` under each task."""
DEFAULT_THRESHOLD = 0.02


def _row(round_index: int, task: str, metric: str, value: Any, ci: Any, prompts: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"round": round_index, "task": task, "metric": metric, "value": float(value)}
    if ci is not None:
        row["ci"] = [float(ci[0]), float(ci[1])]
    if prompts is not None:
        row["prompts"] = int(prompts)
    return row


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def metric_rows(round_index: int, eval_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """metrics.jsonl rows for one round's eval.json: task metrics, plus each judge's selection metrics.

    A row carries its 95% interval (`ci`) and prompt count (`prompts`) when eval.json has them.
    """
    rows = []
    for task, metrics in eval_dict.get("tasks", {}).items():
        n = metrics.get("prompts")
        for metric, value in metrics.items():
            if metric != "prompts" and not is_ci_key(metric) and _scalar(value):
                rows.append(_row(round_index, task, metric, value, metrics.get(ci_key(metric)), n))
    for judge, per_task in eval_dict.get("judges", {}).items():
        for task, metrics in per_task.items():
            for metric in JUDGE_METRICS:
                if metric in metrics:
                    rows.append(_row(round_index, task, f"{metric}/{judge}", metrics[metric],
                                     metrics.get(ci_key(metric)), metrics.get("prompts")))
    return rows


def append_round_metrics(run_dir: str | Path, round: int, eval_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """Add one round's metrics to `metrics.jsonl` (replacing that round's older rows); returns the rows."""
    rows = metric_rows(round, eval_dict)
    RunDir(run_dir).append_metrics(rows)
    return rows


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = RunDir(run_dir).metrics
    return list(read_jsonl(path)) if path.is_file() else []


Series = dict[tuple[str, str], dict[int, dict[str, Any]]]
"""(task, metric) -> {round: metrics.jsonl row (value, and ci and prompts when known)}."""


def _series(rows: Iterable[dict[str, Any]]) -> Series:
    out: Series = defaultdict(dict)
    for r in rows:
        out[(r["task"], r["metric"])][int(r["round"])] = r
    return out


def is_judge_metric(metric: str) -> bool:
    return metric.split("/", 1)[0] in JUDGE_METRICS


def _metric_order(metric: str) -> tuple[int, str]:
    head = metric.split("@", 1)[0]
    rank = {"pass": 0, "maj": 1, "sample_accuracy": 2}.get(head, 4 if is_judge_metric(metric) else 3)
    return rank, metric


def is_regression(prev: dict[str, Any], cur: dict[str, Any], threshold: float) -> bool:
    """A drop larger than `threshold` that also falls below the previous round's 95% interval (when known)."""
    if prev["value"] - cur["value"] <= threshold:
        return False
    ci = prev.get("ci")
    return ci is None or cur["value"] < ci[0]


def regressions(
    run_dir: str | Path, threshold: float = DEFAULT_THRESHOLD, metrics: Sequence[str] | None = None
) -> list[str]:
    """Warning lines for every task metric that regressed from one round to the next (see `is_regression`).

    `metrics` limits the check (default: every task metric; judge metrics are
    about the judges, not the student, and are left out unless named).
    """
    lines = []
    series = _series(read_metrics(run_dir))
    for (task, metric), by_round in sorted(series.items(), key=lambda kv: (_metric_order(kv[0][1]), kv[0][0])):
        if metrics is not None and metric not in metrics:
            continue
        if metrics is None and is_judge_metric(metric):
            continue
        for prev, cur in pairwise(sorted(by_round)):
            a, b = by_round[prev], by_round[cur]
            if not is_regression(a, b, threshold):
                continue
            note = ""
            if a.get("ci"):
                n = f" of {a['prompts']} prompts" if a.get("prompts") else ""
                note = f", below round {prev}'s 95% interval [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]{n}"
            lines.append(
                f"warning: task {task} {metric} fell {a['value']:.3f} -> {b['value']:.3f} "
                f"({b['value'] - a['value']:+.3f}{note}) from round {prev} to round {cur}"
            )
    return lines


def _threshold(run_dir: Path, threshold: float | None) -> float:
    if threshold is not None:
        return threshold
    recipe = RunDir(run_dir).recipe
    if recipe.is_file():
        import yaml

        data = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
        value = (data.get("eval") or {}).get("regression_threshold")
        if isinstance(value, int | float):
            return float(value)
    return DEFAULT_THRESHOLD


def _plotted(series: Series) -> list[str]:
    return sorted({m for _, m in series if not m.startswith("selection_accuracy/")}, key=_metric_order)


def plot_curves(run_dir: str | Path, out_path: str | Path | None = None, other: str | Path | None = None) -> Path | None:
    """`curves.png`: one panel per metric, one line per task across rounds with its 95% band; the other arm
    of a pair (`other`) dashed. None when there are no metrics."""
    run = RunDir(run_dir)
    series = _series(read_metrics(run.path))
    other_series = _series(read_metrics(other)) if other is not None else None
    return _plot_curves(series, _plotted(series), out_path if out_path is not None else run.curves, run.path.name,
                        other_series, Path(other).name if other is not None else None, is_judge_metric)


def read_evals(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """Each round's eval.json, by round."""
    return {rd.index: read_json(rd.eval) for rd in RunDir(run_dir).rounds() if rd.eval.is_file()}


def _image(path: Path | None, alt: str) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{alt}' src='data:image/png;base64,{data}'>"


def _judges_html(run: RunDir, evals: dict[int, dict[str, Any]]) -> str:
    judged = [r for r, ev in sorted(evals.items()) if ev.get("judges")]
    parts = [H.judge_table(evals)]
    if judged:
        last = judged[-1]
        png = plot_best_of_n(evals[last]["judges"], run.path / BON_FILE, f"{run.path.name}: best-of-N, round {last}")
        if png is not None:
            parts.append(f"<h3>Best-of-N, round {last}</h3><p>Accuracy of each judge's pick among N candidates of "
                         "a prompt, beside majority vote over the same N, a random pick and the oracle.</p>"
                         + _image(png, "best-of-N curves"))
            parts.append(f"<details><summary>best-of-N numbers</summary>{H.bon_tables(evals[last]['judges'], last)}"
                         "</details>")
    return "".join(parts)


def write_report(run_dir: str | Path, threshold: float | None = None, compare: str | Path | bool | None = None) -> Path:
    """Write `curves.png`, `best_of_n.png` and a self-contained `report.html`; returns the HTML path.

    `compare`: the other arm to show beside this one (None: `<name>-control`
    or `<name>` next to this run when it exists; False: none).
    """
    run = RunDir(run_dir)
    other = resolve_partner(run.path, compare)
    thr = _threshold(run.path, threshold)
    series = _series(read_metrics(run.path))
    rounds = sorted({r for vals in series.values() for r in vals})
    evals = read_evals(run.path)
    warnings = regressions(run.path, thr)
    task_metrics = [m for m in _plotted(series) if not is_judge_metric(m)]

    viewer = f"thresher view {run.path}" + (f" {other}" if other is not None else "")
    parts = [f"<h1>thresher report: {H.esc(run.path.name)}</h1>",
             ("<p>Open the data (every candidate, verdict, critique and selection decision) in the viewer: "
              f"<code class='cmd'>{H.esc(viewer)}</code></p>")]
    if run.recipe.is_file():
        parts.append(f"<details><summary>recipe</summary><pre>{H.esc(run.recipe.read_text(encoding='utf-8'))}</pre>"
                     "</details>")
    parts.append(f"<h2>Regressions (threshold {thr:g}, outside the previous round's 95% interval)</h2>")
    parts.append("<ul>" + "".join(f"<li class='warn'>{H.esc(w)}</li>" for w in warnings) + "</ul>" if warnings
                 else f"<p class='up'>No task fell by more than {thr:g} and outside its interval between rounds.</p>")
    if other is not None:
        other_series = _series(read_metrics(other))
        parts.append(f"<h2>{H.esc(run.path.name)} beside {H.esc(other.name)}</h2>")
        parts.append(H.arms_tables(series, other_series, task_metrics, run.path.name, other.name))
    parts.append("<h2>Per task, round by round</h2><p>Each value with its 95% bootstrap interval over the "
                 "prompts (below it) and the number of prompts in the last round.</p>")
    parts.append(H.task_tables(series, rounds, task_metrics, lambda a, b: is_regression(a, b, thr))
                 or "<p>No metrics yet.</p>")
    curves = plot_curves(run.path, other=other)
    if curves is not None:
        parts.append("<h2>Curves</h2>" + _image(curves, "curves"))
    parts.append(f"<h2>Judges: report cards against the oracle</h2>{_judges_html(run, evals)}")
    arms = {run.path.name: export_summaries(run.path)}
    if other is not None:
        arms[other.name] = export_summaries(other)
    parts.append(f"<h2>Export: kept and dropped, by reason</h2>{H.export_table(arms)}")
    examples = {rd.index: training_examples(rd.path) for rd in run.rounds()}
    parts.append(f"<h2>Training candidates: kept and rejected</h2>{H.training_examples_html(examples)}")
    parts.append(H.training_table(run))
    parts.append(H.counts_table(evals))
    parts.append(f"<h2>Eval answers</h2>{H.eval_examples(evals)}")
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>thresher report: {H.esc(run.path.name)}</title>"
        f"<style>{H.CSS}</style></head><body>{''.join(parts)}"
        "<script type='application/json' id='metrics'>"
        + json.dumps(read_metrics(run.path)).replace("</", "<\\/") + "</script>"
        "</body></html>"
    )
    run.report.write_text(doc, encoding="utf-8")
    return run.report


def print_table(run_dir: str | Path, metric: str = "pass@1", console: Any = None,
                threshold: float | None = None) -> None:
    """A terminal table, task x round, of one metric with its change from the round before."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    thr = _threshold(Path(run_dir), threshold)
    series = _series(read_metrics(run_dir))
    rounds = sorted({r for (_, m), vals in series.items() if m == metric for r in vals})
    table = Table(title=f"{metric} per task, round by round")
    table.add_column("task")
    for r in rounds:
        table.add_column(f"round {r}", justify="right")
    table.add_column("prompts", justify="right")
    for task in sorted({t for t, m in series if m == metric}):
        vals, prev, cells = series[(task, metric)], None, []
        for r in rounds:
            cur = vals.get(r)
            if cur is None:
                cells.append("-")
                continue
            v = cur["value"]
            if prev is None:
                cells.append(f"{v:.3f}")
            else:
                d = v - prev["value"]
                style = "red bold" if is_regression(prev, cur, thr) else "green" if d > 0 else "red" if d < 0 else "dim"
                cells.append(f"{v:.3f} [{style}]({d:+.3f})[/{style}]")
            prev = cur
        table.add_row(task, *cells, str(vals[max(vals)].get("prompts", "-")))
    console.print(table)
    for line in regressions(run_dir, thr):
        console.print(line, style="red", markup=False, highlight=False)
