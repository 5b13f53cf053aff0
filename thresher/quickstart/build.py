"""Build (once) and cache the quickstart's tiny tokenizer, teacher, two students and reward model.

Everything is derived from `BuildConfig` and its seed: the same config gives
the same models on every machine, and the directory they are cached in is
named by a hash of the config, so changing a number builds anew instead of
reusing stale weights. A build goes to a temporary directory renamed into
place when finished, under a file lock, so two processes asking at once
build once and a killed build leaves nothing half made.

    <cache>/quickstart/<config-hash>/
      teacher/  student/  student2/  rm/   (model + tokenizer directories)
      build.json                           (the config and what each model scored)
      judge-<judge-config-hash>/           (the tiny judge, built on first use: judge_build.py)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from thresher.store import read_json, write_json

MODELS = ("teacher", "student", "student2", "rm")
"""The built-in models, named `builtin:tiny-<name>` in recipes."""


@dataclass(frozen=True, slots=True)
class BuildConfig:
    """How the quickstart models are made; every field is part of the cache key."""

    seed: int = 0
    digits: int = 2
    hidden_size: int = 64
    intermediate_size: int = 256
    num_layers: int = 3
    num_heads: int = 2
    num_kv_heads: int = 1
    vocab_size: int = 1024
    """Room for merges of the Chinese word problem and the judge's prompt as well as the arithmetic."""
    examples: int = 18000
    """Pretraining examples, split over the tasks by `task_weights` (drawn with repeats from the train split)."""
    task_weights: tuple[tuple[str, float], ...] = (
        ("addition", 0.5), ("subtraction", 0.75), ("multiplication", 1.0), ("word_problem", 2.5),
        ("word_problem_zh", 2.0),
    )
    """The quickstart's tasks. Addition is learned first and word problems last; weighting them evens out
    the student's start."""
    teacher_steps: int = 2000
    student_steps: int = 500
    """The student is the teacher's pretraining run saved at this step: right format, weak arithmetic."""
    student2_steps: int = 1000
    """A second student for a pool of several models: the same run saved later (stronger, short of the teacher)."""
    batch_size: int = 64
    learning_rate: float = 3e-3
    rm_prompts_per_task: int = 400
    """Training problems per task the reward model's pairs come from (all of them where a task has fewer)."""
    rm_teacher_samples: int = 2
    rm_student_samples: int = 4
    rm_pairs_per_prompt: int = 3
    rm_epochs: float = 2.0
    rm_learning_rate: float = 5e-4
    rm_beta: float = 0.1
    """DPO's beta for the reward model's pairwise term."""
    version: int = 5
    """Bumped when the build code changes what it makes."""

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class QuickstartModels:
    root: Path

    @property
    def teacher(self) -> Path:
        return self.root / "teacher"

    @property
    def student(self) -> Path:
        return self.root / "student"

    @property
    def student2(self) -> Path:
        return self.root / "student2"

    @property
    def rm(self) -> Path:
        return self.root / "rm"

    def path(self, name: str) -> Path:
        return {"teacher": self.teacher, "student": self.student, "student2": self.student2, "rm": self.rm}[name]


