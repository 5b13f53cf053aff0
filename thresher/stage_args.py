"""The typed `args:` of the recipe's train and eval sections (`train.args`, `eval.args`).

They live apart from `config.py` only to keep that file small; `TrainConfig`
and `EvalConfig` parse their `args:` blocks into these when a recipe loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from thresher.typed import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    at_least,
    between,
    call_args,
    check_fields,
)

SFT_ONLY = ("packing", "padding_free", "completion_only_loss", "assistant_only_loss")
DPO_ONLY = ("beta", "label_smoothing", "precompute_ref_log_probs", "sync_ref_model")
"""TrainArgs options only one method's TRL config has: setting one for the other method is a recipe error."""


@dataclass(slots=True)
class TrainArgs:
    """`train.args`: TRL / transformers training options beyond the recipe's own fields.

    None leaves thresher's or TRL's default. Options listed here are checked
    when the recipe loads; `trl:` passes any other field of TRL's SFTConfig /
    DPOConfig through, checked against TRL's config when training starts.
    """

    gradient_accumulation_steps: PositiveInt | None = None
    warmup_steps: NonNegativeFloat | None = None
    """Warm-up steps; below 1, a fraction of all steps."""
    weight_decay: NonNegativeFloat | None = None
    max_grad_norm: PositiveFloat | None = None
    lr_scheduler_type: str | None = None
    optim: str | None = None
    max_steps: PositiveInt | None = None
    """Stop after this many optimizer steps (overrides epochs)."""
    logging_steps: PositiveInt | None = None
    disable_tqdm: bool | None = None
    save_strategy: Literal["no", "steps", "epoch"] | None = None
    save_steps: PositiveInt | None = None
    save_total_limit: PositiveInt | None = None
    bf16: bool | None = None
    fp16: bool | None = None
    tf32: bool | None = None
    gradient_checkpointing: bool | None = None
    dataloader_num_workers: NonNegativeInt | None = None
    adam_beta1: Annotated[float, between(0, 1, high_open=True)] | None = None
    adam_beta2: Annotated[float, between(0, 1, high_open=True)] | None = None
    adam_epsilon: PositiveFloat | None = None
    neftune_noise_alpha: NonNegativeFloat | None = None
    use_liger_kernel: bool | None = None
    torch_compile: bool | None = None
    model_init_kwargs: dict[str, Any] | None = None
    loss_type: str | list[str] | None = None
    packing: bool | None = None
    padding_free: bool | None = None
    completion_only_loss: bool | None = None
    assistant_only_loss: bool | None = None
    beta: PositiveFloat | None = None
    """DPO: strength of the KL penalty toward the reference model."""
    label_smoothing: Annotated[float, between(0, 0.5)] | None = None
    precompute_ref_log_probs: bool | None = None
    sync_ref_model: bool | None = None
    trl: dict[str, Any] = field(default_factory=dict)
    """Any other field of TRL's SFTConfig / DPOConfig, passed through as is."""

    def __post_init__(self) -> None:
        check_fields(self)

    def trainer_kwargs(self) -> dict[str, Any]:
        """The options set, as keyword arguments of TRL's config."""
        named = {k: v for k, v in call_args(self).items() if k != "trl" and v is not None}
        return {**named, **self.trl}


@dataclass(slots=True)
class EvalArgs:
    """`eval.args`: the eval stage's further options."""

    samples: PositiveInt | None = None
    """Answers drawn per prompt for pass@k / maj@k (at least eval.k; more gives a less noisy pass@k)."""
    top_p: Annotated[float, between(0, 1, low_open=True)] = 1.0
    """Nucleus sampling for the k samples."""
    backend: Literal["vllm", "hf"] | None = None
    """Sampler backend when the stage builds its own (default: vllm on a GPU, else hf)."""
    examples_per_task: NonNegativeInt = 3
    """Greedy answers per task kept in eval.json for the report."""
    text_metrics: list[str] = field(default_factory=list)
    """Names or paths of `evaluate` metrics computed between greedy answers and references."""
    judge_task: bool = False
    """Also measure the 'judge' task (after critique-SFT: does the student pick a right answer?)."""
    judge_task_candidates: Annotated[int, at_least(2)] = 4
    """Most candidates a judge-task item shows (as critique-SFT rows)."""
    judge_task_language: Literal["en", "zh", "auto"] = "en"
    """Template language of judge-task items (auto: each prompt's own language)."""
    judge_task_format: Literal["critique", "listwise"] = "critique"
    """critique: the critique-SFT templates; listwise: the listwise LLM-judge prompt, read by its strict parser."""
    judge_task_max_tokens: PositiveInt | None = None
    """Longest judge-task answer (default: eval.max_tokens)."""

    def __post_init__(self) -> None:
        check_fields(self)
