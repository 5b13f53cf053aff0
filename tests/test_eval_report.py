"""Report from crafted run directories: metrics rows, interval-aware regressions, both arms, exports, examples, plots."""

from __future__ import annotations

import io
import json
import re

import pytest

from thresher.eval.report import (
    append_round_metrics,
    metric_rows,
    print_table,
    read_metrics,
    regressions,
    write_report,
)
from thresher.eval.report_data import partner_arm, training_examples
from thresher.records import Candidate, Prompt, Verdict, write_jsonl
from thresher.store import RunDir, ShardedJsonl, write_json

BON = {"n": [1, 2, 4], "judge": [0.4, 0.55, 0.7], "majority": [0.4, 0.5, 0.65], "random": [0.4, 0.4, 0.4],
       "oracle": [0.4, 0.64, 0.87], "prompts": 40}
EVALS = {
    0: {"tasks": {"addition": {"pass@1": 0.20, "pass@1_ci": [0.10, 0.30], "pass@4": 0.40, "prompts": 100},
                  "multiplication": {"pass@1": 0.30, "pass@1_ci": [0.21, 0.39], "pass@4": 0.50, "prompts": 100},
                  "subtraction": {"pass@1": 0.30, "pass@1_ci": [0.21, 0.39], "pass@4": 0.50, "prompts": 100}}},
    1: {"tasks": {"addition": {"pass@1": 0.45, "pass@1_ci": [0.35, 0.55], "pass@4": 0.60, "prompts": 100},
                  "multiplication": {"pass@1": 0.40, "pass@1_ci": [0.30, 0.50], "pass@4": 0.55, "prompts": 100},
                  "subtraction": {"pass@1": 0.50, "pass@1_ci": [0.38, 0.62], "pass@4": 0.55, "prompts": 100}},
        "judges": {"rm": {"addition": {"selection_accuracy": 0.5, "random_accuracy": 0.5, "selection_lift": 0.0,
                                       "selection_lift_ci": [-0.04, 0.04], "oracle_accuracy": 0.9, "coverage": 1.0,
                                       "errors": 0.0, "prompts": 40.0, "length_bias": 0.83, "length_pairs": 12,
                                       "score_length_corr": 0.61, "best_of_n": BON}},
                   "math": {"addition": {"selection_accuracy": 0.9, "random_accuracy": 0.5, "selection_lift": 0.4,
                                         "selection_lift_ci": [0.31, 0.49], "oracle_accuracy": 0.9, "coverage": 1.0,
                                         "errors": 2.0, "prompts": 40.0, "length_bias": None, "length_pairs": 0,
                                         "score_length_corr": None, "best_of_n": {**BON, "judge": BON["oracle"]}}},
                   "pair": {"addition": {"selection_accuracy": 0.6, "random_accuracy": 0.5, "selection_lift": 0.1,
                                         "oracle_accuracy": 0.9, "coverage": 0.9, "errors": 4.0, "prompts": 40.0,
                                         "parse_failure_rate": 0.125, "position_bias": 0.25}}}},
    2: {"tasks": {"addition": {"pass@1": 0.60, "pass@1_ci": [0.50, 0.70], "pass@4": 0.70, "prompts": 100},
                  # -0.15: below round 1's interval; subtraction's -0.08 stays inside its interval
                  "multiplication": {"pass@1": 0.25, "pass@1_ci": [0.17, 0.33], "pass@4": 0.56, "prompts": 100},
                  "subtraction": {"pass@1": 0.42, "pass@1_ci": [0.32, 0.52], "pass@4": 0.58, "prompts": 100}},
        "examples": [{"task": "addition", "prompt": "What is 2 + <3>?", "reference": "5", "answer": "The answer is 5",
                      "extracted": "5", "correct": True}]},
}
CONTROL = {0: EVALS[0]["tasks"],
           2: {"addition": {"pass@1": 0.41, "pass@1_ci": [0.32, 0.49], "prompts": 100},
               "multiplication": {"pass@1": 0.22, "pass@1_ci": [0.14, 0.30], "prompts": 100},
               "subtraction": {"pass@1": 0.40, "pass@1_ci": [0.30, 0.50], "prompts": 100}}}


