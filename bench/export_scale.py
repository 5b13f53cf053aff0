"""Export from 1,000,000 candidates in bounded memory: peak RSS and throughput of the streaming export stage.

    python bench/export_scale.py                      # 1,000,000 candidates, 16 per prompt
    python bench/export_scale.py --candidates 100000  # a quicker run

Generates a synthetic round in a temporary directory: prompts, candidate
shards written prompt-grouped (8 teacher + 8 student answers per prompt), and
verdict shards from two judges written judge after judge (a math verifier
with answers and critiques, then a reward model), so grouping cannot rely on
file order. Then, each in its own subprocess so that peak RSS is that
process's alone (os.wait4):

- the export: policy `gated` (verifier gate, reward ranking), sft.jsonl,
  best_vs_worst dpo.jsonl and verifier critique_sft.jsonl, with dedup and filters;
- the baseline: what any non-streaming export must at least do, loading every
  candidate and verdict record into memory and grouping them by prompt.

Prints the export's peak RSS (must stay under 1.5 GB), candidates/s and
rows/s, the baseline's peak RSS, and last the memory ratio baseline / export.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT_BYTES = 1.5e9


def write_shards(directory: Path, lines, shard_size: int) -> None:
    """Write JSON lines into shard-NNNNN.jsonl files of `shard_size` lines, as the store's ShardWriter does."""
    batch: list[str] = []
    index = 0
    for line in lines:
        batch.append(line)
        if len(batch) == shard_size:
            (directory / f"shard-{index:05d}.jsonl").write_text("\n".join(batch) + "\n", encoding="utf-8")
            batch, index = [], index + 1
    if batch:
        (directory / f"shard-{index:05d}.jsonl").write_text("\n".join(batch) + "\n", encoding="utf-8")


