"""OpenMP's wait policy on a busy CPU: training steps of a tiny model with spinning vs passive threads.

Why the quickstart sets OMP_WAIT_POLICY=PASSIVE: on a small machine the
trainer shares the cores with the math verifier's workers or another job, and
OpenMP's default spin-waiting makes every parallel op wait for a thread the
kernel has descheduled. This runs the same training steps in a child process
(the policy is read when torch loads OpenMP) with `--busy` competing
processes spinning beside it, first with the default policy, then PASSIVE.

    python bench/omp_wait_policy.py            # 2 busy competitors
    python bench/omp_wait_policy.py --busy 0   # an idle machine

Prints seconds per step for each, and the ratio default / passive last.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time

CHILD = r"""
import time, torch
from thresher.tiny_models import build_tokenizer, tiny_qwen2_config
from transformers import Qwen2ForCausalLM
torch.manual_seed(0)
tok = build_tokenizer()
model = Qwen2ForCausalLM(tiny_qwen2_config(len(tok), hidden_size=64, intermediate_size=256, num_hidden_layers=3))
opt = torch.optim.AdamW(model.parameters())
x = torch.randint(0, len(tok), (64, 60))
for i in range(STEPS + 3):
    if i == 3:
        t = time.perf_counter()
    loss = model(input_ids=x, labels=x).loss
    loss.backward(); opt.step(); opt.zero_grad()
print((time.perf_counter() - t) / STEPS)
"""


def _spin(stop: mp.Event) -> None:
    while not stop.is_set():
        sum(range(10_000))


def step_seconds(policy: str | None, steps: int, threads: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["OMP_NUM_THREADS"] = str(threads)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    code = CHILD.replace("STEPS", str(steps))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2, help="competing busy processes")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    stop = mp.Event()
    busy = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for p in busy:
        p.start()
    time.sleep(0.5)
    try:
        spin = step_seconds(None, args.steps, args.threads)
        passive = step_seconds("PASSIVE", args.steps, args.threads)
    finally:
        stop.set()
        for p in busy:
            p.join()
    print(f"{args.threads} threads, {args.busy} busy competitors, {args.steps} steps of a 200k-parameter model")
    print(f"default (spinning) wait policy: {spin:.3f} s/step")
    print(f"OMP_WAIT_POLICY=PASSIVE:        {passive:.3f} s/step")
    print(f"default / passive: {spin / passive:.2f}")


if __name__ == "__main__":
    main()