def _finished_export(rd, summary: dict) -> None:
    """The export stage's marker as the runner leaves it after a finished export."""
    from thresher.runner import MARKER_VERSION

    write_json(rd.marker("export"), {"version": MARKER_VERSION, "stage": "export", "finished": True,
                                     "fingerprint": summary.get("fingerprint", "f0"), "parts": {},
                                     "summary": summary})


def _export_round(rd) -> dict[str, str]:
    """Round 2's training data: prompt A kept its right answer, prompt B kept nothing; returns the planted texts."""
    a = Prompt.create("addition", [{"role": "user", "content": "What is 17 + 25?"}], reference="42")
    b = Prompt.create("addition", [{"role": "user", "content": "What is 38 + 47?"}], reference="85")
    write_jsonl(rd.prompts, [a, b])
    texts = {"a0": "7+5=12, 1+2+1=4, so 42", "a1": "7+5=12, 1+2=3, so 32", "b0": "8+7=15, so 75", "b1": "so 95"}
    cands = [Candidate(p.id, "teacher" if i == 0 else "student", i, texts[f"{k}{i}"], 9)
             for p, k in ((a, "a"), (b, "b")) for i in range(2)]
    with ShardedJsonl(rd.candidates, Candidate, shard_size=3).writer() as w:
        w.write_many(cands)
    right = {cands[0].id}
    verdicts = [Verdict(c.id, "math", score=float(c.id in right), correct=c.id in right,
                        critique=f"Extracted {c.text[-2:]}; planted critique of {c.model} {c.index}") for c in cands]
    verdicts += [Verdict(c.id, "rm", score=0.1 * i) for i, c in enumerate(cands)]
    with ShardedJsonl(rd.verdicts, Verdict, shard_size=5).writer() as w:
        w.write_many(verdicts)
    write_jsonl(rd.sft, [{"messages": [*a.messages, {"role": "assistant", "content": texts["a0"]}],
                          "prompt_id": a.id, "task": "addition", "candidate_id": cands[0].id}])
    write_jsonl(rd.critique_sft, [{"messages": [{"role": "user", "content": "judge"},
                                                {"role": "assistant", "content": "Candidate 1 is right: planted row."}],
                                   "prompt_id": a.id, "task": "addition"}])
    _finished_export(rd, {
        "policy": "gated", "prompts": 2, "prompts_passed": 1,
        "no_pass": {"count": 1, "reasons": {"no_verified": 1}, "prompt_ids": [b.id]},
        "candidates": {"read": 4, "filtered": {"truncated": 3}},
        "exports": {"sft": {"rows": 1, "dropped": {"contaminated": 2, "near_duplicate": 7}},
                    "critique_sft": {"rows": 1, "dropped": {"too_long": 5}}},
        "contamination": {"checked": True, "eval_prompts": 400, "prompts": 1, "rows": {"sft": 2}},
        "fingerprint": "f1",
    })
    return texts


@pytest.fixture
def run_dir(tmp_path):
    run = RunDir(tmp_path / "run")
    for r, ev in EVALS.items():
        write_json(run.round(r).eval, ev)
        append_round_metrics(run.path, r, ev)
    run.recipe.write_text("name: run\neval:\n  regression_threshold: 0.05\n", encoding="utf-8")
    return run


@pytest.fixture
def arms(run_dir):
    """The run above plus a control arm next to it (`run-control`) and round 2's training data."""
    control = RunDir(run_dir.path.with_name("run-control"))
    for r, tasks in CONTROL.items():
        append_round_metrics(control.path, r, {"tasks": tasks})
    _finished_export(control.round(2), {
        "policy": "random", "prompts": 2, "prompts_passed": 2, "no_pass": {"count": 0, "reasons": {}},
        "exports": {"sft": {"rows": 4, "dropped": {}}}, "contamination": {"checked": False}})
    texts = _export_round(run_dir.round(2))
    return run_dir, control, texts


