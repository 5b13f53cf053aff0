"""From a recipe's model entry to a ready sampler: the backend registry, and the one sampler builder.

`BACKENDS` maps a recipe's `backend:` value to a plain builder function that
takes the `ModelConfig` and returns a Sampler. Each backend declares the
options a model's `args:` may hold as a typed dataclass (`VLLMArgs`,
`HFArgs`, `OpenAIArgs`), which `ModelConfig` parses when the recipe is
loaded, so `dtype: 16` or `max_concurency: 4` fails with its key path before
any engine starts. Backends import their heavy libraries only when built.

`build_sampler` is the only way thresher turns a model entry into a sampler:
the sampling stage, eval, the LLM judge and prompt synthesis all call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from thresher.errors import ConfigError
from thresher.sampling.params import Sampler
from thresher.typed import (
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    between,
    call_args,
    check_fields,
    from_data,
    takes,
)

if TYPE_CHECKING:  # config imports sampling.params; importing config here at run time would be circular
    from thresher.config import ModelConfig


@dataclass(slots=True)
class VLLMArgs:
    """Options of backend vllm: `vllm.LLM` engine arguments; None leaves vLLM's own default."""

    tensor_parallel_size: PositiveInt | None = None
    dtype: str | None = None
    """auto, float16, bfloat16, float32."""
    gpu_memory_utilization: Annotated[float, between(0, 1, low_open=True)] | None = None
    max_model_len: PositiveInt | None = None
    max_num_seqs: PositiveInt | None = None
    seed: int | None = None
    enforce_eager: bool | None = None
    enable_prefix_caching: bool | None = None
    enable_chunked_prefill: bool | None = None
    quantization: str | None = None
    trust_remote_code: bool | None = None
    tokenizer: str | None = None
    revision: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    """Any other `vllm.EngineArgs` field, passed to the engine as is (vLLM checks it when the engine starts)."""

    def __post_init__(self) -> None:
        check_fields(self)

    def engine_args(self) -> dict[str, Any]:
        named = {k: v for k, v in call_args(self).items() if k != "engine" and v is not None}
        return {**named, **self.engine}


@dataclass(slots=True)
class HFArgs:
    """Options of backend hf (transformers `generate`)."""

    batch_size: PositiveInt = 32
    """Sequences (prompts x n) per `generate` call."""
    device: str | None = None
    """cuda, cuda:1, cpu, mps; default: accelerate's choice."""
    dtype: str | None = None
    """auto, float16, bfloat16, float32; default: the checkpoint's."""

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(slots=True)
class OpenAIArgs:
    """Options of backend openai (an OpenAI-compatible server)."""

    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (a local server needs none)."""
    max_concurrency: PositiveInt = 16
    max_retries: NonNegativeInt = 5
    timeout: PositiveFloat = 600.0
    """Seconds per request."""

    def __post_init__(self) -> None:
        check_fields(self)


def resolve_path(path: str) -> str:
    """`builtin:NAME` becomes the directory of that built-in model (built on first use); other paths stay."""
    from thresher.models import resolve_model_path

    return resolve_model_path(path)


@takes(VLLMArgs)
def _vllm(model: ModelConfig) -> Sampler:
    from thresher.sampling.vllm_backend import VLLMSampler

    return VLLMSampler(resolve_path(model.path), model.name, **model.args.engine_args())


@takes(HFArgs)
def _hf(model: ModelConfig) -> Sampler:
    from thresher.sampling.hf import HFSampler

    return HFSampler(resolve_path(model.path), model.name, **call_args(model.args))


@takes(OpenAIArgs)
def _openai(model: ModelConfig) -> Sampler:
    from thresher.sampling.openai_backend import OpenAISampler

    return OpenAISampler(model.base_url or "", model.path, model.name, **call_args(model.args))


BACKENDS: dict[str, Callable[[ModelConfig], Sampler]] = {
    "vllm": _vllm,
    "hf": _hf,
    "openai": _openai,
}
"""Recipe `backend:` value -> builder of a Sampler from a ModelConfig; each declares its `Args`."""


def backend_args(backend: str, data: Any) -> Any:
    """A model's `args:` parsed into the backend's typed options; errors name `args.<key>` (or `backend`)."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r} (expected one of: {', '.join(BACKENDS)})")
    return from_data(BACKENDS[backend].Args, {} if data is None else data, "args")  # type: ignore[attr-defined]


def build_sampler(model: ModelConfig) -> Sampler:
    """The Sampler a model entry describes (its args were checked when the entry was made)."""
    return BACKENDS[model.backend](model)


def close_sampler(sampler: Any) -> None:
    """Free a sampler's engine or weights, where it holds any."""
    close = getattr(sampler, "close", None)
    if callable(close):
        close()