def generate(root: Path, n_candidates: int, per_prompt: int, shard_size: int = 10_000) -> int:
    """Write prompts.jsonl, candidates/ and verdicts/ shards; return the number of prompts."""
    from thresher.records import make_prompt_id

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(2000)]
    n_prompts = n_candidates // per_prompt
    (root / "candidates").mkdir(parents=True)
    (root / "verdicts").mkdir()
    pids = []
    with open(root / "prompts.jsonl", "w", encoding="utf-8") as f:
        for i in range(n_prompts):
            a, b = rng.randrange(10**5), rng.randrange(10**5)
            messages = [{"role": "user", "content": f"Compute {a} + {b}. Show your steps, then box the answer."}]
            pid = make_prompt_id("add", messages)
            pids.append((pid, a + b))
            f.write(json.dumps({"id": pid, "task": f"add{i % 3}", "messages": messages, "reference": str(a + b)}) + "\n")

    truth: list[tuple[str, bool, int, int]] = []

    def candidate_lines():
        for pid, total in pids:
            for k in range(per_prompt):
                model = "teacher" if k < per_prompt // 2 else "student"
                right = rng.random() < (0.7 if model == "teacher" else 0.35)
                answer = total if right else total + rng.choice((-10, -1, 1, 100))
                steps = " ".join(rng.choice(words) for _ in range(40))
                text = f"Let me work it out: {steps}. So the answer is \\boxed{{{answer}}}."
                finish = "length" if rng.random() < 0.01 else "stop"
                truth.append((f"{pid}/{model}/{k}", right, answer, total))
                yield json.dumps({"prompt_id": pid, "model": model, "index": k, "text": text,
                                  "num_tokens": len(text) // 4, "finish_reason": finish, "metadata": {}})

    def verdict_lines():
        for cid, right, answer, total in truth:  # the math verifier's verdicts, then the reward model's
            if rng.random() < 0.002:
                yield json.dumps({"candidate_id": cid, "judge": "math", "error": "timeout after 5s"})
                continue
            yield json.dumps({
                "candidate_id": cid, "judge": "math", "score": float(right), "correct": right,
                "critique": f"extracted {answer}, reference {total}: {'equal' if right else 'not equal'}",
                "metadata": {"answer": str(answer)},
            })
        for cid, right, _, _ in truth:
            yield json.dumps({"candidate_id": cid, "judge": "rm", "score": rng.gauss(1.0 if right else 0.0, 1.0)})

    write_shards(root / "candidates", candidate_lines(), shard_size)
    write_shards(root / "verdicts", verdict_lines(), shard_size)
    return n_prompts


def child_export(root: Path) -> None:
    from thresher.config import ExportConfig, SelectionConfig
    from thresher.feedback.stage import export_stage
    from thresher.records import Prompt, read_jsonl

    t0 = time.perf_counter()
    prompts = list(read_jsonl(root / "prompts.jsonl", Prompt))
    t1 = time.perf_counter()
    summary = export_stage(
        prompts, root / "candidates", root / "verdicts", root, SelectionConfig("gated", {"judge": "rm"}),
        ExportConfig(sft=True, critique=True, dpo="best_vs_worst"), {"student"}, seed=0, force=True,
    )
    t2 = time.perf_counter()
    rows = sum(e["rows"] for e in summary["exports"].values())
    print(json.dumps({"load_prompts_s": t1 - t0, "export_s": t2 - t1, "rows": rows,
                      "exports": {k: e["rows"] for k, e in summary["exports"].items()},
                      "candidates": summary["candidates"]["read"], "no_pass": summary["no_pass"]["count"]}))


def child_baseline(root: Path) -> None:
    from thresher.records import Candidate, Verdict
    from thresher.store import read_records

    t0 = time.perf_counter()
    by_prompt: dict[str, list] = {}
    for c in read_records(root / "candidates", Candidate):
        by_prompt.setdefault(c.prompt_id, []).append(c)
    verdicts: dict[str, list] = {}
    for v in read_records(root / "verdicts", Verdict):
        verdicts.setdefault(v.candidate_id, []).append(v)
    print(json.dumps({"load_s": time.perf_counter() - t0, "prompts": len(by_prompt)}))


def run_child(mode: str, root: Path) -> tuple[dict, int]:
    """Run this script as `--child MODE`; return its JSON line (plus its CPU seconds) and peak RSS in bytes."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, str(root)], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} child failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    return result, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--per-prompt", type=int, default=16)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        mode, root = args.child
        (child_export if mode == "export" else child_baseline)(Path(root))
        return

    with tempfile.TemporaryDirectory(prefix="thresher-export-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        n_prompts = generate(root, args.candidates, args.per_prompt)
        size = sum(p.stat().st_size for d in ("candidates", "verdicts") for p in (root / d).iterdir())
        print(f"generated {args.candidates:,} candidates ({n_prompts:,} prompts) and {2 * args.candidates:,} "
              f"verdicts, {size / 1e6:,.0f} MB of shards, in {time.perf_counter() - t0:.0f} s")

        result, peak = run_child("export", root)
        n = result["candidates"]
        print(f"export: {result['export_s']:.1f} s, rows {result['exports']}, "
              f"{result['no_pass']:,} prompts with no passing candidate")
        print(f"export peak RSS: {peak / 1e6:,.0f} MB (limit {LIMIT_BYTES / 1e6:,.0f} MB): "
              f"{'OK' if peak < LIMIT_BYTES else 'OVER THE LIMIT'}")
        print(f"throughput: {n / result['export_s']:,.0f} candidates/s, {result['rows'] / result['export_s']:,.0f} rows/s "
              f"(wall clock); {n / result['cpu_s']:,.0f} candidates/s, {result['rows'] / result['cpu_s']:,.0f} rows/s "
              f"per CPU second ({result['cpu_s']:.0f} CPU s in all, imports included)")
        if args.skip_baseline:
            return
        base, base_peak = run_child("baseline", root)
        print(f"baseline (all records in memory, grouped, no export): {base['load_s']:.1f} s, "
              f"peak RSS {base_peak / 1e6:,.0f} MB")
        print(f"peak memory ratio, in-memory baseline / streaming export: {base_peak / peak:.2f}x")


if __name__ == "__main__":
    main()
