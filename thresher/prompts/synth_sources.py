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

Everything under `args` is parsed into typed config at once, so a typo fails
with its key path (`args.rouge_treshold: unknown key`). The model is loaded,
used and released inside the call, so its memory is free again before the
round's own sampling starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from thresher.config import ModelConfig, PromptSource
from thresher.errors import ConfigError
from thresher.prompts.synth import SynthesisResult
from thresher.records import Prompt
from thresher.sampling.params import SamplingParams
from thresher.typed import from_data

C = TypeVar("C")

_COMMON = ("model", "sampling")


def _parse_config(cls: type[C], src: PromptSource, extra: tuple[str, ...] = ()) -> C:
    data = {k: v for k, v in src.args.items() if k not in _COMMON + extra}
    return from_data(cls, data, "args")


def _sampling(src: PromptSource, default: SamplingParams) -> SamplingParams:
    from dataclasses import replace

    params = from_data(SamplingParams, src.args["sampling"], "args.sampling") if "sampling" in src.args else default
    return replace(params, seed=src.seed) if params.seed is None else params


def _with_model(src: PromptSource, use: Callable[[Any], SynthesisResult]) -> list[Prompt]:
    from thresher.sampling import build_sampler, close_sampler

    if "model" not in src.args:
        raise ConfigError("args.model", f"required for source {src.source} (a model entry: name, path, backend)")
    model = from_data(ModelConfig, src.args["model"], "args.model")
    sampler = build_sampler(model)
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


def _read_prompts(path: Path, task: str | None) -> list[Prompt]:
    from thresher.prompts.loaders import load_jsonl_prompts

    if path.suffix == ".txt":
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return [Prompt.create(task or "default", [{"role": "user", "content": ln}]) for ln in lines]
    return load_jsonl_prompts(path, task=task)


def _read_texts(path: Path, column: str) -> list[tuple[str, str]]:
    """A directory of text files, one text file, or a JSONL file with a text column."""
    from thresher.records import read_jsonl

    if path.is_dir():
        return [(p.name, p.read_text(encoding="utf-8", errors="replace")) for p in sorted(path.iterdir())
                if p.is_file() and p.suffix in (".txt", ".md")]
    if path.suffix in (".jsonl", ".gz"):
        rows = []
        for lineno, row in enumerate(read_jsonl(path), start=1):
            if not isinstance(row.get(column), str):
                raise ConfigError("args.text_column", f"{path}:{lineno} has no text column {column!r}")
            rows.append((f"{path.name}:{lineno}", row[column]))
        return rows
    return [(path.name, path.read_text(encoding="utf-8", errors="replace"))]


def self_instruct_source(src: PromptSource) -> list[Prompt]:
    """`path`: seed prompts (JSONL or .txt); `count`: new prompts to make (default 100)."""
    from thresher.prompts.self_instruct import SelfInstructConfig, self_instruct

    seeds = _read_prompts(_path(src, "seed prompts"), src.task or "self_instruct")
    cfg = _parse_config(SelfInstructConfig, src)
    params = _sampling(src, SamplingParams(temperature=0.7, top_p=0.95, max_tokens=512))
    return _with_model(src, lambda s: self_instruct(s, seeds, src.count or 100, params, cfg, seed=src.seed))


def selfqa_source(src: PromptSource) -> list[Prompt]:
    """`path`: documents (a directory of .txt/.md, a text file, or JSONL with `args.text_column`, default text)."""
    from thresher.prompts.selfqa import SelfQAConfig, selfqa

    docs = _read_texts(_path(src, "documents"), src.args.get("text_column", "text"))
    cfg = _parse_config(SelfQAConfig, src, extra=("text_column",))
    params = _sampling(src, SamplingParams(temperature=0.7, top_p=0.95, max_tokens=512))
    return _with_model(src, lambda s: selfqa(s, docs, src.task or "selfqa", params, cfg))


def magpie_source(src: PromptSource) -> list[Prompt]:
    """`count`: prompts to make (default 100); `args.tokenizer` for backend openai (default: the model path)."""
    from thresher.prompts.magpie import MagpieConfig, magpie
    from thresher.sampling.common import load_chat_tokenizer

    cfg = _parse_config(MagpieConfig, src, extra=("tokenizer",))
    params = _sampling(src, SamplingParams(temperature=1.0, top_p=1.0, max_tokens=256))

    def use(sampler: Any) -> SynthesisResult:
        tokenizer = getattr(sampler, "tokenizer", None)
        if tokenizer is None or "tokenizer" in src.args:
            tokenizer = load_chat_tokenizer(src.args.get("tokenizer") or src.args["model"]["path"])
        return magpie(sampler, tokenizer, src.count or 100, src.task or "magpie", params, cfg)

    return _with_model(src, use)


def backtranslation_source(src: PromptSource) -> list[Prompt]:
    """`path`: responses (a directory of text files, a text file, or JSONL with `args.text_column`)."""
    from thresher.prompts.backtranslation import BacktranslationConfig, backtranslate

    responses = [t for _, t in _read_texts(_path(src, "responses"), src.args.get("text_column", "text"))]
    cfg = _parse_config(BacktranslationConfig, src, extra=("text_column",))
    params = _sampling(src, SamplingParams(temperature=0.7, top_p=0.95, max_tokens=256))
    return _with_model(src, lambda s: backtranslate(s, responses, src.task or "backtranslation", params, cfg))


def pool_select_source(src: PromptSource) -> list[Prompt]:
    """`path`: the pool (JSONL); `args.targets`: target prompts (JSONL, their task column names the tasks);
    `args.embedding_model`: a sentence-transformers model (default: the packaged all-MiniLM-L6-v2)."""
    from thresher.prompts.pool_select import PoolSelectConfig, select_from_pool, sentence_embedder

    pool = _read_prompts(_path(src, "the pool to select from"), src.task or "pool")
    targets_path = src.args.get("targets")
    if not isinstance(targets_path, str):
        raise ConfigError("args.targets", "required for source pool_select (a JSONL of target prompts)")
    if not Path(targets_path).expanduser().exists():
        raise ConfigError("args.targets", f"path {targets_path!r} does not exist")
    targets = _read_prompts(Path(targets_path).expanduser(), None)
    cfg = _parse_config(PoolSelectConfig, src, extra=("targets", "embedding_model"))
    embedder = sentence_embedder(src.args.get("embedding_model")) if cfg.tag_weight < 1 or cfg.max_similarity else None
    return select_from_pool(pool, targets, cfg, embedder).prompts


SYNTH_SOURCES: dict[str, Callable[[PromptSource], list[Prompt]]] = {
    "self_instruct": self_instruct_source,
    "selfqa": selfqa_source,
    "magpie": magpie_source,
    "backtranslation": backtranslation_source,
    "pool_select": pool_select_source,
}
"""Entries for `thresher.prompts.sources.SOURCES`."""
