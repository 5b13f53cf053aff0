"""Math judging: the verifier's worker pool against a plain serial math-verify loop, on cheap and expensive items.

Cheap items are the quickstart's answers (column arithmetic ending in the
result, right and off by a little): a fraction of a millisecond of math-verify
each, where a pool can only lose to pipe and process overhead. Expensive items
are long symbolic answers (a power of a trinomial against its expansion, a
rational function against its simplified form): tens to hundreds of
milliseconds of sympy each, where the workers should share the work.

The baseline calls the verifier's own function (`verify_answer`: extraction
and math-verify) item after item in this process; the judge sends the same
items to its warm worker pool in batches, with the hard per-item timeout on.
Both must give identical verdicts. The two sides alternate, each repetition
on fresh items (so no side finds them in a cache), and medians count. The
last two lines are the ratios:

    cheap items: pool / serial wall time R          (R <= 1.0 wanted)
    expensive items: serial / pool speedup S        (S >= 1.6 wanted on 2 cores)

    python bench/judge_math.py
    python bench/judge_math.py --cheap 1000 --expensive 12 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cheap_items(n: int, seed: int) -> list[tuple[str, str]]:
    """The quickstart's answers to its five arithmetic tasks (one in Chinese): about 70% right, the rest off a little."""
    from thresher.prompts.arithmetic import TASKS, ZH_TASKS, arithmetic_suite
    from thresher.quickstart.worked import worked_answer, wrong_answer

    rng = random.Random(seed)
    prompts = arithmetic_suite("train", count=n, seed=seed, digits=3, tasks=[*TASKS, *ZH_TASKS])
    return [
        (worked_answer(p) if rng.random() < 0.7 else wrong_answer(p, rng), str(p.reference)) for p in prompts
    ]


def expensive_items(n: int, seed: int) -> list[tuple[str, str]]:
    """Long symbolic answers: a factored form in the text, the expanded (or simplified) form as reference."""
    import sympy

    x, y = sympy.symbols("x y")
    rng = random.Random(seed)
    items = []
    for i in range(n):
        a, b, power = rng.randint(2, 99), rng.randint(1, 99), rng.randint(5, 7)  # unlikely to repeat: no cache helps
        factored = f"(x + {a}y - {b})^{{{power}}}"
        expanded = sympy.expand((x + a * y - b) ** power)
        if i % 4 == 3:
            expanded += 1  # a wrong answer
        style = i % 3
        text = (
            f"Expanding step by step, we get $\\boxed{{{factored}}}$."
            if style == 0
            else f"The answer is ${factored}$, because the binomial theorem applies."
            if style == 1
            else f"所以答案是 ${factored}$。"
        )
        items.append((text, sympy.latex(expanded)))
    return items


def as_records(items: list[tuple[str, str]]) -> tuple[list, list]:
    from thresher.records import Candidate, Prompt

    prompts = [
        Prompt.create("math", [{"role": "user", "content": f"q{i}"}], reference=r) for i, (_, r) in enumerate(items)
    ]
    return prompts, [[Candidate(p.id, "m", 0, t)] for p, (t, _) in zip(prompts, items)]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the live processes `pids` have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def compare(name: str, make, n: int, judge, repeats: int) -> tuple[float, float]:
    """Median wall seconds of (serial loop, pool) over `repeats` alternating runs on fresh items."""
    from thresher.judges.math import verify_answer

    serial_times, pool_times, serial_cpu, pool_cpu, main_cpu = [], [], [], [], []
    for rep in range(repeats):
        items = make(n, seed=1000 * rep + 7)
        prompts, cands = as_records(items)
        sides = ["serial", "pool"] if rep % 2 == 0 else ["pool", "serial"]
        for side in sides:
            pids = [s.proc.pid for s in judge.pool.slots]
            t, c, w = time.perf_counter(), time.process_time(), cpu_seconds(pids)
            if side == "serial":
                serial = [verify_answer(item) for item in items]
                serial_times.append(time.perf_counter() - t)
                serial_cpu.append(time.process_time() - c)
            else:
                pooled = [row[0] for row in judge.judge(prompts, cands)]
                pool_times.append(time.perf_counter() - t)
                main_cpu.append(time.process_time() - c)
                pool_cpu.append(cpu_seconds(pids) - w + main_cpu[-1])
        errors = [v.error for v in pooled if v.error]
        if errors:
            sys.exit(f"FAIL: {name}: {len(errors)} errors in the pool, e.g. {errors[0]}")
        mismatch = [
            i
            for i, (s, v) in enumerate(zip(serial, pooled))
            if s["correct"] != v.correct or s["critique"] != v.critique or s["answer"] != v.metadata.get("answer")
        ]
        if mismatch:
            sys.exit(f"FAIL: {name}: {len(mismatch)} verdicts differ between serial and pool, first at item {mismatch[0]}")
    right = sum(s["correct"] is True for s in serial)
    t_serial, t_pool = statistics.median(serial_times), statistics.median(pool_times)
    c_serial, c_pool, c_main = (statistics.median(x) for x in (serial_cpu, pool_cpu, main_cpu))
    print(
        f"{name}: {n} items ({right} right in the last run), identical verdicts; median of {repeats} alternating runs: "
        f"serial {t_serial:.2f}s ({n / t_serial:.0f} items/s), pool {t_pool:.2f}s ({n / t_pool:.0f} items/s)"
    )
    print(
        f"  CPU seconds: serial {c_serial:.2f}, pool {c_pool:.2f} (workers {c_pool - c_main:.2f} + this process "
        f"{c_main:.2f}); CPU cores the run got: serial {c_serial / t_serial:.2f}, pool {c_pool / t_pool:.2f} "
        "(a busy machine, or one whose scheduler groups a session's processes, gives the pool less than its workers)"
    )
    return t_serial, t_pool


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cheap", type=int, default=5000, help="cheap items per run (default 5000)")
    ap.add_argument("--expensive", type=int, default=24, help="expensive items per run (default 24)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of each side; medians count")
    args = ap.parse_args()

    from thresher.judges.math import math_verifier, warm_up

    warm_up()
    for item in expensive_items(2, seed=1):  # sympy's lazy imports, outside the timing (the workers warm up too)
        from thresher.judges.math import verify_answer

        verify_answer(item)
    judge = math_verifier(timeout=60.0, workers=args.workers)
    try:
        judge.pool.start()
        prompts, cands = as_records(expensive_items(2 * args.workers, seed=1))
        judge.judge(prompts, cands)  # the workers' first sympy calls, outside the timing
        cheap = compare("cheap items", cheap_items, args.cheap, judge, args.repeats)
        costly = compare("expensive items", expensive_items, args.expensive, judge, args.repeats)
        restarts = judge.pool.restarts
    finally:
        judge.close()
    print(f"{args.workers} worker processes on {os.cpu_count()} CPUs; worker restarts: {restarts}")
    print(f"cheap items: pool / serial wall time {cheap[1] / cheap[0]:.2f}")
    print(f"expensive items: serial / pool speedup {costly[0] / costly[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
