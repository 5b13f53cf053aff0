"""Build (once) and cache `builtin:tiny-judge`: the teacher, further pretrained on listwise judging.

The judge has the teacher's architecture, tokenizer and weights to start
from, and learns to judge the pools it will see: for training problems, the
teacher and both students each write an answer at temperature 1, as in a
round; the answers are shown in a seeded order in thresher's own listwise
judge prompt (`llm_templates.listwise_request`, in the problem's language,
without the reference answer, as the judge recipe asks), and the target is
the verdict `judging.judge_answer` writes: the solution worked step by step,
each response's answer checked against it, the best and a ranking in the
format `llm_parse` reads.

It is built on first use of `builtin:tiny-judge` (the plain quickstart never
pays for it), into `<quickstart models>/judge-<config-hash>/`, under a file
lock and through a temporary directory, like the other models.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from thresher.quickstart.build import BuildConfig, QuickstartModels, _locked, _say, _train_prompts, build_models
from thresher.store import write_json

POOL = (("teacher", 1), ("student", 1), ("student2", 1))
"""The models whose answers the judge learns to judge, and how many each writes per problem (as in the recipe)."""


@dataclass(frozen=True, slots=True)
class JudgeBuildConfig:
    """How the tiny judge is made; every field is part of its cache key (with the base models' key)."""

    problems_per_task: int = 2000
    """Training problems per quickstart task (fewer where a task has fewer), each judged once with its pool."""
    max_tokens: int = 64
    """Longest answer the pool writes (as the recipe samples)."""
    steps: int = 2400
    batch_size: int = 16
    learning_rate: float = 2e-3
    with_reference: bool = False
    """Whether the judge prompt shows the reference answer (the judge recipe does not: it judges unaided)."""
    version: int = 4

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def judge_dir(models: QuickstartModels, cfg: JudgeBuildConfig | None = None) -> Path:
    return models.root / f"judge-{(cfg or JudgeBuildConfig()).key()}"


def build_judge(
    cfg: JudgeBuildConfig | None = None, base: BuildConfig | None = None, cache: Path | None = None,
    progress: bool = True,
) -> Path:
    """The tiny judge's directory, built on first use (after the base models) and read from the cache afterwards."""
    cfg = cfg or JudgeBuildConfig()
    base = base or BuildConfig()
    models = build_models(base, cache, progress)
    out = judge_dir(models, cfg)
    if (out / "build.json").is_file():
        return out
    with _locked(out.with_name(out.name + ".lock")):
        if (out / "build.json").is_file():
            return out
        tmp = out.with_name(out.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        info = _build_judge(cfg, base, models, tmp, progress)
        write_json(tmp / "build.json", info)
        os.replace(tmp, out)
    return out


def judge_examples(cfg: JudgeBuildConfig, base: BuildConfig, models: QuickstartModels, seed: int) -> tuple[list, list]:
    """(judge request prompts, target verdicts) for training problems judged over the pool's own answers."""
    from thresher.judges.llm_templates import listwise_request, prompt_language
    from thresher.quickstart.judging import judge_answer
    from thresher.records import Prompt
    from thresher.sampling.hf import HFSampler
    from thresher.sampling.params import SamplingParams

    by_task = _train_prompts(base, seed, cfg.problems_per_task)
    problems = [p for pool in by_task.values() for p in pool]
    answers: list[list[str]] = [[] for _ in problems]
    for i, (name, n) in enumerate(POOL):
        sampler = HFSampler(str(models.path(name)), name, batch_size=512)
        params = SamplingParams(n=n, temperature=1.0, max_tokens=cfg.max_tokens, seed=seed + i)
        for row, cands in zip(answers, sampler.sample(problems, params), strict=True):
            row += [c.text for c in cands]
        sampler.close()
    rng = random.Random(seed)
    requests, targets = [], []
    for p, texts in zip(problems, answers, strict=True):
        rng.shuffle(texts)
        language = prompt_language(p)
        requests.append(Prompt.create("judge", listwise_request(p, texts, language, cfg.with_reference)))
        targets.append(judge_answer(p, texts, language))
    return requests, targets


def _build_judge(cfg: JudgeBuildConfig, base: BuildConfig, models: QuickstartModels, out: Path, progress: bool) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from thresher.quickstart.pretrain import encode_examples, pretrain, save_model
    from thresher.sampling.common import load_chat_tokenizer

    started = time.perf_counter()
    torch.manual_seed(base.seed)
    _say(progress, f"building the tiny judge into {out.parent} (once): the pool answers "
         f"{cfg.problems_per_task} training problems per task")
    requests, targets = judge_examples(cfg, base, models, base.seed + 7)
    tokenizer = load_chat_tokenizer(str(models.teacher))
    examples = encode_examples(tokenizer, requests, targets)
    model = AutoModelForCausalLM.from_pretrained(str(models.teacher))
    _say(progress, f"pretraining the judge from the teacher on {len(examples)} listwise verdicts ({cfg.steps} steps)")
    pretrain(
        model, tokenizer, examples, steps=cfg.steps, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
        seed=base.seed, work_dir=out / "work", save_at={}, progress=progress,
    )
    save_model(model, tokenizer, out)
    shutil.rmtree(out / "work", ignore_errors=True)
    tokens = sorted(len(e.input_ids) for e in examples)
    return {
        "config": asdict(cfg), "base": base.key(), "examples": len(examples),
        "tokens_median": tokens[len(tokens) // 2], "tokens_max": tokens[-1],
        "seconds": round(time.perf_counter() - started, 1),
    }
