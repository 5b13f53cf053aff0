"""`thresher view` on a run of 1,000,000 candidates: first page and filtered page latency, against the bars.

    python bench/view_scale.py                        # 1,000,000 candidates, 8 per prompt
    python bench/view_scale.py --candidates 100000    # a quicker run

Generates a round with bench/export_scale.py's generator (prompts, candidate
shards, verifier and reward-model verdict shards), runs the real export stage
on it (policy gated, SFT + critique + DPO, dedup off), so the exports and
`export_decisions.jsonl` are what a run writes. Then:

- builds the viewer's DuckDB index of the run, once (timed, printed);
- per repeat, opens the viewer on the cached index, starts its real HTTP
  server and GETs the first page `/`, then a filtered page (task, model,
  kept, "verifier right, low score", page 3) and a text search page;
- the baseline, alternating with the viewer: the same two pages computed the
  way a viewer without an index must, loading the candidate, verdict and
  decision shards into Python lists and grouping, filtering and paging them
  there. The two sides must list the same prompts.

Prints the medians, each latency against its bar (first page < 1 s, filtered
page < 2 s), and last the speedup of the viewer over the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_scale import generate  # the same synthetic round the export benchmark uses

FIRST_BAR_S = 1.0
FILTERED_BAR_S = 2.0
PER_PAGE = 50
FILTER = {"task": "add1", "model": "student", "status": "kept", "right_low": "1", "page": "3"}


def export(root: Path) -> dict:
    from thresher.config import ExportConfig, SelectionConfig
    from thresher.feedback.stage import export_stage
    from thresher.records import Prompt, read_jsonl

    rd = root / "round_1"
    prompts = list(read_jsonl(rd / "prompts.jsonl", Prompt))
    return export_stage(
        prompts, rd / "candidates", rd / "verdicts", rd, SelectionConfig("gated", {"judge": "rm"}),
        ExportConfig(sft=True, critique=True, dpo="best_vs_worst", args={"dedup": {"exact": False, "near": False}}),
        {"student"}, seed=0,
    )


def _ids(html: str) -> list[str]:
    marker = "data-prompt-id='"
    return [part.split("'", 1)[0] for part in html.split(marker)[1:]]


def viewer_pages(run: Path, cache: Path, search: str) -> tuple[float, float, float, list[str], list[str]]:
    """Open the viewer on the cached index and GET the first, filtered and search pages; seconds and page ids."""
    from urllib.parse import urlencode

    from thresher.view.server import Viewer, ViewServer

    start = time.perf_counter()
    with ViewServer(Viewer([run], cache=cache, progress=False)) as server:
        first_html = urllib.request.urlopen(server.url).read().decode()
        first = time.perf_counter() - start
        t = time.perf_counter()
        filtered_html = urllib.request.urlopen(server.url + "?" + urlencode(FILTER)).read().decode()
        filtered = time.perf_counter() - t
        t = time.perf_counter()
        urllib.request.urlopen(server.url + "?" + urlencode({"q": search})).read()
        searched = time.perf_counter() - t
    return first, filtered, searched, _ids(first_html), _ids(filtered_html)


def _lines_file(path: Path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _lines(directory: Path):
    for p in sorted(directory.glob("*.jsonl")):
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def baseline_pages(run: Path) -> tuple[float, float, list[str], list[str]]:
    """The same two pages from the shards loaded into Python lists (what no index costs), with the same rules."""
    rd = run / "round_1"
    start = time.perf_counter()
    prompts = list(_lines_file(rd / "prompts.jsonl"))
    candidates = list(_lines(rd / "candidates"))
    verdicts = list(_lines(rd / "verdicts"))
    decisions = list(_lines_file(rd / "export_decisions.jsonl"))
    kept: dict[str, int] = defaultdict(int)
    for d in decisions:
        kept[d["prompt_id"]] += d["decision"] == "kept"
    first = [p["id"] for p in prompts[:PER_PAGE]]  # the rows need their counts, computed above; flags not even
    first_s = time.perf_counter() - start

    t = time.perf_counter()
    task = {p["id"]: p["task"] for p in prompts}
    models: dict[str, set[str]] = defaultdict(set)
    for c in candidates:
        models[c["prompt_id"]].add(c["model"])
    by_cand: dict[str, dict[str, dict]] = defaultdict(dict)
    for v in verdicts:
        by_cand[v["candidate_id"]][v["judge"]] = v
    rm_scores: dict[str, list[float]] = defaultdict(list)
    for cid, vs in by_cand.items():
        rm = vs.get("rm")
        if rm and rm.get("error") is None and rm.get("score") is not None:
            rm_scores[task[cid.split("/", 1)[0]]].append(rm["score"])
    p25 = {t: statistics.quantiles(s, n=4, method="inclusive")[0] for t, s in rm_scores.items()}
    right_low: set[str] = set()
    for cid, vs in by_cand.items():
        math, rm = vs.get("math"), vs.get("rm")
        pid = cid.split("/", 1)[0]
        if (math and math.get("error") is None and math.get("correct") is True and rm and rm.get("error") is None
                and rm.get("score") is not None and rm["score"] <= p25[task[pid]]):
            right_low.add(pid)
    match = [p["id"] for p in prompts if p["task"] == FILTER["task"] and FILTER["model"] in models[p["id"]]
             and kept[p["id"]] > 0 and p["id"] in right_low]
    page = int(FILTER["page"])
    filtered = match[(page - 1) * PER_PAGE: page * PER_PAGE]
    return first_s, first_s + time.perf_counter() - t, first, filtered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--per-prompt", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="viewer / baseline alternations (medians reported)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="thresher-view-bench-") as tmp:
        run, cache = Path(tmp) / "run", Path(tmp) / "cache"
        t0 = time.perf_counter()
        n_prompts = generate(run / "round_1", args.candidates, args.per_prompt)
        print(f"generated {args.candidates:,} candidates ({n_prompts:,} prompts), {2 * args.candidates:,} verdicts "
              f"in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        summary = export(run)
        print(f"export stage: {time.perf_counter() - t0:.0f} s, rows "
              f"{ {k: e['rows'] for k, e in summary['exports'].items()} }")

        from thresher.view.index import open_index

        t0 = time.perf_counter()
        open_index([run], cache=cache, progress=False).close()
        print(f"index build (once per changed run, then cached): {time.perf_counter() - t0:.1f} s")
        search = "compute 1234"

        view: dict[str, list[float]] = defaultdict(list)
        base: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.repeats):
            first, filtered, searched, v_first, v_filtered = viewer_pages(run, cache, search)
            view["first"].append(first)
            view["filtered"].append(filtered)
            view["search"].append(searched)
            b_first_s, b_filtered_s, b_first, b_filtered = baseline_pages(run)
            base["first"].append(b_first_s)
            base["filtered"].append(b_filtered_s)
            if (v_first, v_filtered) != (b_first, b_filtered):
                raise SystemExit("viewer and baseline list different prompts: a bug in one of them")
        med = {k: statistics.median(v) for k, v in view.items()}
        bmed = {k: statistics.median(v) for k, v in base.items()}
        print(f"pages agree with the baseline: first page {len(v_first)} prompts, filtered page {len(v_filtered)} prompts")
        print(f"baseline (shards loaded into Python lists per request): first page {bmed['first']:.2f} s, "
              f"filtered page {bmed['filtered']:.2f} s")
        print(f"text search page: {1000 * med['search']:.0f} ms")
        print(f"first page: {1000 * med['first']:.0f} ms (bar {1000 * FIRST_BAR_S:.0f} ms): "
              f"{'OK' if med['first'] < FIRST_BAR_S else 'OVER THE BAR'}")
        print(f"filtered page: {1000 * med['filtered']:.0f} ms (bar {1000 * FILTERED_BAR_S:.0f} ms): "
              f"{'OK' if med['filtered'] < FILTERED_BAR_S else 'OVER THE BAR'}")
        print(f"speedup over the baseline, medians of {args.repeats}: first page {bmed['first'] / med['first']:.1f}x, "
              f"filtered page {bmed['filtered'] / med['filtered']:.1f}x")


if __name__ == "__main__":
    main()
