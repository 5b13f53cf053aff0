"""Scale-out on Ray: the same stage work on a 2-node cluster against 1 node, in one run.

Two real Ray clusters run side by side on this machine (loopback addresses,
one CPU per node): A with one node, B with two. The driver runs the same
stage calls against each, alternating A and B, each repetition in a fresh
output directory, and compares medians of the stages' wall time (actors
starting and building their workers included, as a real stage pays them):

- math judging: `judge_stage` with the math verifier over `--answers`
  candidates, the quickstart's cheap arithmetic answers plus `--expensive`
  long symbolic ones (tens to hundreds of milliseconds of sympy each); the
  verifier is CPU work, so each node runs one verifier (one per CPU);
- hf sampling: `sample_stage` with a random-weight Qwen2 on the transformers
  backend, one replica per node.

Both clusters must give identical verdicts and identical candidates (each
answer has its own seeded stream, so which replica sampled it does not
matter). The last two lines are the speedups (1-node time / 2-node time):

    expensive math judging: 1 node / 2 nodes speedup S   (S >= 1.6 wanted, two idle cores)
    hf sampling: 1 node / 2 nodes speedup T

    python bench/scale_ray.py
    python bench/scale_ray.py --answers 2000 --expensive 40 --prompts 32 --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # its own loopback clusters; a token file in ~/.ray must not matter

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the math bench's item makers

MODEL_SHAPE = {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4, "num_attention_heads": 4,
               "num_key_value_heads": 2}
"""The sampling bench's `medium` random Qwen2: big enough that the time is the model's, not Python's."""


def math_work(n_answers: int, n_expensive: int, seed: int) -> tuple[list, list]:
    """Prompts and candidates: cheap quickstart answers, with the expensive symbolic ones spread among them."""
    from judge_math import as_records, cheap_items, expensive_items

    items = cheap_items(n_answers - n_expensive, seed=seed)
    costly = expensive_items(n_expensive, seed=seed + 1)
    step = max(1, len(items) // max(1, n_expensive))
    for k, item in enumerate(costly):  # spread out, so every chunk of the stage carries some
        items.insert(min(len(items), k * (step + 1)), item)
    prompts, cands = as_records(items)
    return prompts, [c for row in cands for c in row]


def sampling_prompts(n: int) -> list:
    from thresher.prompts.arithmetic import arithmetic_suite

    return arithmetic_suite("train", count=n, seed=3)


def connect(address: str):
    from thresher.executors import ExecutorConfig
    from thresher.executors.ray import RayExecutor

    return RayExecutor(ExecutorConfig(type="ray", address=address))


def run_math(address: str, prompts: list, cands_file: Path, out: Path, chunk: int) -> tuple[float, dict]:
    from thresher.config import JudgeConfig
    from thresher.executors import Resources
    from thresher.judges.stage import judge_stage
    from thresher.records import Verdict
    from thresher.store import read_records

    judge = JudgeConfig(type="math", args={"workers": 1, "timeout": 60.0}, resources=Resources(num_cpus=1))
    executor = connect(address)
    try:
        t = time.perf_counter()
        judge_stage(prompts, cands_file, [judge], out / "round_1" / "verdicts", progress=False, chunk_size=chunk,
                    executor=executor)
        seconds = time.perf_counter() - t
    finally:
        executor.close()
    verdicts = {v.candidate_id: (v.correct, v.critique, v.error) for v in read_records(out / "round_1" / "verdicts",
                                                                                      Verdict)}
    return seconds, verdicts


def run_sampling(address: str, model, prompts: list, out: Path, chunk: int) -> tuple[float, dict]:
    from thresher.records import Candidate
    from thresher.sampling.stage import sample_stage
    from thresher.store import read_records

    executor = connect(address)
    try:
        t = time.perf_counter()
        summary = sample_stage(prompts, [model], out / "round_1" / "candidates", progress=False, chunk_size=chunk,
                               executor=executor)
        seconds = time.perf_counter() - t
    finally:
        executor.close()
    texts = {c.id: c.text for c in read_records(out / "round_1" / "candidates", Candidate)}
    assert summary["candidates"] == len(texts), "a candidate missing or written twice"
    return seconds, texts


def alternate(name: str, repeats: int, one, two) -> tuple[float, float]:
    """Median seconds of (1 node, 2 nodes) over alternating runs; the runs' outputs must agree."""
    times: dict[str, list[float]] = {"1 node": [], "2 nodes": []}
    outputs = []
    for rep in range(repeats):
        order = [("1 node", one), ("2 nodes", two)] if rep % 2 == 0 else [("2 nodes", two), ("1 node", one)]
        for side, fn in order:
            seconds, output = fn(rep)
            times[side].append(seconds)
            outputs.append(output)
            print(f"  {name}, run {rep}, {side}: {seconds:.1f}s", flush=True)
    if any(o != outputs[0] for o in outputs[1:]):
        sys.exit(f"FAIL: {name}: the 1-node and 2-node runs wrote different results")
    return statistics.median(times["1 node"]), statistics.median(times["2 nodes"])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="scale-ray-") as work:
        return measure(Path(work))


