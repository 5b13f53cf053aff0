"""Math verification: the verifier's 2 worker processes against serial calls, on the same items.

The items are solutions with answers that make math-verify work (fractions,
percentages, roots, sets, intervals, polynomials), right and wrong. The
baseline calls the same verification function one item after another in this
process; the judge sends the items to its worker processes (each with a hard
per-item timeout). Both must give the same verdicts. The last line is the
speed-up.

    python bench/judge_math.py
    python bench/judge_math.py --n 800 --workers 4
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

PAIRS = [
    ("\\frac{1}{2}", "0.5"),
    ("50\\%", "\\frac{1}{2}"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}"),
    ("[0, 1)", "[0,1)"),
    ("(0, 1]", "[0,1)"),
    ("x^2 + 2x + 1", "(x+1)^2"),
    ("\\frac{3}{4}", "0.75"),
    ("\\frac{\\pi}{3}", "60^\\circ"),
    ("1,000", "1000"),
    ("x = 5", "5"),
    ("\\frac{2}{3}", "0.67"),
    ("e^{i\\pi} + 1", "0"),
    ("\\sin^2 x + \\cos^2 x", "1"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"),
    ("\\log_2 8", "3"),
]


def make_items(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        answer, reference = rng.choice(PAIRS)
        if rng.random() < 0.3:
            reference = f"{reference} + {rng.randint(1, 9)}"  # a wrong answer
        style = rng.randrange(3)
        text = (
            f"Working through step {i}, we simplify. The answer is $\\boxed{{{answer}}}$."
            if style == 0
            else f"After simplifying, the final answer is ${answer}$."
            if style == 1
            else f"所以答案是 ${answer}$。"
        )
        items.append((text, reference))
    return items


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the live processes `pids` have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="items (default 400)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="alternating timed runs of each; the best counts")
    args = ap.parse_args()

    from thresher.judges.math import math_verifier, verify_answer, warm_up
    from thresher.records import Candidate, Prompt

    items = make_items(args.n)
    prompts = [
        Prompt.create("math", [{"role": "user", "content": f"q{i}"}], reference=r) for i, (_, r) in enumerate(items)
    ]
    cands = [[Candidate(p.id, "m", 0, t)] for p, (t, _) in zip(prompts, items)]

    warm_up()
    judge = math_verifier(timeout=30.0, workers=args.workers)
    try:
        judge.judge(prompts[: args.workers * 2], cands[: args.workers * 2])  # start and warm the workers

        # Alternate the two, several times, and keep each one's best time (the load of a shared machine
        # changes from second to second; alternating exposes both to the same conditions).
        t_serial = t_pool = float("inf")
        pids = [s.proc.pid for s in judge.pool.slots]
        for _ in range(args.repeats):
            t, c = time.perf_counter(), time.process_time()
            serial = [verify_answer(item) for item in items]
            if time.perf_counter() - t < t_serial:
                t_serial, c_serial = time.perf_counter() - t, time.process_time() - c
            t, c = time.perf_counter(), cpu_seconds(pids)
            pooled = [row[0] for row in judge.judge(prompts, cands)]
            if time.perf_counter() - t < t_pool:
                t_pool, c_pool = time.perf_counter() - t, cpu_seconds(pids) - c
    finally:
        judge.close()

    errors = [v.error for v in pooled if v.error]
    if errors:
        print(f"FAIL: {len(errors)} errors in the pool, e.g. {errors[0]}", file=sys.stderr)
        return 1
    mismatch = [
        i
        for i, (s, v) in enumerate(zip(serial, pooled))
        if s["correct"] != v.correct or s["critique"] != v.critique or s["answer"] != v.metadata.get("answer")
    ]
    correct = sum(s["correct"] is True for s in serial)
    print(f"{len(items)} items, {correct} correct, {len(items) - correct} wrong; identical verdicts: {not mismatch}")
    print(f"best of {args.repeats} alternating runs each")
    print(f"serial calls:       {t_serial:7.2f}s  {len(items) / t_serial:8.1f} items/s")
    print(f"{args.workers} worker processes: {t_pool:7.2f}s  {len(items) / t_pool:8.1f} items/s")
    print(
        f"CPU cores this run got: serial {c_serial / t_serial:.2f}, workers {c_pool / t_pool:.2f} "
        f"(a busy or autogrouped machine gives the workers less than {args.workers})"
    )
    if mismatch:
        print(f"FAIL: {len(mismatch)} verdicts differ, first at item {mismatch[0]}", file=sys.stderr)
        return 1
    print(f"ratio ({args.workers} workers / serial): {t_serial / t_pool:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