def test_metric_rows_carry_intervals_and_prompt_counts():
    rows = metric_rows(1, EVALS[1])
    assert {"round": 1, "task": "addition", "metric": "pass@1", "value": 0.45, "ci": [0.35, 0.55],
            "prompts": 100} in rows
    assert {"round": 1, "task": "addition", "metric": "pass@4", "value": 0.60, "prompts": 100} in rows
    assert {"round": 1, "task": "addition", "metric": "selection_lift/math", "value": 0.4, "ci": [0.31, 0.49],
            "prompts": 40} in rows
    assert {"round": 1, "task": "addition", "metric": "selection_accuracy/rm", "value": 0.5, "prompts": 40} in rows
    assert len(rows) == 3 * 2 + 3 * 2  # 3 tasks x (pass@1, pass@4); 3 judges x 2 selection metrics


def test_appending_a_round_again_replaces_its_rows(run_dir):
    before = len(read_metrics(run_dir.path))
    append_round_metrics(run_dir.path, 2, EVALS[2])
    rows = read_metrics(run_dir.path)
    assert len(rows) == before
    assert [r["value"] for r in rows if (r["round"], r["task"], r["metric"]) == (2, "multiplication", "pass@1")] == [0.25]


def test_a_regression_is_flagged_only_outside_the_previous_interval(run_dir):
    lines = regressions(run_dir.path, threshold=0.05)
    assert lines == [("warning: task multiplication pass@1 fell 0.400 -> 0.250 (-0.150, below round 1's 95% "
                      "interval [0.300, 0.500] of 100 prompts) from round 1 to round 2")]
    assert regressions(run_dir.path, threshold=0.2) == []
    # subtraction fell 0.08 (more than 0.05) but stayed inside [0.38, 0.62]; pass@4 has no interval, so its
    # threshold alone decides: it rose everywhere
    assert not any("subtraction" in line or "pass@4" in line for line in regressions(run_dir.path, threshold=0.0))
    assert regressions(run_dir.path, threshold=0.0, metrics=["pass@1"]) == lines


def test_report_shows_both_arms_exports_training_examples_intervals_and_the_viewer(arms):
    run, control, texts = arms
    assert partner_arm(run.path) == control.path.resolve() and partner_arm(control.path) == run.path.resolve()
    text = write_report(run.path).read_text(encoding="utf-8")
    assert f"thresher view {run.path} {control.path.resolve()}" in text
    # both arms, side by side: round 2 addition 0.600 against the control's 0.410, intervals apart
    assert "run beside run-control" in text
    assert "0.600 / 0.410 <span class='up'>(<b>+0.190</b>)</span>" in text
    assert "0.420 / 0.400 <span class='up'>(+0.020)</span>" in text  # subtraction: intervals overlap
    # per-task metrics with their intervals and prompt counts; the flagged regression only
    assert "0.250 <small>(-0.150)</small> &#9888;<br><small class='ci'>[0.170, 0.330]</small>" in text
    assert "0.420 <small>(-0.080)</small><br><small class='ci'>[0.320, 0.520]</small>" in text
    assert "<td>100</td>" in text
    # export kept / dropped by reason, both arms, contamination
    assert "no_verified 1" in text and "truncated 3" in text
    assert "sft: contaminated 2, near_duplicate 7" in text and "critique_sft: too_long 5" in text
    assert "2 rows of 1 prompts (eval prompts: 400)" in text and "not checked" in text
    assert "<td class='l'>run-control</td><td>2</td><td class='l'>random</td>" in text
    # training candidates, kept and rejected, with verdicts and critiques
    for t in texts.values():
        assert t in text
    assert "planted critique of teacher 0" in text and "planted critique of student 1" in text
    assert "Candidate 1 is right: planted row." in text
    assert "addition: kept" in text and "addition: nothing kept (no_verified)" in text
    # judges: lift intervals, length bias, LLM judge rates, best-of-N figure and numbers
    assert "+0.400 <small class='ci'>[+0.310, +0.490]</small>" in text
    assert "not shown better than random" in text  # rm's interval holds 0
    assert "0.83 <small>(12 pairs)</small>" in text and "12.5%" in text and "25.0%" in text
    assert "best-of-N curves" in text and (run.path / "best_of_n.png").is_file()
    assert "<td class='l'>majority vote</td><td>0.400</td><td>0.500</td><td>0.650</td>" in text
    # the old contents stay
    assert "What is 2 + &lt;3&gt;?" in text and "regression_threshold: 0.05" in text
    assert "data:image/png;base64," in text
    # the control arm's own report shows the main arm beside it
    assert "run-control beside run" in write_report(control.path).read_text(encoding="utf-8")
    assert "run beside run-control" not in write_report(run.path, compare=False).read_text(encoding="utf-8")


