"""Open a run's data in the browser: prompts, candidates side by side with every verdict, the overview.

Serves a read-only page on 127.0.0.1 over one or more run directories and
prints its URL. The runs are indexed once with DuckDB (a progress bar on big
runs; the index is cached under $THRESHER_CACHE/view and rebuilt when a
shard changes), so pages of a million-candidate run load in well under a
second.

  thresher view runs/quickstart
  thresher view runs/quickstart runs/quickstart-control     # main arm against the control arm
  thresher view runs/demo --port 9000

Pages: the prompt list (filters: round, task, model, kept / dropped, drop
reason, judges that disagree, verifier right but low score and the reverse,
judge errors; text search; paged), one prompt (its candidates side by side,
each judge's score, verdict, critique and error, the selection decision, the
SFT and critique rows and DPO pairs it produced), and the overview (per-task
metrics with intervals, judge report cards, export counts by reason, arms
side by side).
"""

from __future__ import annotations

import argparse

HELP = "browse runs in a local web page: prompts, candidates, verdicts, decisions, overview"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories (two: main arm and control arm)")
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (default: 8765, or a free one if taken)")
    parser.add_argument("--cache-dir", metavar="DIR", help="where indexes are kept (default: $THRESHER_CACHE/view)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from thresher.errors import UserError
    from thresher.view.server import serve

    if args.port is not None and not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: expected 1-65535")
    serve(args.runs, args.port, Path(args.cache_dir) if args.cache_dir else None)
    return 0
