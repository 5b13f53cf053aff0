"""`thresher run RECIPE --dry-run` finds every planted recipe mistake at load time.

Each case plants one mistake in an otherwise valid recipe that uses every
plug point (sampler backends, plain and nested judges, an LLM judge's
backend options, a selection policy, export, train and eval options, a
prompt source and a synthesis source). All cases run in one fresh Python
process through the real CLI entry point, so the test also shows that no
model library was imported (nothing was loaded) and times each recipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def _base(tmp: Path) -> dict:
    model = tmp / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    (tmp / "empty").mkdir(exist_ok=True)
    (tmp / "eval.jsonl").write_text(json.dumps({"prompt": "What is 2+3?", "answer": "5", "task": "add"}) + "\n")
    (tmp / "seeds.txt").write_text("Write a poem about the sea.\n")
    return {
        "name": "planted",
        "out_dir": str(tmp / "runs"),
        "rounds": 1,
        "models": [
            {"name": "teacher", "path": str(model), "backend": "hf", "n": 2, "sampling": {"temperature": 0.7}},
            {"name": "student", "path": str(model), "role": "student", "backend": "vllm", "n": 2,
             "args": {"max_model_len": 512}},
        ],
        "judges": [
            {"type": "math", "args": {"workers": 1}},
            {"type": "rm", "name": "rm", "args": {"model": str(model)}},
            {"type": "gate", "name": "verified",
             "args": {"verifier": {"type": "math", "name": "m2"},
                      "ranker": {"type": "rm", "name": "rm2", "args": {"model": str(model)}}}},
        ],
        "prompts": {"train": {"source": "arithmetic", "count": 8}, "eval": {"source": "jsonl", "path": str(tmp / "eval.jsonl")}},
        "selection": {"policy": "top_k", "args": {"k": 2, "judge": "rm"}},
        "export": {"sft": True, "dpo": "best_vs_worst", "args": {"dedup": {"threshold": 0.9}}},
        "train": {"method": "sft", "epochs": 1, "learning_rate": 1.0e-4, "args": {"gradient_accumulation_steps": 2}},
        "eval": {"k": 2, "temperature": 0.7, "max_tokens": 64, "args": {"samples": 4}},
    }


def _set(path: str, value):
    """A mutation setting `a.b[0].c` (creating mappings on the way)."""

    def apply(data: dict, tmp: Path) -> None:
        parts = [int(p[1:-1]) if p.startswith("[") else p for p in path.replace("[", ".[").split(".") if p]
        node = data
        for p in parts[:-1]:
            node = node[p] if isinstance(p, int) or p in node else node.setdefault(p, {})
        node[parts[-1]] = value(tmp) if callable(value) else value

    return apply


def _add_judge(judge: dict):
    return lambda data, tmp: data["judges"].append(judge)


def _self_instruct(data: dict, tmp: Path) -> None:
    data["prompts"]["train"] = {
        "source": "self_instruct", "path": str(tmp / "seeds.txt"), "count": 4,
        "args": {"model": {"name": "gen", "path": str(tmp / "model"), "backend": "vllm"}, "rouge_threshold": 0},
    }


CASES = [
    # judges, nested sub-judges and an LLM judge's backend options
    (_set("judges[0].args.workers", 0), "judges[0].args.workers", "must be at least 1, got 0"),
    (_set("judges[0].args.timout", 5), "judges[0].args.timout", "unknown key (expected one of: timeout, workers)"),
    (_set("judges[0].args.timeout", -1), "judges[0].args.timeout", "must be greater than 0, got -1"),
    (_set("judges[0].type", "maths"), "judges[0].type", "unknown judge 'maths'"),
    (_set("judges[1].args.batch_size", "big"), "judges[1].args.batch_size", "expected an integer, got str 'big'"),
    (_set("judges[1].args.model", lambda t: str(t / "empty")), "judges[1].args.model", "holds no model"),
    (_set("judges[2].args.ranker.args.modle", "x"), "judges[2].args.ranker.args.modle", "unknown key"),
    (_set("judges[2].args.verifier.type", "cod"), "judges[2].args.verifier.type", "unknown judge 'cod'"),
    (_set("judges[2].args.ranker.args.model", lambda t: str(t / "nope")), "judges[2].args.ranker.args.model",
     "does not exist"),
    (_set("judges[1].name", "math"), "judges[1].name", "duplicate judge name 'math'"),
    (_add_judge({"type": "llm", "args": {"model": "m", "backend": "openai", "base_url": "http://x/v1", "mode": "best"}}),
     "judges[3].args.mode", "'best' is not one of"),
    (_add_judge({"type": "llm", "args": {"model": "m", "backend": "openai", "base_url": "http://x/v1",
                                         "sampler_args": {"max_concurency": 4}}}),
     "judges[3].args.sampler_args.max_concurency", "unknown key"),
    (_add_judge({"type": "llm", "args": {"model": "m", "backend": "openai"}}), "judges[3].args.base_url",
     "required for backend openai"),
    # selection
    (_set("selection.args.k", 0), "selection.args.k", "must be at least 1, got 0"),
    (_set("selection.args.jduge", "rm"), "selection.args.jduge", "unknown key"),
    (_set("selection.policy", "bestest"), "selection.policy", "'bestest' is not one of"),
    (_set("selection", {"policy": "random"}), "export.dpo", "policy 'random' does not rank candidates"),
    # export
    (_set("export.args.dedup.treshold", 0.5), "export.args.dedup.treshold", "unknown key"),
    (_set("export.dpo", "worst"), "export.dpo", "'worst' is not one of"),
    (_set("export.args.dpo.max_pairs_per_prompt", 0), "export.args.dpo.max_pairs_per_prompt", "must be at least 1"),
    (_set("export.args.filters.require", "("), "export.args.filters.require", "invalid regex"),
    # train
    (_set("train.epochs", 0), "train.epochs", "must be greater than 0, got 0"),
    (_set("train.learning_rate", -1), "train.learning_rate", "must be greater than 0, got -1"),
    (_set("train.args.gradient_accumulation_step", 2), "train.args.gradient_accumulation_step", "unknown key"),
    (_set("train.args.beta", 0.1), "train.args.beta", "is not an option of method 'sft'"),
    (_set("train.lora", "yes"), "train.lora", "expected true/false, got str 'yes'"),
    (_set("train.data", ["dpo"]), "train.data[0]", "'dpo' cannot be used with method 'sft'"),
    # eval
    (_set("eval.temperature", -1), "eval.temperature", "must be at least 0, got -1"),
    (_set("eval.max_tokens", 0), "eval.max_tokens", "must be at least 1, got 0"),
    (_set("eval.args.sampels", 4), "eval.args.sampels", "unknown key"),
    (_set("eval.args.samples", 1), "eval.args.samples", "must be at least eval.k (2), got 1"),
    # models and their backends
    (_set("models[0].args.batchsize", 4), "models[0].args.batchsize", "unknown key (expected one of: batch_size"),
    (_set("models[1].args.gpu_memory_utilization", 1.5), "models[1].args.gpu_memory_utilization",
     "must be in (0, 1], got 1.5"),
    (_set("models[0].sampling.temperature", -1), "models[0].sampling.temperature", "must be at least 0, got -1"),
    (_set("models[0].n", 0), "models[0].n", "must be at least 1, got 0"),
    (_set("models[0].path", "builtin:tiny-nope"), "models[0].path", "unknown built-in model"),
    # prompts
    (_set("prompts.train.args.digts", 3), "prompts.train.args.digts", "unknown key (expected one of: digits, tasks)"),
    (_set("prompts.train.count", 0), "prompts.train.count", "must be at least 1, got 0"),
    (_set("prompts.eval.path", lambda t: str(t / "missing.jsonl")), "prompts.eval.path", "does not exist"),
    (_set("prompts.eval.task", 5), "prompts.eval.task", "expected a string, got int 5"),
    (_self_instruct, "prompts.train.args.rouge_threshold", "must be in (0, 1], got 0"),
    (_set("rounds", -1), "rounds", "must be at least 0, got -1"),
]

DRIVER = """
import contextlib, io, json, sys, time
from thresher.cli import main

