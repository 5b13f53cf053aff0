"""The report's figures: per-task curves round by round, and each judge's best-of-N curve.

Legends sit below the panels, outside every axes (one legend per figure,
since every panel draws the same tasks or the same judges), so they never
hide a curve however the lines fall. A task's 95% interval is an error bar at
each round; the other arm of a main / control pair is drawn dashed in
the same colour as its task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BON_FILE = "best_of_n.png"

Series = dict[tuple[str, str], dict[int, dict[str, Any]]]
"""(task, metric) -> {round: metrics.jsonl row}."""


def _figure(panels: int, width: float = 4.2, height: float = 3.2) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    cols = min(3, panels)
    rows = (panels + cols - 1) // cols
    fig = Figure(figsize=(width * cols, height * rows + 0.6), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def _legend_below(fig: Any, handles: list[Any], labels: list[str], columns: int) -> None:
    """One legend for the figure, below every panel (two entries per panel column in a row)."""
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 2 * columns),
                   fontsize="small", frameon=False)


def plot_curves(
    series: Series, metrics: list[str], out_path: str | Path, label: str, other: Series | None = None,
    other_label: str | None = None, zero_line: Any = None,
) -> Path | None:
    """One panel per metric, one line per task across rounds (with its interval); None without metrics."""
    if not metrics:
        return None
    out = Path(out_path)
    curves_figure(series, metrics, label, other, other_label, zero_line).savefig(out, dpi=110)
    return out


def curves_figure(
    series: Series, metrics: list[str], label: str, other: Series | None = None, other_label: str | None = None,
    zero_line: Any = None,
) -> Any:
    """The figure `plot_curves` saves."""
    from matplotlib.lines import Line2D

    rounds = sorted({r for s in (series, other or {}) for key, vals in s.items() if key[1] in metrics for r in vals})
    tasks = sorted({t for t, m in series if m in metrics})
    colours = {t: f"C{i % 10}" for i, t in enumerate(tasks)}
    fig, axes = _figure(len(metrics))
    for ax, metric in zip(axes, metrics):
        for i, task in enumerate(tasks):
            shift = (i - (len(tasks) - 1) / 2) * 0.04  # tasks side by side, so one round's intervals do not hide
            pts = sorted(series.get((task, metric), {}).items())
            if pts:
                ax.plot([r + shift for r, _ in pts], [p["value"] for _, p in pts], marker="o", color=colours[task])
                bars = [(r + shift, p["value"], p["ci"]) for r, p in pts if p.get("ci")]
                if bars:
                    ax.errorbar([x for x, _, _ in bars], [v for _, v, _ in bars],
                                yerr=[[v - c[0] for _, v, c in bars], [c[1] - v for _, v, c in bars]],
                                fmt="none", ecolor=colours[task], alpha=0.6, capsize=3)
            if other is not None:
                opts = sorted(other.get((task, metric), {}).items())
                if opts:
                    ax.plot([r + shift for r, _ in opts], [p["value"] for _, p in opts], marker="x", linestyle="--",
                            color=colours[task])
        if zero_line is not None and zero_line(metric):
            ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(metric)
        ax.set_xlabel("round")
        if rounds:
            ax.set_xticks(rounds)
            ax.set_xlim(rounds[0] - 0.3, rounds[-1] + 0.3)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colours[t], marker="o") for t in tasks]
    labels = list(tasks)
    if other is not None:
        handles += [Line2D([], [], color="black", marker="o"), Line2D([], [], color="black", marker="x", linestyle="--")]
        labels += [f"{label} (bars: 95% interval)", other_label or "other arm"]
    _legend_below(fig, handles, labels, min(3, len(metrics)))
    return fig


def plot_best_of_n(judges: dict[str, dict[str, Any]], out_path: str | Path, title: str = "") -> Path | None:
    """One panel per task: each judge's best-of-N accuracy beside majority vote, a random pick and the oracle.

    `judges` is one round's eval.json "judges" entry; None when no judge has a curve.
    """
    fig = best_of_n_figure(judges, title)
    if fig is None:
        return None
    out = Path(out_path)
    fig.savefig(out, dpi=110)
    return out


def best_of_n_figure(judges: dict[str, dict[str, Any]], title: str = "") -> Any:
    """The figure `plot_best_of_n` saves, or None."""
    from matplotlib.lines import Line2D

    tasks = sorted({t for per_task in judges.values() for t, m in per_task.items() if m.get("best_of_n")})
    if not tasks:
        return None
    names = sorted(j for j, per_task in judges.items() if any(m.get("best_of_n") for m in per_task.values()))
    colours = {j: f"C{i % 10}" for i, j in enumerate(names)}
    fig, axes = _figure(len(tasks), width=4.0, height=3.0)
    for ax, task in zip(axes, tasks):
        base = None
        for j in names:
            curve = judges[j].get(task, {}).get("best_of_n")
            if curve:
                base = curve
                ax.plot(curve["n"], curve["judge"], marker="o", color=colours[j], zorder=3)
        if base is not None:
            if base.get("majority") is not None:
                ax.plot(base["n"], base["majority"], color="black", linestyle="--", marker="s", markersize=4)
            ax.plot(base["n"], base["random"], color="grey", linestyle=":")
            # wide and pale, under the judges: a judge as good as the oracle runs along it and both stay visible
            ax.plot(base["n"], base["oracle"], color="green", linestyle="-.", linewidth=3.5, alpha=0.45, zorder=1)
            ax.set_xscale("log", base=2)
            ax.set_xticks(base["n"], [str(n) for n in base["n"]])
            ax.set_title(f"{task} ({base.get('prompts', '?')} prompts)")
        ax.set_xlabel("N (candidates per prompt)")
        ax.set_ylabel("accuracy of the pick")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colours[j], marker="o") for j in names]
    labels = [f"judge {j}" for j in names]
    handles += [Line2D([], [], color="black", linestyle="--", marker="s", markersize=4),
                Line2D([], [], color="grey", linestyle=":"),
                Line2D([], [], color="green", linestyle="-.", linewidth=3.5, alpha=0.45)]
    labels += ["majority vote", "random pick", "oracle (pass@N)"]
    _legend_below(fig, handles, labels, min(3, len(tasks)))
    if title:
        fig.suptitle(title)
    return fig
