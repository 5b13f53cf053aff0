"""The registry of prompt sources a recipe can name, their typed arguments, and `load_prompts` over it.

Each source is a function of the recipe's `PromptSource` that declares the
options its `args:` may hold (`@takes(SomeArgs)`); `PromptSource` parses
`args:` into them when the recipe loads, so `prompts.train.args.digts: unknown
key` or a synthesis method's `rouge_threshold: 0` fails before any model loads.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thresher.errors import ConfigError
from thresher.prompts.arithmetic import arithmetic_suite
from thresher.prompts.humaneval import humaneval_suite
from thresher.prompts.synth_sources import SYNTH_SOURCES
from thresher.records import Prompt
from thresher.typed import args_type, call_args, from_data, takes

if TYPE_CHECKING:  # config builds PromptSource (and parses its args) while it is being imported
    from thresher.config import PromptSource


@dataclass(slots=True)
class NoArgs:
    """A source with no options of its own."""


@dataclass(slots=True)
class HFSourceArgs:
    """Options of source hf, passed to `datasets.load_dataset` (None leaves its default)."""

    name: str | None = None
    """The dataset's configuration name (e.g. `main` for gsm8k)."""
    revision: str | None = None
    data_dir: str | None = None
    data_files: str | list[str] | dict[str, str | list[str]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Any other `load_dataset` keyword, passed as is."""


@takes(args_type(arithmetic_suite, ("split", "count", "seed")))
def _arithmetic(src: PromptSource) -> list[Prompt]:
    count = src.count if src.count is not None else 400
    return arithmetic_suite(src.split, count, seed=src.seed, **call_args(src.args))


@takes(args_type(humaneval_suite))
def _humaneval(src: PromptSource) -> list[Prompt]:
    return humaneval_suite(**call_args(src.args))


@takes(NoArgs)
def _jsonl(src: PromptSource) -> list[Prompt]:
    from thresher.prompts.loaders import load_jsonl_prompts

    return load_jsonl_prompts(src.path or "", columns=src.columns, task=src.task)


@takes(HFSourceArgs)
def _hf(src: PromptSource) -> list[Prompt]:
    from thresher.prompts.loaders import load_hf_prompts

    options = {k: v for k, v in call_args(src.args).items() if k != "extra" and v is not None}
    return load_hf_prompts(src.path or "", split=src.split, columns=src.columns, task=src.task,
                           **options, **src.args.extra)


SOURCES: dict[str, Callable[[PromptSource], list[Prompt]]] = {
    "arithmetic": _arithmetic,
    "humaneval": _humaneval,
    "jsonl": _jsonl,
    "hf": _hf,
    **SYNTH_SOURCES,  # self_instruct, selfqa, magpie, backtranslation, pool_select
}
"""Recipe `source:` -> loader; each declares its typed `args` (`thresher.typed.takes`)."""


def source_args(source: str, data: Any) -> Any:
    """A source's `args:` parsed into its typed arguments; errors name `args.<key>` (or `source`)."""
    if source not in SOURCES:
        raise ConfigError("source", f"unknown source {source!r} (expected one of: {', '.join(SOURCES)})")
    return from_data(SOURCES[source].Args, {} if data is None else data, "args")  # type: ignore[attr-defined]


def load_prompts(src: PromptSource, key: str = "prompts") -> list[Prompt]:
    """Load prompts named by a recipe source; `count` keeps a seeded subset (suites draw exactly count)."""
    try:
        prompts = SOURCES[src.source](src)
    except ConfigError as e:
        raise ConfigError(f"{key}.{e.key}", e.reason) from None
    if src.count is not None and len(prompts) > src.count:
        rng = random.Random(src.seed)
        keep = sorted(rng.sample(range(len(prompts)), src.count))
        prompts = [prompts[i] for i in keep]
    return prompts
