"""vLLM replicas on Ray, 1 against N, and raw `vllm.LLM.generate` on the same GPUs: tokens per second.

For a machine with GPUs. Builds a real-size random-weight Qwen2 from a
config (no download; thresher's byte-level tokenizer, the model's real
vocabulary size), then samples the same prompts three ways:

- raw: one `vllm.LLM` on one GPU, one `generate` call with every prompt (in a
  subprocess, so the GPU is free again afterwards);
- thresher, 1 replica: `sample_stage` through the Ray executor, one replica;
- thresher, N replicas: the same with N replicas (one per `--gpus-per-replica`
  GPUs; with fewer GPUs than replicas, replicas share a GPU by fractions).

Each side's time runs from the start of its engines to the last answer, so
engine start-up counts on every side (raw also prints its generate-only
rate). Every side must produce prompts x n answers. The last lines:

    raw vllm.LLM.generate: X tok/s
    thresher, 1 replica: A tok/s (A/X of raw)
    thresher, N replicas: B tok/s (B/A of 1 replica)

    python bench/gpu_scale.py                                   # all GPUs, a 1.5B-shaped model
    python bench/gpu_scale.py --shape 7b --replicas 8 --prompts 4096 --max-tokens 512
    python bench/gpu_scale.py --device cpu --shape test --replicas 2 --prompts 16 --max-tokens 16   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SHAPES = {
    "test": {},  # the test suite's tiny model
    "0.5b": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
             "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768},
    "1.5b": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
             "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768},
    "7b": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
           "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 32768,
           "tie_word_embeddings": False},
}
"""Qwen2.5 shapes (hidden, MLP, layers, heads, KV heads, vocabulary)."""

RAW = r"""
import json, sys, time
from vllm import LLM, SamplingParams
spec = json.loads(sys.argv[1])
prompts = [{"prompt_token_ids": ids} for ids in json.load(open(spec["prompts"]))]
t0 = time.perf_counter()
llm = LLM(model=spec["model"], **spec["engine"])
t1 = time.perf_counter()
outs = llm.generate(prompts, SamplingParams(n=spec["n"], temperature=1.0, max_tokens=spec["max_tokens"], seed=0),
                    use_tqdm=False)
