"""Reward-model judging: length-sorted batches against one candidate at a time, on the same candidates.

Builds a random-weight Qwen2 reward model (tiny on CPU; `--size 0.5b` or
`1.5b` for a real-size one on a GPU, in bf16), scores the same candidates of
varied length with the judge (length-sorted batches, right padding) and at
batch size 1 (the baseline most reward-scoring scripts use), checks the
scores agree, and prints candidates/s for both. The last line is the speed-up.

    python bench/judge_rm.py                          # CPU, tiny model, float32
    python bench/judge_rm.py --size 0.5b --device cuda --n 1024
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
    ap.add_argument("--repeats", type=int, default=3, help="timed passes over all candidates; the best counts")
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
        flat = [(p, c) for p, row in zip(prompts, cands) for c in row]
        ids = [rm.encode(p, c) for p, c in flat]
        lengths = sorted(len(x) for x in ids)
        print(
            f"model {args.size} on {device} ({rm.model.dtype}, {torch.get_num_threads()} torch threads), "
            f"{len(flat)} candidates, "
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

        # The judge's own batches (length-sorted, batch_size each), timed one by one, each right after the
        # same candidates scored one at a time: on a shared machine the load changes from second to second,
        # and interleaving finely exposes both to the same conditions. The best of `repeats` passes counts.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        chunks = [order[s : s + args.batch_size] for s in range(0, len(order), args.batch_size)]
        t_single = t_batched = float("inf")
        for _ in range(args.repeats):
            pass_single = pass_batched = 0.0
            for chunk in chunks:
                chunk_ids = [ids[i] for i in chunk]
                pass_batched += timed(lambda c=chunk_ids: rm.score_ids(c))[1]
                pass_single += timed(lambda c=chunk_ids: rm.score_ids(c, batch_size=1))[1]
            t_single, t_batched = min(t_single, pass_single), min(t_batched, pass_batched)
        single = rm.score_ids(ids, batch_size=1)
        batched_v, t_judge = timed(lambda: rm.judge(prompts, cands))  # end to end, tokenizing included
        batched = [v.score for row in batched_v for v in row]

    diff = max(abs(a - b) for a, b in zip(batched, single))
    scale = max(abs(s) for s in single) or 1.0
    tol = 1e-4 if "float32" in str(rm.model.dtype) else 2e-2 * max(1.0, scale)
    print(f"best of {args.repeats} passes, batches interleaved with the same candidates one at a time")
    print(f"batch size 1:     {t_single:8.2f}s  {len(ids) / t_single:9.1f} candidates/s")
    print(f"sorted batches:   {t_batched:8.2f}s  {len(ids) / t_batched:9.1f} candidates/s (batch {args.batch_size})")
    print(f"judge end to end: {t_judge:8.2f}s  {len(ids) / t_judge:9.1f} candidates/s (tokenizing included)")
    print(f"max |score difference| = {diff:.2e} (tolerance {tol:.0e})")
    if diff > tol:
        print("FAIL: batched scores differ from one-at-a-time scores", file=sys.stderr)
        return 1
    print(f"ratio (sorted batches / batch size 1): {t_single / t_batched:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
