"""Report a run: per-task table round by round, regression warnings, report.html and curves.png.

Reads only the run directory (metrics.jsonl, each round's eval.json, the
trained models' summaries), so it works on a running, finished or copied run.
A task whose metric fell by more than the threshold (the recipe's
eval.regression_threshold, or --threshold) and below the previous round's
95% interval between two rounds is flagged. A control arm next to the run
(`<name>-control`) is shown beside it; --compare names another run.

Examples:
    thresher report runs/quickstart
    thresher report runs/quickstart --compare runs/quickstart-control
"""

from __future__ import annotations

import argparse

HELP = "per-task table, regression warnings, report.html and curves.png for a run directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", nargs="?", metavar="RUN", help="a run directory (<out_dir>/<recipe name>)")
    parser.add_argument("--run", dest="run_flag", metavar="RUN", help="the run directory (same as the positional RUN)")
    parser.add_argument("--metric", default="pass@1", help="metric shown in the terminal table (default pass@1)")
    parser.add_argument("--threshold", type=float, help="regression threshold (default: the recipe's, else 0.02)")
    parser.add_argument("--compare", metavar="OTHER_RUN",
                        help="a run to show beside this one (default: <name>-control next to it, when it exists)")
    from thresher.commands.common import add_output_arguments

    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from thresher.errors import UserError
    from thresher.eval.report import print_table, read_metrics, write_report
    from thresher.store import RunDir

    if args.run_dir and args.run_flag and args.run_dir != args.run_flag:
        raise UserError("the run is named twice (RUN and --run); give one")
    if not (args.run_dir or args.run_flag):
        raise UserError("give the run directory: thresher report RUN (or --run RUN)")
    run_dir = RunDir(args.run_dir or args.run_flag)
    if not run_dir.path.is_dir():
        raise UserError(f"{run_dir.path}: no such run directory")
    if not read_metrics(run_dir.path):
        raise UserError(f"{run_dir.metrics}: no metrics yet (a run writes them after each round's eval)")
    report = write_report(run_dir.path, args.threshold, compare=args.compare)
    print_table(run_dir.path, metric=args.metric, threshold=args.threshold)
    print(f"wrote {report} and {Path(run_dir.curves)}")
    return 0
