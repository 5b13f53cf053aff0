"""The registry of prompt sources a recipe can name, and `load_prompts` over it."""

from __future__ import annotations

import random
from collections.abc import Callable

from thresher.config import PromptSource
from thresher.errors import ConfigError
from thresher.records import Prompt


def _arithmetic(src: PromptSource) -> list[Prompt]:
    from thresher.prompts.arithmetic import arithmetic_suite

    count = src.count if src.count is not None else 400
    return arithmetic_suite(src.split, count, seed=src.seed, **src.args)


def _humaneval(src: PromptSource) -> list[Prompt]:
    from thresher.prompts.humaneval import humaneval_suite

    return humaneval_suite(**src.args)


def _jsonl(src: PromptSource) -> list[Prompt]:
    from thresher.prompts.loaders import load_jsonl_prompts

    if not src.path:
        raise ConfigError("path", "required for source jsonl")
    return load_jsonl_prompts(src.path, columns=src.columns, task=src.task)


def _hf(src: PromptSource) -> list[Prompt]:
    from thresher.prompts.loaders import load_hf_prompts

    if not src.path:
        raise ConfigError("path", "required for source hf (a dataset name or local dataset directory)")
    return load_hf_prompts(src.path, split=src.split, columns=src.columns, task=src.task, **src.args)


def _synthesis_sources() -> dict[str, Callable[[PromptSource], list[Prompt]]]:
    from thresher.prompts.synth_sources import SYNTH_SOURCES

    return dict(SYNTH_SOURCES)


SOURCES: dict[str, Callable[[PromptSource], list[Prompt]]] = {
    "arithmetic": _arithmetic,
    "humaneval": _humaneval,
    "jsonl": _jsonl,
    "hf": _hf,
    **_synthesis_sources(),  # self_instruct, selfqa, magpie, backtranslation, pool_select
}


def load_prompts(src: PromptSource, key: str = "prompts") -> list[Prompt]:
    """Load prompts named by a recipe source; `count` keeps a seeded subset (suites draw exactly count)."""
    if src.source not in SOURCES:
        raise ConfigError(f"{key}.source", f"unknown source {src.source!r} (expected one of: {', '.join(SOURCES)})")
    prompts = SOURCES[src.source](src)
    if src.count is not None and len(prompts) > src.count:
        rng = random.Random(src.seed)
        keep = sorted(rng.sample(range(len(prompts)), src.count))
        prompts = [prompts[i] for i in keep]
    return prompts
