"""The judge experiment's three arms and the table that compares them (`thresher quickstart --judge`).

All three arms sample the same pool (teacher, trained student, second
student) on the same prompts and train the same student for the same rounds;
they differ only in how a prompt's winner is chosen and what is trained on:

- (a) `judge`:    the tiny LLM judge's pick (listwise best of N), SFT on the winners;
- (b) `critique`: as (a), plus critique-SFT rows that are the judge's own
                  exchanges: its prompt and its verdict, verbatim, right or wrong;
- (c) `random`:   one candidate per prompt at random (the control; no judge runs).

No verifier selects anything; the math verifier grades eval only, and the
eval stage measures the judge's picks against it (accuracy of its pick,
selection lift with its interval). The table puts, per task and round,
held-out pass@1 of the three arms beside the judge's figures and the
student's own judging accuracy (eval task `judge`, in the listwise format)
in (b) against (a).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from thresher.config import Recipe, load_recipe
from thresher.records import Prompt, Verdict
from thresher.store import RunDir, read_json, read_records

JUDGE_RECIPE = Path(__file__).with_name("quickstart-judge.yaml")
"""The judge experiment's recipe (arm a) shipped with the package; `recipes/quickstart-judge.yaml` is the same file."""
ARMS = ("judge", "critique", "random")
"""Arm (a), (b) and (c), in the order the table shows them."""
CRITIQUE_ROWS = 300
"""Critique rows arm (b) trains on per round: a judge exchange is ten times an answer's tokens, so all of
them would turn the student into a judge of long prompts rather than a solver; 300 stay a minority."""


