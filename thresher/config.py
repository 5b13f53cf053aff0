"""Recipes: one YAML file parsed once into typed config, with errors that name the key.

A recipe says which prompts, which models (teachers and students), which
judges, how to select and export, how to train and evaluate, and how many
rounds. It is parsed into the dataclasses below at load time; a typo, a wrong
type or a missing file fails there with its key path
(`judges[1].args.model: path 'x' does not exist`), not an hour into a run.

Every `args:` block is parsed here too, into the typed arguments its plug
point declares (a judge builder's signature, a selection policy's, a sampler
backend's `Args`, a prompt source's, the export, train and eval options), so
`judges[0].args.workers: must be at least 1, got 0` comes from `load_recipe`,
before any model loads, and the stages receive typed arguments. Each
registry lives with its plug point and is imported here only when a config
is built, which keeps `import thresher.config` cheap.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from thresher.errors import ConfigError, UserError
from thresher.executors.base import ExecutorConfig, Resources
from thresher.records import read_text
from thresher.sampling.params import SamplingParams
from thresher.stage_args import DPO_ONLY, SFT_ONLY, EvalArgs, TrainArgs
from thresher.typed import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    between,
    call_args,
    check_fields,
    from_data,
    join,
    to_data,
)

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


MODEL_FILES = ("config.json", "adapter_config.json")
"""A model directory holds one of these (full weights, or a LoRA adapter)."""


def check_model_path(value: str, key: str) -> None:
    """Fail with the key path if a local model path is missing, or is a directory that holds no model."""
    if value.startswith(BUILTIN_PREFIX):
        from thresher.models import BUILTINS

        if value.removeprefix(BUILTIN_PREFIX) not in BUILTINS:
            known = ", ".join(BUILTIN_PREFIX + n for n in BUILTINS)
            raise ConfigError(key, f"unknown built-in model {value!r} (known: {known})")
        return
    check_path(value, key)
    path = Path(os.path.expanduser(value))
    if is_local_path(value) and path.is_dir() and not any((path / f).is_file() for f in MODEL_FILES):
        raise ConfigError(key, f"directory {value!r} holds no model (no {' or '.join(MODEL_FILES)})")


@dataclass(slots=True)
class PromptSource:
    """Where prompts come from: a built-in suite, a JSONL file or a Hugging Face dataset."""

    source: str = "arithmetic"
    """`arithmetic`, `humaneval`, `jsonl` or `hf`."""
    path: str | None = None
    """JSONL file (source jsonl) or dataset name / local dataset directory (source hf)."""
    split: str = "train"
    count: PositiveInt | None = None
    """Keep at most this many prompts (seeded choice); None keeps all."""
    seed: int = 0
    task: str | None = None
    """Task name for every prompt, where the data has no task column."""
    columns: dict[str, str] = field(default_factory=dict)
    """Map thresher fields (id, task, messages, prompt, reference, tests) to the data's column names."""
    args: Any = field(default_factory=dict)
    """The source's own options (arithmetic `digits`, a synthesis method's model and settings), parsed
    into the typed arguments its entry in `thresher.prompts.sources.SOURCES` declares."""

    def __post_init__(self) -> None:
        check_fields(self)
        from thresher.prompts.loaders import check_columns
        from thresher.prompts.sources import source_args

        self.args = source_args(self.source, self.args)
        check_columns(self.columns)
        if self.source in ("jsonl", "hf") and not self.path:
            what = "a JSONL file" if self.source == "jsonl" else "a dataset name or local dataset directory"
            raise ConfigError("path", f"required for source {self.source} ({what})")


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
    n: PositiveInt = 4
    """Candidates per prompt from this model."""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    base_url: str | None = None
    """OpenAI-compatible server URL (backend openai)."""
    args: Any = field(default_factory=dict)
    """Backend options (tensor_parallel_size, dtype, batch_size, max_concurrency, ...), parsed into the
    backend's typed `Args` (`thresher.sampling.pool`)."""
    resources: Resources = field(default_factory=Resources)
    """On a Ray cluster: data-parallel replicas of this model and what each needs (num_gpus, num_cpus)."""

    def __post_init__(self) -> None:
        check_fields(self)
        from thresher.sampling.pool import backend_args

        self.args = backend_args(self.backend, self.args)
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
    args: Any = field(default_factory=dict)
    """The builder's keyword arguments, parsed into its typed arguments (`thresher.judges.registry`);
    a combinator's sub-judges become JudgeConfigs, checked the same way."""
    resources: Resources = field(default_factory=Resources)
    """On a Ray cluster: replicas of this judge (reward model / LLM judge actors, verifier workers) and their needs."""

    def __post_init__(self) -> None:
        from thresher.judges.registry import judge_args

        self.args = judge_args(self.type, self.args)

    @property
    def judge_name(self) -> str:
        """The name verdicts carry."""
        return self.name or self.type