def test_training_examples_are_cached_by_the_export_fingerprint(arms):
    run, _, _ = arms
    rd = run.round(2)
    first = training_examples(rd.path)
    assert [e["status"] for e in first] == ["kept", "nothing kept"]
    assert [c["kept"] for c in first[0]["candidates"]] == [False, True]  # student 1 wrong, teacher 0 kept
    cache = rd.path / "report_examples.json"
    assert json.loads(cache.read_text())["fingerprint"] == "f1"
    for shard in rd.candidates.glob("*.jsonl"):
        shard.unlink()  # the cache answers without the shards ...
    assert training_examples(rd.path) == first
    from thresher.eval.report_data import export_summary

    _finished_export(rd, {**export_summary(rd.path), "fingerprint": "f2"})
    assert all(e["candidates"] == [] for e in training_examples(rd.path))  # ... until the export changes


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_legends_sit_outside_every_panel(arms):
    from thresher.eval.report import _plotted, _series, is_judge_metric
    from thresher.eval.report_plots import best_of_n_figure, curves_figure

    run, control, _ = arms
    series = _series(read_metrics(run.path))
    figs = [curves_figure(series, _plotted(series), "run", _series(read_metrics(control.path)), "run-control",
                          is_judge_metric),
            best_of_n_figure(EVALS[1]["judges"])]
    for fig in figs:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()  # lays out the constrained layout, as saving does
        renderer = canvas.get_renderer()
        (legend,) = fig.legends
        box = legend.get_window_extent(renderer)
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert axes and not any(_overlaps(box, ax.get_window_extent(renderer)) for ax in axes)


def test_print_table_shows_deltas_prompts_and_warnings(run_dir):
    from rich.console import Console

    buf = io.StringIO()
    print_table(run_dir.path, console=Console(file=buf, width=140, color_system=None))
    out = buf.getvalue()
    assert "multiplication" in out and "round 2" in out and "prompts" in out
    assert "0.600 (+0.150)" in out and "0.250 (-0.150)" in out
    assert "warning: task multiplication pass@1 fell" in out


def test_report_command(arms, capsys):
    from thresher.cli import main

    run, control, _ = arms
    assert main(["report", str(run.path), "--compare", str(control.path)]) == 0
    out = capsys.readouterr().out
    assert "warning: task multiplication pass@1 fell" in out and "report.html" in out
    assert run.report.is_file() and run.curves.is_file()
    assert main(["report", str(run.path / "nope")]) == 2
    assert main(["report", str(run.path), "--compare", str(run.path / "nope")]) == 2


def test_report_embeds_the_metrics_as_json(run_dir):
    text = write_report(run_dir.path).read_text(encoding="utf-8")
    blob = re.search(r"<script type='application/json' id='metrics'>(.*?)</script>", text, re.DOTALL).group(1)
    assert json.loads(blob) == read_metrics(run_dir.path)  # "<\/" is a valid JSON escape