t2 = time.perf_counter()
tokens = sum(len(o.token_ids) for out in outs for o in out.outputs)
answers = sum(len(out.outputs) for out in outs)
print("RESULT " + json.dumps({"tokens": tokens, "answers": answers, "seconds": t2 - t0, "generate_seconds": t2 - t1}))
"""


def build_model(out_dir: Path, shape: dict, device: str) -> Path:
    """A random-weight Qwen2 of `shape` in bfloat16 (float32 on CPU), built on the device, saved with its tokenizer."""
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    from thresher.tiny_models import build_tokenizer, tiny_qwen2_config

    tokenizer = build_tokenizer()
    shape = dict(shape)
    config = tiny_qwen2_config(max(len(tokenizer), shape.pop("vocab_size", 0)), **shape)
    config.eos_token_id, config.pad_token_id, config.bos_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id, None
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out_dir


def engine_args(args: argparse.Namespace, share: float) -> dict:
    """vLLM engine options for one engine that owns `share` of each of its GPUs."""
    if args.device == "cpu":
        return {"dtype": "float32", "max_model_len": args.max_model_len, "enable_chunked_prefill": False}
    out = {"dtype": "bfloat16", "max_model_len": args.max_model_len,
           "gpu_memory_utilization": round(args.gpu_memory_utilization * share, 3),
           "tensor_parallel_size": args.gpus_per_replica}
    if args.gpus_per_replica > 1:
        out["distributed_executor_backend"] = "mp"  # its own worker processes inside the replica's actor
    return out


def run_raw(args: argparse.Namespace, model: Path, prompt_ids: list[list[int]], work: Path) -> dict:
    ids_file = work / "prompt_ids.json"
    ids_file.write_text(json.dumps(prompt_ids))
    spec = {"model": str(model), "prompts": str(ids_file), "n": args.n, "max_tokens": args.max_tokens,
            "engine": engine_args(args, 1.0)}
    env = dict(os.environ)
    if args.device == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    done = subprocess.run([sys.executable, "-c", RAW, json.dumps(spec)], capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"FAIL: raw vLLM run exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def run_thresher(args: argparse.Namespace, model: Path, prompts: list, replicas: int, gpus: int, work: Path) -> dict:
    from thresher.config import ModelConfig
    from thresher.executors import ExecutorConfig, Resources
    from thresher.executors.ray import RayExecutor
    from thresher.sampling import SamplingParams
    from thresher.sampling.stage import sample_stage

    if args.device == "cuda":
        per_replica = float(args.gpus_per_replica)
        if replicas * per_replica > gpus:  # more replicas than GPUs: they share
            per_replica = gpus / replicas
        share = min(1.0, per_replica / args.gpus_per_replica)
    else:
        per_replica, share = 0.0, 1.0
    cfg = ModelConfig(name=f"r{replicas}", path=str(model), backend="vllm", n=args.n,
                      sampling=SamplingParams(temperature=1.0, max_tokens=args.max_tokens, seed=0),
                      args=engine_args(args, share),
                      resources=Resources(replicas=replicas, num_gpus=per_replica, num_cpus=1))
    executor = RayExecutor(ExecutorConfig(type="ray", address=args.address))
    try:
        t = time.perf_counter()
        summary = sample_stage(prompts, [cfg], work / f"replicas-{replicas}" / "round_1" / "candidates",
                               progress=False, chunk_size=args.chunk, executor=executor)
        seconds = time.perf_counter() - t
    finally:
        executor.close()
    return {"tokens": summary["tokens"], "answers": summary["candidates"], "seconds": seconds}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gpu-scale-") as work:
        return measure(Path(work))


def measure(work: Path) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="1.5b")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--replicas", type=int, default=None, help="N (default: one per --gpus-per-replica GPUs)")
    ap.add_argument("--gpus-per-replica", type=int, default=1, help="tensor_parallel_size of each replica")
    ap.add_argument("--prompts", type=int, default=2048)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--chunk", type=int, default=128, help="prompts per chunk sent to a replica")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    ap.add_argument("--address", default=None, help="a running Ray cluster (default: start one on this machine)")
    args = ap.parse_args()

    from thresher.prompts.arithmetic import arithmetic_suite
    from thresher.sampling.common import encode_chat, load_chat_tokenizer

    gpus = 0
    if args.device == "cuda":
        import torch

        gpus = torch.cuda.device_count()
        if gpus == 0:
            sys.exit("no GPU visible; use --device cpu for a smoke run")
    replicas = args.replicas or max(1, gpus // args.gpus_per_replica)
    if args.device == "cpu":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    t = time.perf_counter()
    model = build_model(work / "model", SHAPES[args.shape], args.device)
    longest = json.loads((model / "config.json").read_text())["max_position_embeddings"]
    args.max_model_len = min(args.max_model_len, longest)
    print(f"built a random {args.shape} Qwen2 in {time.perf_counter() - t:.0f}s; {gpus} GPUs; replicas 1 vs {replicas} "
          f"x {args.gpus_per_replica} GPU(s)", flush=True)
    prompts = arithmetic_suite("train", count=args.prompts, seed=5)
    tokenizer = load_chat_tokenizer(str(model))
    prompt_ids = [encode_chat(tokenizer, p.messages) for p in prompts]

    raw = run_raw(args, model, prompt_ids, work)
    one = run_thresher(args, model, prompts, 1, gpus, work)
    many = run_thresher(args, model, prompts, replicas, gpus, work) if replicas > 1 else one
    want = args.prompts * args.n
    for name, r in (("raw", raw), ("1 replica", one), (f"{replicas} replicas", many)):
        if r["answers"] != want:
            sys.exit(f"FAIL: {name} gave {r['answers']} answers, expected {want}")
        print(f"{name}: {r['tokens']} tokens in {r['seconds']:.1f}s", flush=True)
    raw_rate = raw["tokens"] / raw["seconds"]
    one_rate, many_rate = one["tokens"] / one["seconds"], many["tokens"] / many["seconds"]
    print(f"raw vllm.LLM.generate: {raw_rate:.0f} tok/s (generate alone {raw['tokens'] / raw['generate_seconds']:.0f})")
    print(f"thresher, 1 replica: {one_rate:.0f} tok/s ({one_rate / raw_rate:.2f} of raw)")
    print(f"thresher, {replicas} replicas: {many_rate:.0f} tok/s ({many_rate / one_rate:.2f} of 1 replica)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
