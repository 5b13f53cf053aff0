"""What each round gained or lost, per task: metrics.jsonl rows, regression warnings, curves, HTML, a table.

The common failure of this kind of training is a task that regresses while
the others rise (Tulu 3's HumanEval fell while GSM8K climbed), and an
average hides it. So every view here is per task and round by round, deltas
are coloured, and a drop larger than the configured threshold is flagged in
the terminal, in the HTML and in the returned warning lines.

Everything is built from the run directory alone (`metrics.jsonl`, each
round's `eval.json`, `model/.complete`), so `thresher report RUN_DIR` works on
a finished, a running or a copied run.
"""

from __future__ import annotations

import base64
import html
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from thresher.records import read_jsonl
from thresher.store import COMPLETE, RunDir, read_json

JUDGE_METRICS = ("selection_accuracy", "selection_lift")
"""Judge metrics copied into metrics.jsonl, as `<metric>/<judge>` under each task."""
DEFAULT_THRESHOLD = 0.02


def metric_rows(round_index: int, eval_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """metrics.jsonl rows for one round's eval.json: task metrics, plus each judge's selection metrics."""
    rows = [
        {"round": round_index, "task": task, "metric": metric, "value": float(value)}
        for task, metrics in eval_dict.get("tasks", {}).items()
        for metric, value in metrics.items()
    ]
    for judge, per_task in eval_dict.get("judges", {}).items():
        for task, metrics in per_task.items():
            for metric in JUDGE_METRICS:
                if metric in metrics:
                    rows.append({"round": round_index, "task": task, "metric": f"{metric}/{judge}",
                                 "value": float(metrics[metric])})
    return rows


def append_round_metrics(run_dir: str | Path, round: int, eval_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """Add one round's metrics to `metrics.jsonl` (replacing that round's older rows); returns the rows."""
    rows = metric_rows(round, eval_dict)
    RunDir(run_dir).append_metrics(rows)
    return rows


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = RunDir(run_dir).metrics
    return list(read_jsonl(path)) if path.is_file() else []


Series = dict[tuple[str, str], dict[int, float]]
"""(task, metric) -> {round: value}."""


def _series(rows: Iterable[dict[str, Any]]) -> Series:
    out: Series = defaultdict(dict)
    for r in rows:
        out[(r["task"], r["metric"])][int(r["round"])] = float(r["value"])
    return out


def is_judge_metric(metric: str) -> bool:
    return metric.split("/", 1)[0] in JUDGE_METRICS


def _metric_order(metric: str) -> tuple[int, str]:
    head = metric.split("@", 1)[0]
    rank = {"pass": 0, "maj": 1, "sample_accuracy": 2}.get(head, 4 if is_judge_metric(metric) else 3)
    return rank, metric


def regressions(
    run_dir: str | Path, threshold: float = DEFAULT_THRESHOLD, metrics: Sequence[str] | None = None
) -> list[str]:
    """Warning lines for every task metric that fell by more than `threshold` from one round to the next.

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
        rounds = sorted(by_round)
        for prev, cur in pairwise(rounds):
            delta = by_round[cur] - by_round[prev]
            if -delta > threshold:
                lines.append(
                    f"warning: task {task} {metric} fell {by_round[prev]:.3f} -> {by_round[cur]:.3f} "
                    f"({delta:+.3f}) from round {prev} to round {cur}"
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


def plot_curves(run_dir: str | Path, out_path: str | Path | None = None) -> Path | None:
    """`curves.png`: one panel per metric, one line per task across rounds. None when there are no metrics."""
    from matplotlib.figure import Figure

    series = _series(read_metrics(run_dir))
    metrics = sorted({m for _, m in series if not m.startswith("selection_accuracy/")}, key=_metric_order)
    if not metrics:
        return None
    all_rounds = sorted({r for vals in series.values() for r in vals})
    cols = min(3, len(metrics))
    rows = (len(metrics) + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for task in sorted({t for t, m in series if m == metric}):
            pts = sorted(series[(task, metric)].items())
            ax.plot([r for r, _ in pts], [v for _, v in pts], marker="o", label=task)
        if is_judge_metric(metric):
            ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(metric)
        ax.set_xlabel("round")
        ax.set_xticks(all_rounds)
        ax.set_xlim(all_rounds[0] - 0.3, all_rounds[-1] + 0.3)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    out = Path(out_path) if out_path is not None else RunDir(run_dir).curves
    fig.savefig(out, dpi=110)
    return out


# --- HTML -----------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.up{color:#1a7f37}.down{color:#c62828}
.reg{background:#fdecea;font-weight:bold}.flat{color:#888}.warn{color:#c62828}
pre{background:#f7f7f7;padding:0.8em;overflow:auto}img{max-width:100%}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _cell(value: float | None, prev: float | None, threshold: float) -> str:
    if value is None:
        return "<td class='flat'>-</td>"
    if prev is None:
        return f"<td>{value:.3f}</td>"
    delta = value - prev
    cls = "up" if delta > 1e-12 else "down" if delta < -1e-12 else "flat"
    reg = " reg" if -delta > threshold else ""
    flag = " &#9888;" if reg else ""
    return f"<td class='{cls}{reg}'>{value:.3f} <small>({delta:+.3f})</small>{flag}</td>"


def _task_tables(series: Series, rounds: list[int], threshold: float) -> str:
    parts = []
    metrics = sorted({m for _, m in series if not is_judge_metric(m)}, key=_metric_order)
    for metric in metrics:
        head = "".join(f"<th>round {r}</th>" for r in rounds)
        body = []
        for task in sorted({t for t, m in series if m == metric}):
            vals = series[(task, metric)]
            cells, prev = [], None
            for r in rounds:
                v = vals.get(r)
                cells.append(_cell(v, prev, threshold))
                prev = v if v is not None else prev
            body.append(f"<tr><td class='l'>{_esc(task)}</td>{''.join(cells)}</tr>")
        parts.append(f"<h3>{_esc(metric)}</h3><table><tr><th class='l'>task</th>{head}</tr>{''.join(body)}</table>")
    return "".join(parts)


def _judge_table(evals: dict[int, dict[str, Any]]) -> str:
    rows = []
    for r, ev in sorted(evals.items()):
        for judge, per_task in sorted(ev.get("judges", {}).items()):
            for task, m in sorted(per_task.items()):
                lift = m.get("selection_lift", 0.0)
                verdict = "no better than random" if abs(lift) < 0.01 else ("worse than random" if lift < 0 else "")
                cls = "up" if lift >= 0.01 else "warn"
                rows.append(
                    f"<tr><td>{r}</td><td class='l'>{_esc(judge)}</td><td class='l'>{_esc(task)}</td>"
                    f"<td>{m.get('selection_accuracy', 0):.3f}</td><td>{m.get('random_accuracy', 0):.3f}</td>"
                    f"<td class='{cls}'>{lift:+.3f}</td><td>{m.get('oracle_accuracy', 0):.3f}</td>"
                    f"<td>{m.get('coverage', 0):.2f}</td><td>{int(m.get('errors', 0))}</td>"
                    f"<td>{int(m.get('prompts', 0))}</td><td class='l warn'>{verdict}</td></tr>"
                )
    if not rows:
        return "<p>No judge measurements (they need a round's candidates and verdicts with references).</p>"
    head = ("<tr><th>round</th><th class='l'>judge</th><th class='l'>task</th><th>selection acc.</th>"
            "<th>random acc.</th><th>lift</th><th>oracle acc.</th><th>coverage</th><th>errors</th>"
            "<th>prompts</th><th class='l'></th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _examples(evals: dict[int, dict[str, Any]]) -> str:
    parts = []
    for r, ev in sorted(evals.items()):
        ex = ev.get("examples", [])
        if not ex:
            continue
        rows = "".join(
            f"<tr><td class='l'>{_esc(e.get('task'))}</td><td class='l'>{_esc(e.get('prompt'))}</td>"
            f"<td class='l'>{_esc(e.get('reference'))}</td><td class='l'><pre>{_esc(e.get('answer'))}</pre></td>"
            f"<td class='l'>{_esc(e.get('extracted'))}</td>"
            f"<td class='{'up' if e.get('correct') else 'down'}'>{'&#10003;' if e.get('correct') else '&#10007;'}</td>"
            "</tr>"
            for e in ex
        )
        parts.append(
            f"<details><summary>round {r}: {len(ex)} greedy answers</summary><table><tr><th class='l'>task</th>"
            f"<th class='l'>prompt</th><th class='l'>reference</th><th class='l'>answer</th>"
            f"<th class='l'>extracted</th><th>ok</th></tr>{rows}</table></details>"
        )
    return "".join(parts) or "<p>No examples recorded.</p>"


def _counts(evals: dict[int, dict[str, Any]]) -> str:
    rows = [
        f"<tr><td>{r}</td><td class='l'>{_esc(task)}</td><td>{c.get('prompts', 0)}</td>"
        f"<td>{c.get('unverifiable', 0)}</td><td class='{'warn' if c.get('verifier_errors') else ''}'>"
        f"{c.get('verifier_errors', 0)}</td></tr>"
        for r, ev in sorted(evals.items())
        for task, c in sorted(ev.get("counts", {}).items())
    ]
    if not rows:
        return ""
    return ("<h2>Eval prompts and verifier errors</h2><table><tr><th>round</th><th class='l'>task</th>"
            f"<th>prompts</th><th>unverifiable</th><th>verifier errors</th></tr>{''.join(rows)}</table>")


def _training(run: RunDir) -> str:
    rows = []
    for rd in run.rounds():
        marker = rd.model / COMPLETE
        if marker.is_file():
            s = read_json(marker)
            loss = (f"{s['first_loss']:.3f} -> {s['final_loss']:.3f}"
                    if s.get("first_loss") is not None and s.get("final_loss") is not None else "-")
            rows.append(f"<tr><td>{rd.index}</td><td class='l'>{_esc(s.get('method'))}</td><td>{s.get('rows')}</td>"
                        f"<td>{s.get('steps')}</td><td>{loss}</td><td class='l'>{_esc(s.get('saved'))}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Training</h2><table><tr><th>round</th><th class='l'>method</th><th>rows</th><th>steps</th>"
            f"<th>loss first -> final</th><th class='l'>saved</th></tr>{''.join(rows)}</table>")


def read_evals(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """Each round's eval.json, by round."""
    return {rd.index: read_json(rd.eval) for rd in RunDir(run_dir).rounds() if rd.eval.is_file()}


def write_report(run_dir: str | Path, threshold: float | None = None) -> Path:
    """Write `curves.png` and a self-contained `report.html` (images inlined); returns the HTML path."""
    run = RunDir(run_dir)
    thr = _threshold(run.path, threshold)
    series = _series(read_metrics(run.path))
    rounds = sorted({r for vals in series.values() for r in vals})
    evals = read_evals(run.path)
    warnings = regressions(run.path, thr)
    curves = plot_curves(run.path)
    img = ""
    if curves is not None:
        img = "<h2>Curves</h2><img alt='curves' src='data:image/png;base64," + base64.b64encode(
            curves.read_bytes()).decode("ascii") + "'>"
    warn_html = (
        "<ul>" + "".join(f"<li class='warn'>{_esc(w)}</li>" for w in warnings) + "</ul>"
        if warnings else f"<p class='up'>No task fell by more than {thr:g} between rounds.</p>"
    )
    recipe = ""
    if run.recipe.is_file():
        recipe = f"<details><summary>recipe</summary><pre>{_esc(run.recipe.read_text(encoding='utf-8'))}</pre></details>"
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>thresher report: {_esc(run.path.name)}</title>"
        f"<style>{_CSS}</style></head><body><h1>thresher report: {_esc(run.path.name)}</h1>{recipe}"
        f"<h2>Regressions (threshold {thr:g})</h2>{warn_html}"
        f"<h2>Per task, round by round</h2>{_task_tables(series, rounds, thr) or '<p>No metrics yet.</p>'}"
        f"{img}<h2>Judges: selection accuracy and lift against the oracle</h2>{_judge_table(evals)}"
        f"{_training(run)}{_counts(evals)}<h2>Sampled examples</h2>{_examples(evals)}"
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
    for task in sorted({t for t, m in series if m == metric}):
        vals, prev, cells = series[(task, metric)], None, []
        for r in rounds:
            v = vals.get(r)
            if v is None:
                cells.append("-")
                continue
            if prev is None:
                cells.append(f"{v:.3f}")
            else:
                d = v - prev
                style = "red bold" if -d > thr else "green" if d > 0 else "red" if d < 0 else "dim"
                cells.append(f"{v:.3f} [{style}]({d:+.3f})[/{style}]")
            prev = v
        table.add_row(task, *cells)
    console.print(table)
    for line in regressions(run_dir, thr):
        console.print(line, style="red", markup=False, highlight=False)
