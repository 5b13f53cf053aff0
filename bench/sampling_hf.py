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

Both render prompts with the chat template and decode the answers. Prints
each side's seconds and generated tokens/s, and last the speedup
baseline / thresher (target: at least 3x).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHAPES = {
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
        ours(sampler, prompts[:4], params)  # warm-up: kernels, allocator, chat template compile
        naive_loop(sampler, prompts[:2], params)

        t_naive, tok_naive = naive_loop(sampler, prompts, params)
        print(f"baseline (generate per prompt): {t_naive:8.2f}s  {tok_naive} tokens  {tok_naive / t_naive:9.0f} tok/s")
        t_ours, tok_ours = ours(sampler, prompts, params)
        print(f"thresher HFSampler (batched):   {t_ours:8.2f}s  {tok_ours} tokens  {tok_ours / t_ours:9.0f} tok/s")
    print(
        f"speedup baseline/thresher: {t_naive / t_ours:.2f}x wall time, "
        f"{(tok_ours / t_ours) / (tok_naive / t_naive):.2f}x tokens/s (target >= 3x)"
    )


if __name__ == "__main__":
    main()