def measure(work: Path) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--answers", type=int, default=20_000, help="math candidates to verify (default 20000)")
    ap.add_argument("--expensive", type=int, default=200, help="of which long symbolic answers (default 200)")
    ap.add_argument("--judge-chunk", type=int, default=256, help="prompts per judging chunk")
    ap.add_argument("--prompts", type=int, default=128, help="prompts to sample (default 128)")
    ap.add_argument("--n", type=int, default=4, help="answers per prompt")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--sample-chunk", type=int, default=8, help="prompts per sampling chunk")
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs per side; medians count")
    args = ap.parse_args()

    from thresher.config import ModelConfig
    from thresher.executors import Resources
    from thresher.executors.ray_cluster import LocalRayCluster
    from thresher.records import write_jsonl
    from thresher.sampling import SamplingParams
    from thresher.tiny_models import build_causal_lm

    here = Path(__file__).resolve().parent
    path = os.pathsep.join(p for p in (str(here.parent), os.environ.get("PYTHONPATH", "")) if p)
    prompts, cands = math_work(args.answers, args.expensive, seed=11)
    write_jsonl(work / "candidates.jsonl", cands)
    model_dir = build_causal_lm(work / "model", seed=0, **MODEL_SHAPE)
    model = ModelConfig(name="medium", path=str(model_dir), backend="hf", n=args.n, args={"batch_size": 64},
                        sampling=SamplingParams(temperature=1.0, max_tokens=args.max_tokens, seed=1))
    to_sample = sampling_prompts(args.prompts)
    print(f"{len(cands)} math answers ({args.expensive} expensive); {len(to_sample)} prompts x {args.n} to sample; "
          f"{os.cpu_count()} CPUs on this machine, load average {os.getloadavg()[0]:.1f} (two nodes of one CPU "
          "each can only scale on two idle cores)", flush=True)

    with LocalRayCluster(nodes=1, env={"PYTHONPATH": path}, first_host=2) as one, \
            LocalRayCluster(nodes=2, env={"PYTHONPATH": path}, first_host=10) as two:
        print(f"clusters up: 1 node at {one.address}, 2 nodes at {two.address}", flush=True)

        def math_on(cluster, replicas: int):
            return lambda rep: run_math(cluster.address, prompts, work / "candidates.jsonl",
                                        work / f"math-{replicas}-{rep}", args.judge_chunk)

        def sample_on(cluster, replicas: int):
            m = replace(model, resources=Resources(replicas=replicas, num_cpus=1))
            return lambda rep: run_sampling(cluster.address, m, to_sample, work / f"sample-{replicas}-{rep}",
                                            args.sample_chunk)

        math_one, math_two = alternate("math judging", args.repeats, math_on(one, 1), math_on(two, 2))
        print(f"math judging: 1 node {math_one:.1f}s ({len(cands) / math_one:.0f} answers/s), "
              f"2 nodes {math_two:.1f}s ({len(cands) / math_two:.0f} answers/s); identical verdicts", flush=True)
        hf_one, hf_two = alternate("hf sampling", args.repeats, sample_on(one, 1), sample_on(two, 2))
        n_cands = len(to_sample) * args.n
        print(f"hf sampling: 1 node {hf_one:.1f}s ({n_cands / hf_one:.1f} candidates/s), "
              f"2 nodes {hf_two:.1f}s ({n_cands / hf_two:.1f} candidates/s); identical candidates", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"expensive math judging: 1 node / 2 nodes speedup {math_one / math_two:.2f}")
    print(f"hf sampling: 1 node / 2 nodes speedup {hf_one / hf_two:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
