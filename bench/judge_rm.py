"""Reward-model judging end to end against its model time, on the same candidates in the same run.

Builds a random-weight Qwen2 reward model (tiny on CPU; `--size 0.5b` or
`1.5b` for a real-size one on a GPU, in bf16) and scores candidates of varied
length, several per prompt, two ways, alternating them and keeping medians:

- model time: `score_ids` on token ids prepared beforehand (length-sorted
  batches, padding, forward passes): what the judge cannot avoid;
- end to end: `judge(prompts, candidates)`, chat rendering and tokenizing
  included.

It also checks the judge's scores against one-at-a-time scoring (batch size
1, the way most reward-scoring scripts run) and prints that speed-up. The
last line is the overhead ratio, `end-to-end / model time: R`.

    python bench/judge_rm.py                          # CPU, tiny model, float32
    python bench/judge_rm.py --size 0.5b --device cuda --n 1024
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SIZES = {
    "tiny": {},
    "0.5b": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
             "num_key_value_heads": 2, "max_position_embeddings": 4096},
    "1.5b": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
             "num_key_value_heads": 2, "max_position_embeddings": 4096},
}  # fmt: skip


def make_data(n: int, max_words: int, seed: int = 0):
    from thresher.records import Candidate, Prompt

    rng = random.Random(seed)
    words = ["the", "of", "a", "to", "is", "in", "that", "answer", "we", "so", "then", "sum", "total", "value"]
    prompts, cands = [], []
    per = 4
    for i in range(n // per):
        q = " ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))
        p = Prompt.create("bench", [{"role": "user", "content": f"Question {i}: {q}?"}])
        prompts.append(p)
        cands.append(
            [
                Candidate(p.id, "m", k, " ".join(rng.choice(words) for _ in range(rng.randint(4, max_words))))
                for k in range(per)
            ]
        )
    return prompts, cands


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--n", type=int, default=128, help="candidates (default 128)")
    ap.add_argument("--repeats", type=int, default=7, help="timed passes of each side, alternated; medians count")
    ap.add_argument("--max-words", type=int, default=120, help="longest candidate in words")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    args = ap.parse_args()

    import torch

    from thresher.judges.reward_model import reward_model
    from thresher.tiny_models import build_reward_model

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        path = build_reward_model(Path(tmp) / "rm", seed=0, **SIZES[args.size])
        rm = reward_model(str(path), batch_size=args.batch_size, max_length=4096, device=device, dtype=args.dtype)
        prompts, cands = make_data(args.n, args.max_words)
        ids = [rm.encode(p, c) for p, row in zip(prompts, cands) for c in row]
        lengths = sorted(len(x) for x in ids)
        print(
            f"model {args.size} on {device} ({rm.model.dtype}, {torch.get_num_threads()} torch threads), "
            f"{len(ids)} candidates of {len(prompts)} prompts, "
            f"{lengths[0]}..{lengths[-1]} tokens (median {lengths[len(lengths) // 2]})",
            file=sys.stderr,
        )
        rm.judge(prompts[:2], cands[:2])  # warm-up: kernels, allocator
        rm.score_ids(ids[:4], batch_size=1)

        def timed(fn):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            out = fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return out, time.perf_counter() - t

        # Alternate the two sides pass by pass: on a shared machine the load changes from second to
        # second, and alternating exposes both to the same conditions.
        model_times, judge_times = [], []
        for _ in range(args.repeats):
            model_times.append(timed(lambda: rm.score_ids(ids))[1])
            verdicts, t = timed(lambda: rm.judge(prompts, cands))
            judge_times.append(t)
        batched = [v.score for row in verdicts for v in row]
        single, t_single = timed(lambda: rm.score_ids(ids, batch_size=1))

    t_model, t_judge = statistics.median(model_times), statistics.median(judge_times)
    diff = max(abs(a - b) for a, b in zip(batched, single))
    scale = max(abs(s) for s in single) or 1.0
    tol = 1e-4 if "float32" in str(rm.model.dtype) else 2e-2 * max(1.0, scale)
    print(f"medians of {args.repeats} alternated passes")
    print(f"batch size 1:     {t_single:8.3f}s  {len(ids) / t_single:9.1f} candidates/s (one pass)")
    print(f"model time:       {t_model:8.3f}s  {len(ids) / t_model:9.1f} candidates/s (batch {args.batch_size})")
    print(f"judge end to end: {t_judge:8.3f}s  {len(ids) / t_judge:9.1f} candidates/s (rendering, tokenizing included)")
    print(f"max |score difference| against one at a time = {diff:.2e} (tolerance {tol:.0e})")
    if diff > tol:
        print("FAIL: batched scores differ from one-at-a-time scores", file=sys.stderr)
        return 1
    print(f"sorted batches / batch size 1 speed-up: {t_single / t_model:.2f}x")
    print(f"end-to-end / model time: {t_judge / t_model:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
