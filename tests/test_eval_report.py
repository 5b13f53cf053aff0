"""Report from a crafted run directory: metrics rows, regression warnings, curves.png, report.html, table."""

from __future__ import annotations

import io

import pytest

from thresher.eval.report import (
    append_round_metrics,
    metric_rows,
    print_table,
    read_metrics,
    regressions,
    write_report,
)
from thresher.store import RunDir, write_json

EVALS = {
    0: {"tasks": {"addition": {"pass@1": 0.20, "pass@4": 0.40}, "multiplication": {"pass@1": 0.30, "pass@4": 0.50}}},
    1: {"tasks": {"addition": {"pass@1": 0.45, "pass@4": 0.60}, "multiplication": {"pass@1": 0.40, "pass@4": 0.55}},
        "judges": {"rm": {"addition": {"selection_accuracy": 0.5, "random_accuracy": 0.5, "selection_lift": 0.0,
                                       "oracle_accuracy": 0.9, "coverage": 1.0, "errors": 0.0, "prompts": 40.0}},
                   "math": {"addition": {"selection_accuracy": 0.9, "random_accuracy": 0.5, "selection_lift": 0.4,
                                         "oracle_accuracy": 0.9, "coverage": 1.0, "errors": 2.0, "prompts": 40.0}}}},
    2: {"tasks": {"addition": {"pass@1": 0.60, "pass@4": 0.70}, "multiplication": {"pass@1": 0.25, "pass@4": 0.56}},
        "examples": [{"task": "addition", "prompt": "What is 2 + <3>?", "reference": "5", "answer": "The answer is 5",
                      "extracted": "5", "correct": True}]},
}


@pytest.fixture
def run_dir(tmp_path):
    run = RunDir(tmp_path / "run")
    for r, ev in EVALS.items():
        write_json(run.round(r).eval, ev)
        append_round_metrics(run.path, r, ev)
    run.recipe.write_text("name: run\neval:\n  regression_threshold: 0.05\n", encoding="utf-8")
    return run


def test_metric_rows_hold_task_and_judge_metrics():
    rows = metric_rows(1, EVALS[1])
    assert {"round": 1, "task": "addition", "metric": "pass@1", "value": 0.45} in rows
    assert {"round": 1, "task": "addition", "metric": "selection_lift/math", "value": 0.4} in rows
    assert {"round": 1, "task": "addition", "metric": "selection_accuracy/rm", "value": 0.5} in rows
    assert len(rows) == 4 + 2 * 2


def test_appending_a_round_again_replaces_its_rows(run_dir):
    before = len(read_metrics(run_dir.path))
    append_round_metrics(run_dir.path, 2, EVALS[2])
    rows = read_metrics(run_dir.path)
    assert len(rows) == before
    assert [r["value"] for r in rows if (r["round"], r["task"], r["metric"]) == (2, "multiplication", "pass@1")] == [0.25]


def test_regression_warning_names_task_metric_and_rounds(run_dir):
    lines = regressions(run_dir.path, threshold=0.05)
    assert lines == ["warning: task multiplication pass@1 fell 0.400 -> 0.250 (-0.150) from round 1 to round 2"]
    assert regressions(run_dir.path, threshold=0.2) == []
    # pass@4 rose in every task, so even a zero threshold flags nothing there
    assert any("pass@4" in line for line in regressions(run_dir.path, threshold=0.0)) is False
    assert regressions(run_dir.path, threshold=0.0, metrics=["pass@1"]) == lines


def test_report_files(run_dir):
    from matplotlib.image import imread

    report = write_report(run_dir.path)
    assert report == run_dir.report and report.is_file()
    assert run_dir.curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(run_dir.curves).shape[:2]
    assert width > 800 and height > 300  # pass@1, pass@4 and one lift panel per judge: one row of 3+ panels
    text = report.read_text(encoding="utf-8")
    assert "warning: task multiplication pass@1 fell 0.400 -&gt; 0.250" in text
    assert "&#9888;" in text  # the regressed cell is flagged
    assert "0.450 <small>(+0.250)</small>" in text  # addition pass@1, round 0 -> 1
    assert "data:image/png;base64," in text  # self-contained
    assert "no better than random" in text  # the rm's zero lift is called out
    assert "What is 2 + &lt;3&gt;?" in text  # examples are escaped
    assert "regression_threshold: 0.05" in text  # the recipe travels with the report


def test_print_table_shows_deltas_and_warnings(run_dir):
    from rich.console import Console

    buf = io.StringIO()
    print_table(run_dir.path, console=Console(file=buf, width=120, color_system=None))
    out = buf.getvalue()
    assert "multiplication" in out and "round 2" in out
    assert "0.600 (+0.150)" in out and "0.250 (-0.150)" in out
    assert "warning: task multiplication pass@1 fell" in out


def test_report_command(run_dir, capsys):
    from thresher.cli import main

    assert main(["report", str(run_dir.path)]) == 0
    out = capsys.readouterr().out
    assert "warning: task multiplication pass@1 fell" in out and "report.html" in out
    assert run_dir.report.is_file() and run_dir.curves.is_file()
    assert main(["report", str(run_dir.path / "nope")]) == 2


def test_report_embeds_the_metrics_as_json(run_dir):
    import json
    import re

    text = write_report(run_dir.path).read_text(encoding="utf-8")
    blob = re.search(r"<script type='application/json' id='metrics'>(.*?)</script>", text, re.DOTALL).group(1)
    assert json.loads(blob) == read_metrics(run_dir.path)  # "<\/" is a valid JSON escape