@dataclass(slots=True)
class SelectionConfig:
    policy: str = "best"
    """Registry key of a selection policy: best, threshold, gated, vote, top_k, random."""
    args: Any = field(default_factory=dict)
    """The policy builder's arguments, parsed into its typed arguments (`thresher.feedback.policies`)."""

    def __post_init__(self) -> None:
        from thresher.feedback.policies import policy_args

        self.policy = self.policy.replace("-", "_")
        self.args = policy_args(self.policy, self.args)


@dataclass(slots=True)
class ExportConfig:
    sft: bool = True
    critique: bool = False
    dpo: str | None = None
    """DPO pair rule (best_vs_worst, best_vs_random, margin, on_policy; `-` or `_` alike) or None for no DPO."""
    language: Literal["en", "zh", "auto"] = "auto"
    """Language of the critique rows thresher writes from its own templates (verifier, pointwise judges);
    `auto` writes each in its prompt's language. A listwise judge's rows keep the language it judged in."""
    args: Any = field(default_factory=dict)
    """Export options (filters, dedup, dpo, critique, mix), parsed into `feedback.options.ExportOptions`."""

    def __post_init__(self) -> None:
        from thresher.feedback.dpo import DPO_RULES
        from thresher.feedback.options import parse_export_options

        if self.dpo is not None:
            self.dpo = self.dpo.replace("-", "_")
            if self.dpo not in DPO_RULES:
                raise ConfigError("dpo", f"{self.dpo!r} is not one of {', '.join(DPO_RULES)}")
        self.args = parse_export_options(self.args)

    def kinds(self) -> list[str]:
        """The files this config exports: sft, critique_sft, dpo."""
        return [k for k, on in (("sft", self.sft), ("critique_sft", self.critique), ("dpo", self.dpo)) if on]


DATA_FOR_METHOD = {"sft": ("sft", "critique_sft"), "dpo": ("dpo",), "none": ("sft", "critique_sft", "dpo")}
"""Which exports each training method can read: SFT takes message rows, DPO takes preference rows."""

@dataclass(slots=True)
class TrainConfig:
    method: Literal["sft", "dpo", "none"] = "sft"
    data: list[Literal["sft", "critique_sft", "dpo"]] | None = None
    """Which exports to train on: sft, critique_sft, dpo (default: sft for method sft, dpo for method dpo)."""
    lora: bool = False
    lora_r: PositiveInt = 16
    """LoRA rank (with `lora: true`)."""
    lora_alpha: PositiveInt = 32
    lora_dropout: Annotated[float, between(0, 1, high_open=True)] = 0.0
    merge_lora: bool = True
    """Save LoRA-trained weights merged into the base (a plain model any sampler loads); false saves the adapter."""
    epochs: PositiveFloat = 1.0
    learning_rate: PositiveFloat = 1e-4
    batch_size: PositiveInt = 8
    max_length: PositiveInt | None = 1024
    """Longest training row in tokens (longer rows are truncated); null: no limit."""
    args: TrainArgs = field(default_factory=TrainArgs)
    """Further TRL options (see TrainArgs)."""
    launcher: Literal["inline", "accelerate"] = "inline"
    """`inline`: train in this process; `accelerate`: `accelerate launch` several processes (GPUs)
    and wait for them (DDP, or FSDP / DeepSpeed ZeRO as `config_file` says)."""
    num_processes: PositiveInt | None = None
    """Launcher accelerate: training processes, one per GPU (default: the config file's, else 1)."""
    config_file: str | None = None
    """Launcher accelerate: an `accelerate config` YAML (distributed type, FSDP / DeepSpeed settings)."""
    launch_args: list[str] = field(default_factory=list)
    """Launcher accelerate: more `accelerate launch` flags (`--main_process_port`, `--num_machines`, ...)."""

    def __post_init__(self) -> None:
        check_fields(self)
        self.args = from_data(TrainArgs, self.args, "args")
        if self.data is None:
            self.data = {"sft": ["sft"], "dpo": ["dpo"], "none": []}[self.method]
        allowed = DATA_FOR_METHOD[self.method]
        for i, name in enumerate(self.data):
            if name not in allowed:
                raise ConfigError(join("data", i), f"{name!r} cannot be used with method {self.method!r} "
                                  f"(expected one of: {', '.join(allowed)})")
        if self.method != "none" and not self.data:
            raise ConfigError("data", f"names no export to train on with method {self.method!r}")
        wrong = DPO_ONLY if self.method == "sft" else SFT_ONLY if self.method == "dpo" else ()
        for key in wrong:
            if getattr(self.args, key) is not None:
                raise ConfigError(join("args", key), f"is not an option of method {self.method!r}")
        if self.launcher == "inline" and (self.num_processes or self.config_file or self.launch_args):
            key = "num_processes" if self.num_processes else ("config_file" if self.config_file else "launch_args")
            raise ConfigError(key, "only used with launcher: accelerate")
        if self.config_file is not None and not Path(os.path.expanduser(self.config_file)).is_file():
            raise ConfigError("config_file", f"no such file {self.config_file!r}")


