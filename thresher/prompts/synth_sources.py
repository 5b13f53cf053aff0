"""The synthesis methods as recipe prompt sources: one function per method taking a `PromptSource`.

A recipe names a method as its prompt source and gives the method's model
and settings under `args`:

```yaml
prompts:
  train:
    source: self_instruct
    path: seeds.jsonl          # seeds (self_instruct), documents (selfqa), responses (backtranslation), pool (pool_select)
    count: 2000                # prompts to make (self_instruct, magpie)
    seed: 0
    task: finance              # task tag (default: the method's name; self_instruct: the seeds' tasks)
    args:
      model: {name: gen, path: Qwen/Qwen2.5-7B-Instruct, backend: vllm}
      sampling: {temperature: 0.7, max_tokens: 512}
      rouge_threshold: 0.7     # any field of the method's config dataclass
      filter: {min_words: 3, max_words: 150}
```

Everything under `args` is parsed into the method's typed arguments (its
config dataclass plus `model` and `sampling`) when the recipe loads, so a typo
fails with its key path (`prompts.train.args.rouge_treshold: unknown key`)
before any model loads. The model is loaded,
used and released inside the call, so its memory is free again before the
round's own sampling starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from thresher.config import ModelConfig, PromptSource
from thresher.errors import ConfigError
from thresher.prompts.backtranslation import BacktranslationConfig
from thresher.prompts.magpie import MagpieConfig
from thresher.prompts.pool_select import PoolSelectConfig
from thresher.prompts.self_instruct import SelfInstructConfig
from thresher.prompts.selfqa import SelfQAConfig
from thresher.prompts.synth import SynthesisResult
from thresher.records import Prompt, iter_lines, load_object, read_text
from thresher.sampling.params import SamplingParams
from thresher.typed import takes


@dataclass(slots=True, kw_only=True)
class SelfInstructArgs(SelfInstructConfig):
    model: ModelConfig
    """The model that writes instructions (a model entry: name, path, backend, args)."""
    sampling: SamplingParams | None = None


@dataclass(slots=True, kw_only=True)
class SelfQAArgs(SelfQAConfig):
    model: ModelConfig
    sampling: SamplingParams | None = None
    text_column: str = "text"
    """Text column of JSONL documents."""


@dataclass(slots=True, kw_only=True)
class MagpieArgs(MagpieConfig):
    model: ModelConfig
    sampling: SamplingParams | None = None
    tokenizer: str | None = None
    """Tokenizer with the chat template (backend openai; default: the model path)."""


@dataclass(slots=True, kw_only=True)
class BacktranslationArgs(BacktranslationConfig):
    model: ModelConfig
    sampling: SamplingParams | None = None
    text_column: str = "text"
    """Text column of JSONL responses."""


@dataclass(slots=True, kw_only=True)
class PoolSelectArgs(PoolSelectConfig):
    targets: str
    """Target prompts (JSONL; their task column names the tasks)."""
    embedding_model: str | None = None
    """A sentence-transformers model (default: the packaged all-MiniLM-L6-v2)."""


def _sampling(src: PromptSource, default: SamplingParams) -> SamplingParams:
    params = src.args.sampling or default
    return replace(params, seed=src.seed) if params.seed is None else params


def _with_model(src: PromptSource, use: Callable[[Any], SynthesisResult]) -> list[Prompt]:
    from thresher.sampling import build_sampler, close_sampler

    sampler = build_sampler(src.args.model)
    try:
        return use(sampler).prompts
    finally:
        close_sampler(sampler)


def _path(src: PromptSource, what: str) -> Path:
    if not src.path:
        raise ConfigError("path", f"required for source {src.source} ({what})")
    path = Path(src.path).expanduser()
    if not path.exists():
        raise ConfigError("path", f"path {src.path!r} does not exist")
    return path


def read_prompts(path: Path, task: str | None) -> list[Prompt]:
    """Prompts from a JSONL file, or from a .txt file with one prompt per line."""
    from thresher.prompts.loaders import load_jsonl_prompts

    if path.suffix == ".txt":
        lines = [ln.strip() for ln in read_text(path).splitlines() if ln.strip()]
        return [Prompt.create(task or "default", [{"role": "user", "content": ln}]) for ln in lines]
    return load_jsonl_prompts(path, task=task)


def read_texts(path: Path, column: str) -> list[tuple[str, str]]:
    """(name, text) per document: a directory of .txt/.md files, a text file, or a JSONL file (one per line)."""
    if path.is_dir():
        return [(p.name, p.read_text(encoding="utf-8", errors="replace")) for p in sorted(path.iterdir())
                if p.is_file() and p.suffix in (".txt", ".md")]
    if path.suffix in (".jsonl", ".gz"):
        rows = []
        for lineno, line in iter_lines(path):
            row = load_object(line, path, lineno)
            if not isinstance(row.get(column), str):
                raise ConfigError("text_column", f"{path}:{lineno} has no text column {column!r}")
            rows.append((f"{path.name}:{lineno}", row[column]))
        return rows
    return [(path.name, path.read_text(encoding="utf-8", errors="replace"))]


@takes(SelfInstructArgs)
def self_instruct_source(src: PromptSource) -> list[Prompt]:
    """`path`: seed prompts (JSONL or .txt); `count`: new prompts to make (default 100)."""
    from thresher.prompts.self_instruct import self_instruct

    seeds = read_prompts(_path(src, "seed prompts"), src.task or "self_instruct")
    params = _sampling(src, SamplingParams(temperature=0.7, top_p=0.95, max_tokens=512))
    return _with_model(src, lambda s: self_instruct(s, seeds, src.count or 100, params, src.args, seed=src.seed))


@takes(SelfQAArgs)
def selfqa_source(src: PromptSource) -> list[Prompt]:
    """`path`: documents (a directory of .txt/.md, a text file, or JSONL with `args.text_column`, default text)."""
    from thresher.prompts.selfqa import selfqa

    docs = read_texts(_path(src, "documents"), src.args.text_column)
    params = _sampling(src, SamplingParams(temperature=0.7, top_p=0.95, max_tokens=512))
    return _with_model(src, lambda s: selfqa(s, docs, src.task or "selfqa", params, src.args))


@takes(MagpieArgs)
def magpie_source(src: PromptSource) -> list[Prompt]:
    """`count`: prompts to make (default 100); `args.tokenizer` for backend openai (default: the model path)."""
    from thresher.prompts.magpie import magpie
    from thresher.sampling.common import load_chat_tokenizer

    params = _sampling(src, SamplingParams(temperature=1.0, top_p=1.0, max_tokens=256))

    def use(sampler: Any) -> SynthesisResult:
        tokenizer = getattr(sampler, "tokenizer", None)
        if tokenizer is None or src.args.tokenizer:
            tokenizer = load_chat_tokenizer(src.args.tokenizer or src.args.model.path)
        return magpie(sampler, tokenizer, src.count or 100, src.task or "magpie", params, src.args)

    return _with_model(src, use)


@takes(BacktranslationArgs)
def backtranslation_source(src: PromptSource) -> list[Prompt]:
    """`path`: responses (a directory of text files, a text file, or JSONL with `args.text_column`)."""
    from thresher.prompts.backtranslation import backtranslate

    responses = [t for _, t in read_texts(_path(src, "responses"), src.args.text_column)]
    params = _sampling(src, SamplingParams(temperature=0.7, top_p=0.95, max_tokens=256))
    return _with_model(src, lambda s: backtranslate(s, responses, src.task or "backtranslation", params, src.args))


@takes(PoolSelectArgs)
def pool_select_source(src: PromptSource) -> list[Prompt]:
    """`path`: the pool (JSONL); `args.targets`: target prompts (JSONL, their task column names the tasks);
    `args.embedding_model`: a sentence-transformers model (default: the packaged all-MiniLM-L6-v2);
    `args.similarity`: auto, embedding or lexical (see `PoolSelectConfig`)."""
    from thresher.prompts.pool_select import select_from_pool

    cfg = src.args
    pool = read_prompts(_path(src, "the pool to select from"), src.task or "pool")
    targets_path = Path(cfg.targets).expanduser()
    if not targets_path.exists():
        raise ConfigError("args.targets", f"path {cfg.targets!r} does not exist")
    targets = read_prompts(targets_path, None)
    return select_from_pool(pool, targets, cfg, embedding_model=cfg.embedding_model).prompts


SYNTH_SOURCES: dict[str, Callable[[PromptSource], list[Prompt]]] = {
    "self_instruct": self_instruct_source,
    "selfqa": selfqa_source,
    "magpie": magpie_source,
    "backtranslation": backtranslation_source,
    "pool_select": pool_select_source,
}
"""Entries for `thresher.prompts.sources.SOURCES`."""