results = []
for path in json.loads(sys.argv[1]):
    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", path, "--dry-run"])
    results.append({"code": code, "stderr": err.getvalue(), "seconds": time.perf_counter() - start})
heavy = sorted(m for m in ("torch", "transformers", "vllm", "trl", "datasets") if m in sys.modules)
print(json.dumps({"results": results, "heavy": heavy}))
"""


def test_dry_run_rejects_every_planted_mistake_with_its_key_path(tmp_path):
    assert len(CASES) >= 25
    paths = []
    valid = tmp_path / "valid.yaml"
    valid.write_text(yaml.safe_dump(_base(tmp_path)))
    paths.append(str(valid))  # first: the valid recipe passes (and warms up the imports the timing leaves out)
    for i, (mutate, _, _) in enumerate(CASES):
        data = _base(tmp_path)
        mutate(data, tmp_path)
        path = tmp_path / f"case{i:02d}.yaml"
        path.write_text(yaml.safe_dump(data))
        paths.append(str(path))
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(paths)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    first, *results = report["results"]
    assert first["code"] == 0, first["stderr"]
    for (_, key, reason), path, got in zip(CASES, paths[1:], results, strict=True):
        lines = got["stderr"].strip().splitlines()
        assert got["code"] == 2, (key, got["stderr"])
        assert len(lines) == 1 and "Traceback" not in got["stderr"], got["stderr"]
        assert lines[0].startswith(f"thresher run: error: {key}: "), (key, lines[0])
        assert reason in lines[0] and lines[0].endswith(f"(in {path})"), (reason, lines[0])
    assert report["heavy"] == [], f"a dry run imported model libraries: {report['heavy']}"
    seconds = sorted(r["seconds"] for r in results)
    assert seconds[len(seconds) // 2] < 0.2 and sum(seconds) / len(seconds) < 0.5, seconds


@pytest.mark.parametrize("flag", ["--set train.epochs=0", "--set judges[0].args.workers=0"])
def test_overrides_are_checked_like_the_recipe(tmp_path, flag):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_base(tmp_path)))
    proc = subprocess.run([sys.executable, "-m", "thresher", "run", str(path), "--dry-run", *flag.split()],
                          capture_output=True, text=True, timeout=120, check=False)
    key = flag.split()[1].split("=")[0]
    assert proc.returncode == 2 and proc.stderr.startswith(f"thresher run: error: {key}: must be"), proc.stderr
