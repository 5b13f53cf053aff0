"""Recipes: one YAML file parsed once into typed config, with errors that name the key.

A recipe says which prompts, which models (teachers and students), which
judges, how to select and export, how to train and evaluate, and how many
rounds. It is parsed into the dataclasses below at load time; a typo, a wrong
type or a missing file fails there with its key path
(`judges[1].args.model: path 'x' does not exist`), not an hour into a run.

Builders named by a recipe (judges, selection policies) are plain functions in
explicit registries; their `args` are checked against the function's
signature by the stage that owns the registry.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from thresher.errors import ConfigError, UserError
from thresher.executors.base import ExecutorConfig, Resources
from thresher.sampling.params import SamplingParams
from thresher.typed import from_data, join, to_data

BUILTIN_PREFIX = "builtin:"
"""Model paths like `builtin:tiny-student` name models thresher builds itself."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_local_path(value: str) -> bool:
    """True for strings meant as paths on disk, as opposed to hub ids, URLs and built-ins.

    `./models/x`, `/data/x`, `~/x`, `runs/a/round_1/model` are paths;
    `Qwen/Qwen2.5-0.5B-Instruct` (one slash, no leading dot) is a hub id;
    `builtin:...` and `http(s)://...` are neither.
    """
    if value.startswith((BUILTIN_PREFIX, "http://", "https://")):
        return False
    if value.startswith(("/", "./", "../", "~")):
        return True
    return not _HUB_ID.match(value)


def check_path(value: str, key: str) -> None:
    """Fail with the key path if a local path does not exist."""
    if is_local_path(value) and not Path(os.path.expanduser(value)).exists():
        raise ConfigError(key, f"path {value!r} does not exist")


@dataclass(slots=True)
class PromptSource:
    """Where prompts come from: a built-in suite, a JSONL file or a Hugging Face dataset."""

    source: str = "arithmetic"
    """`arithmetic`, `humaneval`, `jsonl` or `hf`."""
    path: str | None = None
    """JSONL file (source jsonl) or dataset name / local dataset directory (source hf)."""
    split: str = "train"
    count: int | None = None
    """Keep at most this many prompts (seeded choice); None keeps all."""
    seed: int = 0
    task: str | None = None
    """Task name for every prompt, where the data has no task column."""
    columns: dict[str, str] = field(default_factory=dict)
    """Map thresher fields (id, task, messages, prompt, reference, tests) to the data's column names."""
    args: dict[str, Any] = field(default_factory=dict)
    """Extra arguments of a built-in suite (e.g. arithmetic `digits`)."""


@dataclass(slots=True)
class PromptsConfig:
    train: PromptSource = field(default_factory=PromptSource)
    eval: PromptSource | None = None
    per_round: Literal["same", "fresh"] = "same"
    """`same`: every round answers the same train prompts; `fresh`: round k draws its own seeded
    subset (the train source's seed + k - 1), so later rounds see prompts earlier ones did not."""


