"""From a recipe's model entry to a ready sampler: the backend registry.

`BACKENDS` maps a recipe's `backend:` value to a plain builder function that
takes the `ModelConfig` and returns a Sampler; a model's `args:` are the
backend's keyword options (checked against the builder's signature, so a
typo fails with its key path). Backends import their heavy libraries only
when built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from thresher.errors import ConfigError
from thresher.sampling.params import Sampler
from thresher.typed import check_call_args

if TYPE_CHECKING:  # config imports sampling.params; importing config here at run time would be circular
    from thresher.config import ModelConfig


def resolve_path(path: str) -> str:
    """`builtin:NAME` becomes the directory of that built-in model (built on first use); other paths stay."""
    from thresher.models import resolve_model_path

    return resolve_model_path(path)


def _vllm(model: ModelConfig) -> Sampler:
    from thresher.sampling.vllm_backend import VLLMSampler

    return VLLMSampler(resolve_path(model.path), model.name, **model.args)


def _hf(model: ModelConfig) -> Sampler:
    from thresher.sampling.hf import HFSampler

    check_call_args(HFSampler, {"path": model.path, **model.args}, "args")
    return HFSampler(resolve_path(model.path), model.name, **model.args)


def _openai(model: ModelConfig) -> Sampler:
    from thresher.sampling.openai_backend import OpenAISampler

    check_call_args(OpenAISampler, {"base_url": model.base_url, "model": model.path, **model.args}, "args")
    return OpenAISampler(model.base_url or "", model.path, model.name, **model.args)


BACKENDS: dict[str, Callable[[ModelConfig], Sampler]] = {
    "vllm": _vllm,
    "hf": _hf,
    "openai": _openai,
}
"""Recipe `backend:` value -> builder of a Sampler from a ModelConfig."""


def build_sampler(model: ModelConfig) -> Sampler:
    """The Sampler a recipe's model entry describes; errors name the model (`models[teacher].args.x: ...`)."""
    if model.backend not in BACKENDS:
        raise ConfigError(
            f"models[{model.name}].backend",
            f"unknown backend {model.backend!r} (expected one of: {', '.join(BACKENDS)})",
        )
    try:
        return BACKENDS[model.backend](model)
    except ConfigError as e:
        raise ConfigError(f"models[{model.name}].{e.key}", e.reason) from None


def close_sampler(sampler: Any) -> None:
    """Free a sampler's engine or weights, where it holds any."""
    close = getattr(sampler, "close", None)
    if callable(close):
        close()
