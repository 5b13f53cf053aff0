"""Make prompts with the field's synthesis methods and write them to prompts.jsonl.

  self-instruct   grow seed instructions into new ones (ROUGE-L dedup, classification-aware inputs)
  selfqa          questions from domain documents, kept only when the passage answers them consistently
  magpie          let an aligned model write user requests from its bare chat template
  backtranslate   write the request each good response answers, keep well-rated pairs
  select          pick the rows of an existing SFT pool closest to a set of target prompts

Every method but `select` needs a model (--model, --backend). The output is
Prompt records (one JSON object per line) ready for `thresher sample` or a
recipe's `prompts.train.path`; --rejected writes every dropped text with the
reason it was dropped. Every flag and input is checked before a model loads,
and --out changes only when a run ends: self-instruct and magpie append to
OUT.partial as they go (run the same command with --resume to continue a
killed run), the others write --out at the end. A run that makes fewer than
--count prompts says so on stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from thresher.errors import UserError
from thresher.typed import PositiveInt, flag_type

HELP = "make prompts: self-instruct, selfqa, magpie, backtranslate, select"

METHODS = ("self-instruct", "selfqa", "magpie", "backtranslate", "select")

POSITIVE = flag_type(PositiveInt)


def _model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", required=required, help="model directory, hub id, or served model name (openai)")
    g.add_argument("--backend", choices=("vllm", "hf", "openai"), default="vllm")
    g.add_argument("--base-url", help="OpenAI-compatible server URL (backend openai)")
    g.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option, value parsed as YAML (dtype=float32, tensor_parallel_size=2, batch_size=8)")
    g.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the method's)")
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--max-tokens", type=int, default=None)
    g.add_argument("--seed", type=int, default=0)


def _output_args(p: argparse.ArgumentParser, task: str | None, resumable: bool = False, task_help: str = "") -> None:
    p.add_argument("--out", default="prompts.jsonl", help="where to write the prompts (default: prompts.jsonl)")
    p.add_argument("--rejected", help="also write every dropped text and its reason here (JSONL)")
    if task is not None:
        p.add_argument("--task", default=task, help=task_help or f"task tag of every prompt (default: {task})")
    if resumable:
        p.add_argument("--resume", action="store_true", help="continue an interrupted run: keep --out, add to it")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def _filter_args(p: argparse.ArgumentParser, min_words: int, max_words: int) -> None:
    p.add_argument("--min-words", type=int, default=min_words, help=f"shortest kept text in words (default {min_words})")
    p.add_argument("--max-words", type=int, default=max_words, help=f"longest kept text in words (default {max_words})")
    p.add_argument("--min-letters", type=float, default=0.5,
                   help="drop a text whose non-space characters are less than this fraction letters (default 0.5)")
    p.add_argument("--rouge-threshold", type=float, default=0.7,
                   help="drop a text whose ROUGE-L with a kept one reaches this (default 0.7)")
    p.add_argument("--granularity", choices=("auto", "char", "jieba"), default="auto",
                   help="ROUGE tokens for Chinese: jieba words (auto) or characters")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="method", metavar="METHOD", required=True)

    p = sub.add_parser("self-instruct", help="grow seed instructions into new ones (Self-Instruct)")
    p.add_argument("--seeds", required=True, help="seed prompts: a JSONL of prompts/instructions or a .txt, one per line")
    p.add_argument("--count", type=POSITIVE, required=True, help="how many new prompts to make")
    p.add_argument("--per-request", type=int, default=4, help="new tasks asked for per request (default 4)")
    p.add_argument("--no-inputs", action="store_true", help="keep bare instructions; skip classifying and inputs")
    p.add_argument("--language", choices=("auto", "en", "zh"), default="auto")
    p.add_argument("--max-requests", type=int, help="give up after this many generation requests")
    _filter_args(p, 3, 150)
    _model_args(p)
    _output_args(p, task="self_instruct", resumable=True,
                 task_help="task of seeds without a task column (default: self_instruct); new prompts inherit it")

    p = sub.add_parser("selfqa", help="questions from domain documents, checked against their passage (SelfQA)")
    p.add_argument("--docs", nargs="+", required=True,
                   help="documents: text files (one document each) or JSONL files with a text column")
    p.add_argument("--text-column", default="text", help="text column of JSONL documents (default: text)")
    p.add_argument("--questions-per-passage", type=int, default=3)
    p.add_argument("--answer-samples", type=int, default=3, help="answers sampled per question for the check")
    p.add_argument("--min-answered", type=float, default=0.6)
    p.add_argument("--min-agreement", type=float, default=0.35)
    p.add_argument("--min-support", type=float, default=0.5)
    p.add_argument("--open-book", action="store_true", help="put the passage in the prompt")
    p.add_argument("--max-chars", type=int, default=1500, help="longest passage in characters")
    p.add_argument("--min-chars", type=int, default=200, help="shortest passage that gets questions")
    p.add_argument("--language", choices=("auto", "en", "zh"), default="auto")
    _filter_args(p, 3, 80)
    _model_args(p)
    _output_args(p, task="selfqa")

    p = sub.add_parser("magpie", help="user requests written by an aligned model from its chat template (Magpie)")
    p.add_argument("--count", type=POSITIVE, required=True, help="how many prompts to make")
    p.add_argument("--system", help="domain system prompt placed before the user turn")
    p.add_argument("--keep-system", action="store_true", help="keep the system prompt in each prompt's messages")
    p.add_argument("--tokenizer", help="tokenizer with the chat template (backend openai; default: --model)")
    p.add_argument("--max-requests", type=int)
    _filter_args(p, 3, 150)
    _model_args(p)
    _output_args(p, task="magpie", resumable=True)

    p = sub.add_parser("backtranslate", help="the request each response answers, self-curated (back-translation)")
    p.add_argument("--responses", nargs="+", required=True,
                   help="responses: JSONL files with a text column, or text files (one response each)")
    p.add_argument("--text-column", default="text", help="text column of JSONL responses (default: text)")
    p.add_argument("--min-score", type=float, default=4.0, help="keep pairs rated at least this, 1-5 (default 4)")
    p.add_argument("--score-samples", type=int, default=1)
    p.add_argument("--language", choices=("auto", "en", "zh"), default="auto")
    p.add_argument("--min-words", type=int, default=3)
    p.add_argument("--max-words", type=int, default=300)
    _model_args(p)
    _output_args(p, task="backtranslation")

    p = sub.add_parser("select", help="rows of an SFT pool closest to target prompts, capped per task")
    p.add_argument("--pool", required=True, help="JSONL pool (messages or prompt/instruction columns)")
    p.add_argument("--targets", required=True, help="JSONL target prompts; their task column defines the tasks")
    p.add_argument("--per-task", type=int, required=True, help="rows kept per target task")
    p.add_argument("--neighbors", type=int, default=1, help="nearest targets averaged per task (default 1)")
    p.add_argument("--tag-weight", type=float, default=0.0, help="weight of tag overlap, 0-1 (default 0)")
    p.add_argument("--min-score", type=float, default=None,
                   help="rows scoring below this for every task are left out (default 0.3; 0.1 with lexical similarity)")
    p.add_argument("--max-similarity", type=float, default=0.95,
                   help="rows this similar to a target are copies and left out (default 0.95; 1.01 keeps them)")
    p.add_argument("--embedding-model", help="sentence-transformers model (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--similarity", choices=("auto", "embedding", "lexical"), default="auto",
                   help="embedding model, or BM25-weighted shared words (reads Chinese: jieba words and character "
                   "bigrams); auto (default): lexical for mostly-Chinese texts when the model reads English only")
    p.add_argument("--tag-with-model", action="store_true",
                   help="tag rows that have no tags (metadata.tags) with --model")
    _model_args(p, required=False)
    _output_args(p, task=None)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    resumable = hasattr(args, "resume")
    output = _Output(out, resumable, getattr(args, "resume", False), args.overwrite)
    rejected_path = Path(args.rejected) if args.rejected else None
    if rejected_path is not None:
        _check_writable(rejected_path, "--rejected")
    # Every flag and input is checked here, before a model loads or any output file changes.
    make = {"self-instruct": _self_instruct, "selfqa": _selfqa, "magpie": _magpie,
            "backtranslate": _backtranslate, "select": _select}[args.method](args)
    existing = output.begin()
    try:
        result = make(existing, output.append)
    except BaseException:
        output.abandon()
        raise
    if not resumable:
        from thresher.records import write_jsonl

        write_jsonl(out, result.prompts)
    total = output.finish(len(result.prompts))
    if rejected_path is not None:
        from thresher.records import write_jsonl

        write_jsonl(rejected_path, result.rejected)
    print(f"thresher prompts {args.method}: {result.summary()}; {total} prompts in {out}")
    wanted = getattr(args, "count", None)
    if wanted is not None and total < wanted:
        print(f"thresher prompts {args.method}: made {total} of --count {wanted} prompts "
              f"({result.requests} model requests spent); run again with --resume and a higher --max-requests "
              "or looser filters to make more", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- output


class _Output:
    """Where prompts go. Nothing at `--out` changes until the run has ended.

    Methods that write as they go (self-instruct, magpie) append to
    `OUT.partial`, renamed over `--out` at the end; a killed run leaves its
    prompts there for `--resume`. The others write `--out` once, atomically.
    """

    def __init__(self, out: Path, resumable: bool, resume: bool, overwrite: bool):
        self.out, self.resumable, self.resume = out, resumable, resume
        self.partial = out.with_name(out.name + ".partial")
        self.begun_at = 0
        _check_writable(out, "--out")
        if out.exists() and not (resume or overwrite):
            raise UserError(f"{out} exists; pass --overwrite to replace it"
                            + (" or --resume to continue it" if resumable else ""))
        if resumable and self.partial.exists() and not (resume or overwrite):
            raise UserError(f"{self.partial} holds the prompts of an interrupted run; pass --resume to continue "
                            "it or --overwrite to start over")

    def begin(self) -> list[Any]:
        """The prompts an earlier run made (with --resume), and an empty or continued working file."""
        if not self.resumable:
            return []
        from thresher.records import Prompt, read_jsonl
        from thresher.store import repair_tail

        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.resume and self.partial.exists():
            repair_tail(self.partial)
        elif self.resume and self.out.exists():
            shutil.copyfile(self.out, self.partial)
        else:
            self.partial.write_text("", encoding="utf-8")
        self.begun_at = self.partial.stat().st_size
        return list(read_jsonl(self.partial, Prompt))

    def abandon(self) -> None:
        """After a failure: drop the working file if the run added nothing to it (nothing to resume)."""
        if self.resumable and self.partial.is_file() and self.partial.stat().st_size == self.begun_at:
            self.partial.unlink()

    def append(self, prompts: list[Any]) -> None:
        from thresher.records import dumps, writing

        with writing(self.partial), open(self.partial, "a", encoding="utf-8") as f:
            f.writelines(dumps(p) + "\n" for p in prompts)
            f.flush()

    def finish(self, made: int) -> int:
        """Put the working file in place; the number of prompts now at `--out`."""
        if not self.resumable:
            return made
        os.replace(self.partial, self.out)
        return sum(1 for line in self.out.read_bytes().splitlines() if line.strip())


def _check_writable(path: Path, flag: str) -> None:
    """An output path must be a file in a directory (not a directory, not under a file)."""
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file path")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"{flag} {path}: {parent} is a file, not a directory")


# ---------------------------------------------------------------- model and params


def _flag_error(e: Any) -> UserError:
    """A config mistake said of the flag that set it (`filter.min_words` -> `--min-words`)."""
    if e.key.startswith("args."):
        return e.as_flag({e.key: f"--model-arg {e.key.removeprefix('args.')}"})
    return e.as_flag({"base_url": "--base-url", "path": "--model"})


def _config(cls: Any, **kwargs: Any) -> Any:
    from thresher.errors import ConfigError

    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise _flag_error(e) from None


def _model(args: argparse.Namespace) -> Any:
    """The model entry the flags describe, checked (its path included) without loading anything."""
    from thresher.config import ModelConfig, check_model_path
    from thresher.errors import ConfigError
    from thresher.sampling.common import default_model_name

    extra: dict[str, Any] = {}
    for item in args.model_arg:
        if "=" not in item:
            raise UserError(f"--model-arg {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        extra[key] = yaml.safe_load(raw)
    config = _config(ModelConfig, name=default_model_name(args.model), path=args.model, backend=args.backend,
                     base_url=args.base_url, args=extra)
    if config.backend != "openai":
        try:
            check_model_path(config.path, "--model")
        except ConfigError as e:
            raise UserError(str(e)) from None
    return config


def _params(args: argparse.Namespace, default: Any) -> Any:
    """The method's default sampling params with the flags' changes, checked (`--top-p 2` names its flag)."""
    from dataclasses import replace

    from thresher.errors import ConfigError

    changes = {k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p),
                                  ("max_tokens", args.max_tokens)) if v is not None}
    try:
        return replace(default, seed=args.seed, **changes)
    except ConfigError as e:
        raise _flag_error(e) from None


def _text_filter(args: argparse.Namespace) -> Any:
    from thresher.prompts.filters import TextFilter

    return _config(TextFilter, min_words=args.min_words, max_words=args.max_words, min_letters=args.min_letters,
                   granularity=args.granularity)


def _with_model(model: Any, use: Any) -> Any:
    """Load the model, run `use(sampler)`, and free the model again."""
    from thresher.sampling import build_sampler, close_sampler

    sampler = build_sampler(model)
    try:
        return use(sampler)
    finally:
        close_sampler(sampler)


# ---------------------------------------------------------------- inputs


def _read_texts(paths: list[str], column: str) -> list[tuple[str, str]]:
    """(name, text) per document: a text file is one document; a JSONL file gives one per line."""
    from thresher.errors import ConfigError
    from thresher.prompts.synth_sources import read_texts

    docs = []
    for path in map(Path, paths):
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        try:
            docs += read_texts(path, column)
        except ConfigError as e:
            raise _flag_error(e) from None
    return docs


def _read_prompts(path: str, task: str | None = None) -> list[Any]:
    from thresher.prompts.synth_sources import read_prompts

    return read_prompts(Path(path), task)


# ---------------------------------------------------------------- methods
# Each reads its inputs and checks its flags now, and returns what loads the model and runs later.


def _self_instruct(args: argparse.Namespace) -> Any:
    from thresher.prompts.self_instruct import SelfInstructConfig, self_instruct
    from thresher.sampling.params import SamplingParams

    config = _config(SelfInstructConfig, per_request=args.per_request, rouge_threshold=args.rouge_threshold,
                     granularity=args.granularity, filter=_text_filter(args), generate_inputs=not args.no_inputs,
                     language=args.language, max_requests=args.max_requests)
    model = _model(args)
    params = _params(args, SamplingParams(temperature=0.7, top_p=0.95, max_tokens=512))
    seeds = _read_prompts(args.seeds, task=args.task)
    return lambda existing, append: _with_model(model, lambda s: self_instruct(
        s, seeds, args.count, params, config, seed=args.seed, existing=existing, on_batch=append))


def _selfqa(args: argparse.Namespace) -> Any:
    from thresher.prompts.selfqa import SelfQAConfig, selfqa
    from thresher.sampling.params import SamplingParams

    config = _config(SelfQAConfig, questions_per_passage=args.questions_per_passage,
                     answer_samples=args.answer_samples, min_answered=args.min_answered,
                     min_agreement=args.min_agreement, min_support=args.min_support, open_book=args.open_book,
                     rouge_threshold=args.rouge_threshold, granularity=args.granularity, filter=_text_filter(args),
                     max_chars=args.max_chars, min_chars=args.min_chars, language=args.language)
    model = _model(args)
    params = _params(args, SamplingParams(temperature=0.7, top_p=0.95))
    docs = _read_texts(args.docs, args.text_column)
    return lambda existing, append: _with_model(model, lambda s: selfqa(s, docs, args.task, params, config))


def _magpie(args: argparse.Namespace) -> Any:
    from thresher.prompts.magpie import MagpieConfig, magpie
    from thresher.sampling.common import load_chat_tokenizer
    from thresher.sampling.params import SamplingParams

    config = _config(MagpieConfig, system=args.system, keep_system=args.keep_system,
                     rouge_threshold=args.rouge_threshold, granularity=args.granularity, filter=_text_filter(args),
                     max_requests=args.max_requests)
    model = _model(args)
    params = _params(args, SamplingParams(temperature=1.0, top_p=1.0, max_tokens=256))

    def use(sampler: Any, existing: list[Any], append: Any) -> Any:
        tokenizer = getattr(sampler, "tokenizer", None)
        if tokenizer is None or args.tokenizer:
            tokenizer = load_chat_tokenizer(args.tokenizer or args.model)
        return magpie(sampler, tokenizer, args.count, args.task, params, config, existing=existing, on_batch=append)

    return lambda existing, append: _with_model(model, lambda s: use(s, existing, append))


def _backtranslate(args: argparse.Namespace) -> Any:
    from thresher.prompts.backtranslation import BacktranslationConfig, backtranslate
    from thresher.prompts.filters import TextFilter
    from thresher.sampling.params import SamplingParams

    config = _config(BacktranslationConfig, min_score=args.min_score, score_samples=args.score_samples,
                     filter=_config(TextFilter, min_words=args.min_words, max_words=args.max_words),
                     language=args.language)
    model = _model(args)
    params = _params(args, SamplingParams(temperature=0.7, top_p=0.95, max_tokens=256))
    responses = [text for _, text in _read_texts(args.responses, args.text_column)]
    return lambda existing, append: _with_model(model, lambda s: backtranslate(s, responses, args.task, params,
                                                                                config))


def _select(args: argparse.Namespace) -> Any:
    from thresher.prompts.pool_select import PoolSelectConfig, select_from_pool, tag_prompts
    from thresher.sampling.params import SamplingParams

    config = _config(PoolSelectConfig, per_task=args.per_task, neighbors=args.neighbors, tag_weight=args.tag_weight,
                     min_score=args.min_score,
                     max_similarity=args.max_similarity if args.max_similarity <= 1 else None,
                     similarity=args.similarity)
    if args.tag_with_model and not args.model:
        raise UserError("--tag-with-model needs --model")
    model = _model(args) if args.tag_with_model else None
    params = _params(args, SamplingParams(temperature=0.0, max_tokens=64))
    pool = _read_prompts(args.pool, task="pool")
    targets = _read_prompts(args.targets)

    def make(existing: list[Any], append: Any) -> Any:
        untagged = [p for p in [*pool, *targets] if "tags" not in p.metadata]
        if model is not None and untagged:
            tags = _with_model(model, lambda s: tag_prompts(s, untagged, params))
            for p, t in zip(untagged, tags):
                p.metadata["tags"] = t
        return select_from_pool(pool, targets, config, embedding_model=args.embedding_model)

    return make