@dataclass(slots=True)
class ModelConfig:
    """One model in the sampling pool."""

    name: str
    path: str
    """Local directory, hub id, `builtin:NAME`, or the served model name for backend openai."""
    role: Literal["teacher", "student"] = "teacher"
    backend: Literal["vllm", "hf", "openai"] = "vllm"
    n: int = 4
    """Candidates per prompt from this model."""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    base_url: str | None = None
    """OpenAI-compatible server URL (backend openai)."""
    args: dict[str, Any] = field(default_factory=dict)
    """Backend options: tensor_parallel_size, dtype, max_concurrency, api_key_env, ..."""
    resources: Resources = field(default_factory=Resources)
    """On a Ray cluster: data-parallel replicas of this model and what each needs (num_gpus, num_cpus)."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError("n", f"must be at least 1, got {self.n}")
        if "/" in self.name:
            raise ConfigError("name", f"{self.name!r} must not contain '/'")
        if self.backend == "openai" and not self.base_url:
            raise ConfigError("base_url", "required for backend openai")


@dataclass(slots=True)
class JudgeConfig:
    """A judge: a builder from the judge registry and its keyword arguments."""

    type: str
    """Registry key: math, code, rm, llm, gate, ensemble, vote, ..."""
    name: str | None = None
    """Name recorded on verdicts; defaults to the type."""
    args: dict[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    """On a Ray cluster: replicas of this judge (reward model / LLM judge actors, verifier workers) and their needs."""


@dataclass(slots=True)
class SelectionConfig:
    policy: str = "best"
    """Registry key of a selection policy: best, threshold, gated, vote, top_k."""
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ExportConfig:
    sft: bool = True
    critique: bool = False
    dpo: str | None = None
    """DPO pair rule (best_vs_worst, best_vs_random, margin, on_policy) or None for no DPO export."""
    language: Literal["en", "zh"] = "en"
    """Language of critique templates."""
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TrainConfig:
    method: Literal["sft", "dpo", "none"] = "sft"
    data: list[str] = field(default_factory=lambda: ["sft"])
    """Which exports to train on: sft, critique_sft, dpo."""
    lora: bool = False
    lora_r: int = 16
    """LoRA rank (with `lora: true`)."""
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    merge_lora: bool = True
    """Save LoRA-trained weights merged into the base (a plain model any sampler loads); false saves the adapter."""
    epochs: float = 1.0
    learning_rate: float = 1e-4
    batch_size: int = 8
    max_length: int = 1024
    args: dict[str, Any] = field(default_factory=dict)
    """Extra TRL config fields, passed through."""


@dataclass(slots=True)
class EvalConfig:
    k: int = 4
    """Samples per prompt for pass@k and maj@k."""
    temperature: float = 1.0
    max_tokens: int = 512
    regression_threshold: float = 0.02
    """Warn when a task's metric drops by more than this between rounds."""
    wandb: bool = False
    """Log to Weights & Biases: offline without WANDB_API_KEY (`wandb sync` later), else online; WANDB_MODE wins."""
    wandb_project: str = "thresher"
    wandb_group: str | None = None
    """W&B group; runs compared with each other (a main arm and its control) share one. Default: the run's name."""
    wandb_tags: list[str] = field(default_factory=list)
    """Extra W&B tags (`policy:<name>` is always added), e.g. `arm:control`."""
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Recipe:
    name: str
    models: list[ModelConfig]
    judges: list[JudgeConfig]
    rounds: int = 1
    seed: int = 0
    out_dir: str = "runs"
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Where chunks of work run: `local` (this process, the default) or `ray` (a cluster)."""

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise ConfigError("rounds", f"must be >= 0, got {self.rounds}")
        if not self.models:
            raise ConfigError("models", "must list at least one model")
        names = [m.name for m in self.models]
        for i, n in enumerate(names):
            if names.index(n) != i:
                raise ConfigError(join(join("models", i), "name"), f"duplicate model name {n!r}")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def students(self) -> list[ModelConfig]:
        return [m for m in self.models if m.role == "student"]


def validate_paths(recipe: Recipe) -> None:
    """Check every local path the recipe names exists, reporting its key path."""
    for i, m in enumerate(recipe.models):
        if m.backend != "openai":
            check_path(m.path, join(join("models", i), "path"))
    for i, j in enumerate(recipe.judges):
        for key in ("model", "path"):
            v = j.args.get(key)
            if isinstance(v, str) and not v.startswith(("http://", "https://")):
                check_path(v, join(join(join("judges", i), "args"), key))
    for split in ("train", "eval"):
        src = getattr(recipe.prompts, split)
        if src is not None and src.source == "jsonl":
            if not src.path:
                raise ConfigError(f"prompts.{split}.path", "required for source jsonl")
            check_path(src.path, f"prompts.{split}.path")


def parse_recipe(data: Any, check_files: bool = True) -> Recipe:
    recipe = from_data(Recipe, data, "")
    if check_files:
        validate_paths(recipe)
    return recipe


def load_recipe(path: str | os.PathLike[str], overrides: list[str] | None = None, check_files: bool = True) -> Recipe:
    """Read a YAML recipe (plus `key.path=value` overrides) into a typed Recipe."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such recipe file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        raise UserError(f"{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{p}: a recipe must be a YAML mapping")
    for item in overrides or []:
        apply_override(data, item)
    try:
        return parse_recipe(data, check_files)
    except ConfigError as e:
        raise ConfigError(e.key, f"{e.reason} (in {p})") from None


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply `train.epochs=2` or `models[0].n=8` (value parsed as YAML) to raw recipe data."""
    if "=" not in item:
        raise UserError(f"override {item!r}: expected KEY=VALUE")
    key, raw = item.split("=", 1)
    value = yaml.safe_load(raw)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", key)
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        idx: Any = int(part[1:-1]) if part.startswith("[") else part
        if isinstance(idx, int):
            if not isinstance(node, list) or idx >= len(node):
                raise UserError(f"override {key!r}: no item {idx} at {part}")
        elif not isinstance(node, dict):
            raise UserError(f"override {key!r}: {part!r} is not inside a mapping")
        if last:
            node[idx] = value
        else:
            if isinstance(idx, str) and idx not in node:
                node[idx] = {}
            node = node[idx]


def dump_recipe(recipe: Recipe, path: str | os.PathLike[str]) -> None:
    """Write the resolved recipe (defaults filled in) next to a run's outputs."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(to_data(recipe), sort_keys=False, allow_unicode=True), encoding="utf-8")