@dataclass(slots=True)
class EvalConfig:
    k: PositiveInt = 4
    """Samples per prompt for pass@k and maj@k."""
    temperature: NonNegativeFloat = 1.0
    max_tokens: PositiveInt = 512
    regression_threshold: NonNegativeFloat = 0.02
    """Warn when a task's metric drops by more than this between rounds."""
    wandb: bool = False
    """Log to Weights & Biases: offline without WANDB_API_KEY (`wandb sync` later), else online; WANDB_MODE wins."""
    wandb_project: str = "thresher"
    wandb_group: str | None = None
    """W&B group; runs compared with each other (a main arm and its control) share one. Default: the run's name."""
    wandb_tags: list[str] = field(default_factory=list)
    """Extra W&B tags (`policy:<name>` is always added), e.g. `arm:control`."""
    args: EvalArgs = field(default_factory=EvalArgs)

    def __post_init__(self) -> None:
        check_fields(self)
        self.args = from_data(EvalArgs, self.args, "args")
        if self.args.samples is not None and self.args.samples < self.k:
            raise ConfigError("args.samples", f"must be at least eval.k ({self.k}), got {self.args.samples}")
        if self.args.judge_task and self.samples < 2:
            raise ConfigError("args.judge_task", "needs sampled answers to show: set eval.k to 2 or more")

    @property
    def samples(self) -> int:
        """Answers drawn per prompt: `args.samples`, else k."""
        return self.args.samples or self.k


@dataclass(slots=True)
class Recipe:
    name: str
    models: list[ModelConfig]
    judges: list[JudgeConfig]
    rounds: NonNegativeInt = 1
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
        check_fields(self)
        if not self.models:
            raise ConfigError("models", "must list at least one model")
        for what, names in (("model", [m.name for m in self.models]), ("judge", [j.judge_name for j in self.judges])):
            for i, n in enumerate(names):
                if names.index(n) != i:
                    raise ConfigError(join(join(what + "s", i), "name"), f"duplicate {what} name {n!r}")
        self._check_sections()

    def _check_sections(self) -> None:
        """Rules between sections: what is exported can be paired and trained on."""
        from thresher.feedback.policies import build_policy

        kinds = self.export.kinds()
        if self.export.dpo is not None:
            policy = build_policy(self.selection, self.seed)
            if not policy.ranks:
                raise ConfigError("export.dpo", f"policy {policy.name!r} does not rank candidates, "
                                  "so it cannot choose DPO pairs")
            if self.export.dpo == "on_policy" and not self.students():
                raise ConfigError("export.dpo", "on_policy pairs need a student model (models[].role: student)")
        for i, m in enumerate(self.export.args.mix):
            if m.target not in kinds:
                raise ConfigError(f"export.args.mix[{i}].target", f"{m.target!r} is not exported (see export)")
        if self.train.method != "none" and self.rounds > 0:
            for i, name in enumerate(self.train.data):
                if name not in kinds:
                    raise ConfigError(f"train.data[{i}]", f"{name!r} is not exported (see export)")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def students(self) -> list[ModelConfig]:
        return [m for m in self.models if m.role == "student"]


def _judge_paths(cfg: JudgeConfig, key: str) -> Any:
    """(key path, value) of every model or file path a judge config names, sub-judges included."""
    for name, value in call_args(cfg.args).items():
        where = join(join(key, "args"), name)
        if name in ("model", "path") and isinstance(value, str) and getattr(cfg.args, "backend", None) != "openai":
            yield where, value
        elif isinstance(value, JudgeConfig):
            yield from _judge_paths(value, where)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, JudgeConfig):
                    yield from _judge_paths(item, join(where, i))


def check_judge_paths(cfg: JudgeConfig, key: str) -> None:
    """Check the model and file paths a judge config names (sub-judges included) exist and hold models."""
    for where, value in _judge_paths(cfg, key):
        check_model_path(value, where)


def validate_paths(recipe: Recipe) -> None:
    """Check every local path the recipe names exists (and every model directory holds a model)."""
    for i, m in enumerate(recipe.models):
        if m.backend != "openai":
            check_model_path(m.path, join(join("models", i), "path"))
    for i, j in enumerate(recipe.judges):
        check_judge_paths(j, join("judges", i))
    for split in ("train", "eval"):
        src = getattr(recipe.prompts, split)
        if src is None:
            continue
        if src.path and src.source != "hf":
            check_path(src.path, f"prompts.{split}.path")
        model, targets = getattr(src.args, "model", None), getattr(src.args, "targets", None)
        if isinstance(model, ModelConfig) and model.backend != "openai":
            check_model_path(model.path, f"prompts.{split}.args.model.path")
        if isinstance(targets, str):
            check_path(targets, f"prompts.{split}.args.targets")


def parse_recipe(data: Any, check_files: bool = True) -> Recipe:
    recipe = from_data(Recipe, data, "")
    if check_files:
        validate_paths(recipe)
    return recipe


def load_recipe(path: str | os.PathLike[str], overrides: list[str] | None = None, check_files: bool = True) -> Recipe:
    """Read a YAML recipe (plus `key.path=value` overrides) into a typed Recipe, every `args:` block included."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such recipe file")
    try:
        data = yaml.safe_load(read_text(p))
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
