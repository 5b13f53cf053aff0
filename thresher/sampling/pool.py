"""From a recipe's model entry to a ready sampler: the backend registry.

`BACKENDS` maps a recipe's `backend:` value to a plain builder function that
takes the `ModelConfig` and returns a Sampler; a model's `args:` are the
backend's keyword options (checked against the builder's signature, so a
typo fails with its key path). Backends import their heavy libraries only
when built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from thresher.errors import ConfigError, UserError
from thresher.sampling.params import Sampler
from thresher.typed import check_call_args

if TYPE_CHECKING:  # config imports sampling.params; importing config here at run time would be circular
    from thresher.config import ModelConfig


def resolve_path(path: str) -> str:
    """`builtin:NAME` models are resolved by `thresher.models.resolve_model_path` where that exists."""
    from thresher.config import BUILTIN_PREFIX

    if not path.startswith(BUILTIN_PREFIX):
        return path
    try:
        models = importlib.import_module("thresher.models")
    except ModuleNotFoundError:
        models = None
    resolve = getattr(models, "resolve_model_path", None)
    if resolve is None:
        raise UserError(f"model path {path!r}: built-in models are not available in this version of thresher")
    return str(resolve(path))


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