def judge_recipes(
    out_dir: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> dict[str, Recipe]:
    """The three arms: arm -> recipe, from the packaged judge recipe with `overrides` applied to all.

    Arms (b) and (c) are the same file with a few more overrides, so they are
    parsed and checked exactly as the user's own `--set` values are.
    """
    base = list(overrides or [])
    a = load_recipe(JUDGE_RECIPE, base)
    judge = a.selection.args.judge or "tiny_judge"
    b = load_recipe(JUDGE_RECIPE, [
        *base, f"name={a.name}-critique", "export.critique=true", f"export.args.critique.judge={judge}",
        f"export.args.mix=[{{target: critique_sft, sources: [], total: {CRITIQUE_ROWS}}}]",
        f"train.data=[{', '.join([*a.train.data, 'critique_sft'])}]",
    ])
    c = load_recipe(JUDGE_RECIPE, [*base, f"name={a.name}-random", "judges=[]", "selection={policy: random, args: {k: 1}}"])
    arms = {"judge": a, "critique": b, "random": c}
    if out_dir is not None:
        arms = {k: replace(r, out_dir=str(out_dir)) for k, r in arms.items()}
    return arms


def _eval(run_dir: Path, k: int) -> dict[str, Any]:
    path = RunDir(run_dir).round(k).eval
    return read_json(path) if path.is_file() else {}


def parse_failures(run_dir: Path, k: int, judge: str) -> dict[str, dict[str, int]]:
    """task -> {"prompts": judged, "failed": whose verdicts are errors} for one round's listwise judge."""
    rd = RunDir(run_dir).round(k)
    if not rd.prompts.is_file() or not rd.verdicts.exists():
        return {}
    task_of = {p.id: p.task for p in read_records(rd.prompts, Prompt)}
    failed: dict[str, bool] = {}
    for v in read_records(rd.verdicts, Verdict):
        if v.judge == judge:
            failed[v.prompt_id] = failed.get(v.prompt_id, False) or v.error is not None
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for pid, bad in failed.items():
        out[task_of[pid]]["prompts"] += 1
        out[task_of[pid]]["failed"] += int(bad)
    return {t: dict(c) for t, c in out.items()}


def judge_comparison(dirs: dict[str, Path], judge: str = "tiny_judge") -> dict[str, Any]:
    """Per task and round: pass@1 of each arm, the judge's figures in arms (a) and (b), the student as a judge."""
    rounds = sorted({int(p.name.split("_")[1]) for p in RunDir(dirs["judge"]).path.glob("round_*")
                     if (p / "eval.json").is_file()})
    evals = {arm: {k: _eval(d, k) for k in rounds} for arm, d in dirs.items()}
    tasks = sorted(t for t in evals["judge"].get(0, {}).get("tasks", {}) if t != "judge")
    rows = []
    for task in tasks:
        for k in rounds:
            row: dict[str, Any] = {"task": task, "round": k, "pass@1": {}, "pass@1_ci": {}, "judging": {}}
            for arm in ARMS:
                m = evals.get(arm, {}).get(k, {}).get("tasks", {})
                row["pass@1"][arm] = m.get(task, {}).get("pass@1")
                row["pass@1_ci"][arm] = m.get(task, {}).get("pass@1_ci")
                row["judging"][arm] = m.get("judge", {}).get(f"pass@1[{task}]")
            for arm in ("judge", "critique"):
                j = evals.get(arm, {}).get(k, {}).get("judges", {}).get(judge, {}).get(task)
                fails = parse_failures(dirs[arm], k, judge).get(task) if k > 0 and arm in dirs else None
                row[arm] = None if j is None else {
                    "accuracy": j.get("selection_accuracy"), "random": j.get("random_accuracy"),
                    "lift": j.get("selection_lift"), "lift_ci": j.get("selection_lift_ci"),
                    "parse_failure_rate": None if not fails else fails["failed"] / fails["prompts"],
                    "prompts": None if not fails else fails["prompts"],
                }
            rows.append(row)
    last = rounds[-1] if rounds else 0
    judged = [r["judge"] for r in rows if r["round"] > 0 and r.get("judge")]
    failures = [parse_failures(dirs[arm], k, judge) for arm in ("judge", "critique") if arm in dirs
                for k in rounds if k > 0]
    total = sum(c["prompts"] for f in failures for c in f.values())
    failed = sum(c["failed"] for f in failures for c in f.values())
    return {
        "rounds": rounds,
        "last_round": last,
        "judge": judge,
        "rows": rows,
        "parse_failure_rate": failed / total if total else None,
        "judged_prompts": total,
        "judge_beats_random": bool(judged) and all((r["lift"] or 0) > 0 for r in judged),
        # an interval's lower end within rounding of zero (a bootstrap sum can land at 1e-17) is not above it
        "lift_ci_above_zero": sum(1 for r in judged if r["lift_ci"] and r["lift_ci"][0] > 1e-9),
        "lift_cis": len(judged),
    }


def write_comparison(cmp: dict[str, Any], out_dir: Path) -> Path:
    """The table's numbers as JSON beside the run directories (what the READMEs' table is made from)."""
    from thresher.store import write_json

    path = Path(out_dir) / "quickstart-judge-comparison.json"
    write_json(path, cmp)
    return path


def print_judge_comparison(cmp: dict[str, Any], console: Any = None) -> None:
    """The judge experiment's tables, one row per task and round: the arms, then the judge against the oracle."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=max(110, Console().width))

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    def lift(j: dict[str, Any] | None) -> str:
        if not j or j.get("lift") is None:
            return "-"
        ci = j.get("lift_ci")
        return f"{j['lift']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")

    arms = Table(title="held-out pass@1 (%) by arm, and the trained student's own judging accuracy (%)")
    for col in ("task", "round", "(a) pick", "(b) +reasoning", "(c) random", "judging (a)", "judging (b)"):
        arms.add_column(col, justify="left" if col == "task" else "right", no_wrap=True)
    judge = Table(title=f"the LLM judge {cmp['judge']} against the oracle, arm (a) (%, lift in points / 100)")
    for col in ("task", "round", "pick right", "random right", "lift [95% CI]", "unparseable"):
        judge.add_column(col, justify="left" if col == "task" else "right", no_wrap=True)
    for r in cmp["rows"]:
        arms.add_row(r["task"], str(r["round"]), *[pct(r["pass@1"][arm]) for arm in ARMS],
                     pct(r["judging"]["judge"]), pct(r["judging"]["critique"]))
        j = r.get("judge")
        if j:
            judge.add_row(r["task"], str(r["round"]), pct(j["accuracy"]), pct(j["random"]), lift(j),
                          pct(j["parse_failure_rate"]))
    console.print(arms)
    console.print(judge)
    rate = cmp["parse_failure_rate"]
    console.print(
        f"judge {cmp['judge']}: {cmp['judged_prompts']} listwise verdicts in arms (a) and (b), "
        f"{'-' if rate is None else f'{100 * rate:.1f}%'} unparseable (counted as errors, never scored); "
        f"picks better than random on every task and round of arm (a): {'yes' if cmp['judge_beats_random'] else 'NO'} "
        f"(lift's 95% interval above zero on {cmp['lift_ci_above_zero']} of {cmp['lift_cis']})",
        highlight=False,
    )
    console.print(
        "(a) the judge's pick, SFT on it; (b) the same plus its verdicts as critique-SFT; (c) a random pick. "
        "pick right: how often the judge's pick is right (oracle: the math verifier, which selects nothing); "
        "random right: a random candidate's; lift: the difference. judging: the student, asked the judge's own "
        "listwise prompt, names a right answer (eval task `judge`).",
        highlight=False, style="dim",
    )
