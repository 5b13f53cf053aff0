"""The transformers backend against the usual best-of-N loop: one `generate` per prompt.

    python bench/sampling_hf.py                          # small random Qwen2 on whatever device accelerate picks
    python bench/sampling_hf.py --shape qwen2.5-0.5b --dtype bfloat16 --prompts 256 --batch-size 256   # a GPU

Builds a random-weight Qwen2 model with `thresher.tiny_models` (the default
shape is larger than the test model, so the timing is about the model, not
Python), takes arithmetic prompts, and samples n answers per prompt twice with
the same model object and parameters:

- baseline: for each prompt, `model.generate(prompt, num_return_sequences=n)`
  (how simple best-of-N samplers do it);
- thresher: `HFSampler.sample(prompts, params)` (length-sorted, left-padded
  batches, n answers per prompt in the same batch).

Both render prompts with the chat template and decode the answers. Runs
alternate between the two sides; prints each run, the medians and generated
tokens/s, and last the speedup baseline / thresher (target: at least 3x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHAPES = {
    "test": {},  # the test suite's tiny model (hidden 64, 2 layers)
    "medium": {
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    # hidden, intermediate, layers, heads, kv heads, vocab (None: the byte tokenizer's)
    "small": {
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
    },
    "qwen2.5-0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
    },
}


def naive_loop(sampler, prompts, params) -> tuple[float, int]:
    """One generate call per prompt, n return sequences each; returns (seconds, generated tokens)."""
    import torch

    from thresher.sampling.common import encode_chat

    tok, model = sampler.tokenizer, sampler.model
    eos = sorted(sampler.eos_ids)
    tokens = 0
    start = time.perf_counter()
    for p in prompts:
        ids = torch.tensor([encode_chat(tok, p.messages)], device=sampler.device)
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=0,
                max_new_tokens=params.max_tokens,
                num_return_sequences=params.n,
                eos_token_id=eos,
                pad_token_id=tok.pad_token_id,
            )
        for row in out[:, ids.shape[1] :].tolist():
            end = next((k + 1 for k, t in enumerate(row) if t in sampler.eos_ids), len(row))
            tok.decode(row[:end], skip_special_tokens=True)
            tokens += end
    _sync()
    return time.perf_counter() - start, tokens


def ours(sampler, prompts, params) -> tuple[float, int]:
    start = time.perf_counter()
    out = sampler.sample(prompts, params)
    _sync()
    return time.perf_counter() - start, sum(c.num_tokens for row in out for c in row)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="small")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64, help="sequences per generate call (thresher)")
    ap.add_argument("--dtype", default=None, help="float32, bfloat16, ... (default: the checkpoint's)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    from thresher.prompts.arithmetic import arithmetic_suite
    from thresher.sampling import SamplingParams
    from thresher.sampling.hf import HFSampler
    from thresher.tiny_models import build_causal_lm

    prompts = arithmetic_suite("train", args.prompts, seed=0)
    params = SamplingParams(n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_causal_lm(os.path.join(tmp, "model"), seed=0, **SHAPES[args.shape])
        sampler = HFSampler(str(path), "bench", batch_size=args.batch_size, device=args.device, dtype=args.dtype)
        n_params = sum(p.numel() for p in sampler.model.parameters())
        print(
            f"model: {args.shape} ({n_params / 1e6:.1f}M parameters, {sampler.model.dtype}) on {sampler.device}; "
            f"torch threads {torch.get_num_threads()}"
        )
        print(
            f"work: {len(prompts)} prompts x n={args.n}, max_tokens={args.max_tokens}, "
            f"batch_size={args.batch_size} sequences"
        )
        ours(sampler, prompts[:8], params)  # warm-up: kernels, allocator, chat template compile
        naive_loop(sampler, prompts[:2], params)
        times: dict[str, list[float]] = {"baseline": [], "thresher": []}
        tokens: dict[str, list[int]] = {"baseline": [], "thresher": []}
        sides = (("baseline", naive_loop), ("thresher", ours))
        for r in range(args.repeats):  # alternate, so machine noise hits both sides alike
            for name, fn in sides if r % 2 == 0 else sides[::-1]:
                t, n = fn(sampler, prompts, params)
                times[name].append(t)
                tokens[name].append(n)
                print(f"  run {r} {name:8s} {t:8.2f}s  {n} tokens  {n / t:8.0f} tok/s")
    med = {k: statistics.median(v) for k, v in times.items()}
    tps = {k: statistics.median(tokens[k]) / med[k] for k in med}
    print(f"baseline (generate per prompt): median {med['baseline']:.2f}s, {tps['baseline']:.0f} tok/s")
    print(f"thresher HFSampler (batched):   median {med['thresher']:.2f}s, {tps['thresher']:.0f} tok/s")
    print(
        f"speedup baseline/thresher: {med['baseline'] / med['thresher']:.2f}x wall time, "
        f"{tps['thresher'] / tps['baseline']:.2f}x tokens/s (target >= 3x)"
    )


if __name__ == "__main__":
    main()