def cache_root() -> Path:
    """`$THRESHER_CACHE`, else `~/.cache/thresher`."""
    env = os.environ.get("THRESHER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "thresher"


def models_dir(cfg: BuildConfig | None = None, cache: Path | None = None) -> Path:
    cfg = cfg or BuildConfig()
    return (cache or cache_root()) / "quickstart" / cfg.key()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_models(cfg: BuildConfig | None = None, cache: Path | None = None, progress: bool = True) -> QuickstartModels:
    """The quickstart models for `cfg`, built on first use and read from the cache afterwards."""
    cfg = cfg or BuildConfig()
    root = models_dir(cfg, cache)
    done = QuickstartModels(root)
    if (root / "build.json").is_file():
        return done
    with _locked(root.with_name(root.name + ".lock")):
        if (root / "build.json").is_file():
            return done
        tmp = root.with_name(root.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        info = _build(cfg, tmp, progress)
        write_json(tmp / "build.json", info)
        os.replace(tmp, root)
    return done


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def quickstart_tasks(cfg: BuildConfig) -> list[str]:
    """The tasks the quickstart models are built for (the keys of `task_weights`)."""
    return [task for task, _ in cfg.task_weights]


def _train_prompts(cfg: BuildConfig, seed: int, per_task: int) -> dict[str, list]:
    """Distinct train-split problems per task (all of them where a task has fewer than `per_task`)."""
    from thresher.errors import UserError
    from thresher.prompts.arithmetic import arithmetic_suite

    space = {
        "addition": 100**cfg.digits,
        "subtraction": (10**cfg.digits) * (10**cfg.digits + 1) // 2,
        "multiplication": 8 * 10**cfg.digits,
    }
    out = {}
    for task in quickstart_tasks(cfg):
        # About 80% of a task's distinct problems are in the train split; ask for fewer than that.
        want = min(per_task, int(0.75 * space[task])) if task in space else per_task
        while True:
            try:
                out[task] = arithmetic_suite("train", want, seed=seed, digits=cfg.digits, tasks=[task])
                break
            except UserError:  # multiplication has few distinct problems: take as many as exist
                if want <= 16:
                    raise
                want = want * 7 // 8
    return out


def pretraining_prompts(cfg: BuildConfig) -> list:
    """`cfg.examples` train problems with repeats, split over the tasks by weight, in seeded order."""
    weights = dict(cfg.task_weights)
    total = sum(weights.values())
    by_task = _train_prompts(cfg, cfg.seed, 3000)
    rng = random.Random(cfg.seed)
    prompts = []
    for task, pool in by_task.items():
        prompts += rng.choices(pool, k=round(cfg.examples * weights.get(task, 0.0) / total))
    rng.shuffle(prompts)
    return prompts


def _build(cfg: BuildConfig, out: Path, progress: bool, extra_saves: dict[int, Path] | None = None) -> dict:
    import torch

    from thresher.quickstart.pretrain import encode_examples, new_causal_lm, pretrain, save_model
    from thresher.quickstart.tokenizer import build_arithmetic_tokenizer, corpus_texts
    from thresher.quickstart.worked import worked_answer

    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True)
    _say(progress, f"building the quickstart models into {out.parent} (once; later runs reuse them)")
    tokenizer = build_arithmetic_tokenizer(corpus_texts(cfg.seed, quickstart_tasks(cfg)), vocab_size=cfg.vocab_size)
    prompts = pretraining_prompts(cfg)
    examples = encode_examples(tokenizer, prompts, [worked_answer(p) for p in prompts])
    model = new_causal_lm(
        tokenizer, cfg.seed, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
    )
    _say(progress, f"pretraining teacher and students ({sum(p.numel() for p in model.parameters())} parameters, "
         f"{cfg.teacher_steps} steps; the students are steps {cfg.student_steps} and {cfg.student2_steps})")
    pretrain(
        model, tokenizer, examples, steps=cfg.teacher_steps, batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, seed=cfg.seed, work_dir=out / "work",
        save_at={cfg.student_steps: out / "student", cfg.student2_steps: out / "student2", **(extra_saves or {})},
        progress=progress,
    )
    save_model(model, tokenizer, out / "teacher")
    _say(progress, "training the reward model")
    rm = _build_reward_model(cfg, out, progress)
    shutil.rmtree(out / "work", ignore_errors=True)
    return {"config": asdict(cfg), "rm": rm, "seconds": round(time.perf_counter() - started, 1)}


def _build_reward_model(cfg: BuildConfig, out: Path, progress: bool) -> dict[str, Any]:
    """The quickstart's reward model: the teacher trained on right/wrong pairs of the answers it will rank.

    The teacher and the student answer training problems at temperature 1,
    as in a round (the student several times: its own right and wrong
    answers are what selection has to tell apart); the math verifier, the
    rounds' oracle, checks every answer; `verified_pairs` pairs a right text
    with a wrong text of the same problem.

    Why a generative reward model and not a sequence classifier: to rank two
    answers of one problem, a model has to check every digit step. A
    classifier of this size reads one score off the last token and would have
    to check them all in that one position; trained on the same pairs it fits
    them only to 57-64% and ranks a round's candidates no better than chance.
    A causal LM checks each step where it is written, as next-token
    prediction, and its mean log-probability of an answer adds the checks up.
    So the reward model is the teacher trained on the pairs with DPO plus an
    SFT term on the chosen answer (TRL's `loss_type: [sigmoid, sft]`, the RPO
    recipe), and its reward is SimPO's and ORPO's: the mean log-probability
    per answer token, which is what the `loglik` judge computes. A slice of
    the problems is held out and the reward model's pair accuracy on it (by
    that same judge) goes into build.json. Returns that summary.
    """
    from thresher.config import TrainConfig
    from thresher.judges.base import close_judge
    from thresher.judges.loglik import loglik_judge
    from thresher.judges.math import math_verifier
    from thresher.records import write_jsonl
    from thresher.sampling.hf import HFSampler
    from thresher.sampling.params import SamplingParams
    from thresher.train.dpo import train_dpo
    from thresher.train.reward import judge_pair_accuracy, verified_pairs

    by_task = _train_prompts(cfg, cfg.seed + 1, cfg.rm_prompts_per_task)
    prompts = [p for pool in by_task.values() for p in pool]
    random.Random(cfg.seed).shuffle(prompts)
    candidates: list[list] = [[] for _ in prompts]
    for name, n in (("teacher", cfg.rm_teacher_samples), ("student", cfg.rm_student_samples)):
        sampler = HFSampler(str(out / name), name, batch_size=512)
        sampled = sampler.sample(prompts, SamplingParams(n=n, temperature=1.0, max_tokens=64, seed=cfg.seed))
        sampler.close()
        for row, cands in zip(candidates, sampled, strict=True):
            row += cands
    verifier = math_verifier()
    try:
        verdicts = verifier.judge(prompts, candidates)
    finally:
        close_judge(verifier)
    held = max(1, len(prompts) // 10)
    train_rows = verified_pairs(prompts[held:], candidates[held:], verdicts[held:], cfg.rm_pairs_per_prompt, cfg.seed)
    test_rows = verified_pairs(prompts[:held], candidates[:held], verdicts[:held], cfg.rm_pairs_per_prompt, cfg.seed)
    pairs = out / "work" / "rm_pairs.jsonl"
    write_jsonl(pairs, train_rows)
    _say(progress, f"reward model: {len(train_rows)} right/wrong pairs of {len(prompts) - held} problems")
    train = TrainConfig(
        method="dpo", epochs=cfg.rm_epochs, learning_rate=cfg.rm_learning_rate, batch_size=32, max_length=256,
        args={"beta": cfg.rm_beta, "loss_type": ["sigmoid", "sft"], "disable_tqdm": not progress, "logging_steps": 10},
    )
    train_dpo(str(out / "teacher"), [pairs], out / "rm", train, seed=cfg.seed)
    accuracy = None
    if test_rows:
        judge = loglik_judge(str(out / "rm"), score="mean", batch_size=256)
        try:
            accuracy = round(judge_pair_accuracy(judge, test_rows), 4)
        finally:
            close_judge(judge)
    return {"pairs": len(train_rows), "heldout_pairs": len(test_rows), "heldout_pair_accuracy": accuracy}


def read_build_info(models: QuickstartModels) -> dict:
    return read_json(models.root / "build.json")
