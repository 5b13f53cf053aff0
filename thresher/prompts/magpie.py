"""Magpie (Xu et al., 2024): an aligned model writes user requests when given only the start of a user turn.

An instruction-tuned model has seen thousands of user turns after its
template's user header. Feed it exactly that header — the chat template
rendered up to where the user's text would begin, after an optional domain
system prompt — and its continuation is a plausible user request, drawn from
the distribution it was aligned on. No seeds, no prompt engineering.

`magpie_prefix` finds that header from the model's own chat template (it
renders a conversation with a marker as the user's text and cuts at the
marker), so it works for ChatML, Llama 3, Gemma, Mistral and any template
that writes the user's text verbatim. The end-of-turn marker that follows
the user's text becomes a stop string.

Raw outputs need cleaning: continuations cut by `max_tokens` (truncated
requests), exact and near duplicates (ROUGE-L), and the heuristic filters
(length, media, assistant voice, repetition) are applied before a request
becomes a prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from tqdm.auto import tqdm

from thresher.errors import UserError
from thresher.prompts.filters import TextFilter, normalize
from thresher.prompts.rouge import Granularity, RougeIndex
from thresher.prompts.synth import SynthesisResult
from thresher.records import Candidate, Prompt
from thresher.sampling.params import Sampler, SamplingParams, item_error
from thresher.typed import PositiveInt, between, check_fields

_MARKER = "MAGPIEUSERTEXT7F3A"


def magpie_prefix(tokenizer: Any, system: str | None = None) -> str:
    """The chat template rendered up to where the user's first message would begin."""
    rendered = _render(tokenizer, system)
    cut = rendered.find(_MARKER)
    if cut < 0:
        raise UserError(f"the chat template of {getattr(tokenizer, 'name_or_path', 'this model')!r} does not write "
                        "the user's text verbatim; cannot build a Magpie prefix from it")
    return rendered[:cut]


def end_of_turn(tokenizer: Any, system: str | None = None) -> list[str]:
    """What the template writes right after the user's text ('<|im_end|>', '<|eot_id|>', ...), as stop strings."""
    rendered = _render(tokenizer, system)
    after = rendered[rendered.find(_MARKER) + len(_MARKER) :].strip()
    return [after.split()[0]] if after else []


def _render(tokenizer: Any, system: str | None) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(f"model {getattr(tokenizer, 'name_or_path', '')!r} has no chat template; Magpie needs an "
                        "aligned (instruct) model with one")
    messages = [{"role": "user", "content": _MARKER}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)


@dataclass(slots=True)
class MagpieConfig:
    system: str | None = None
    """A domain system prompt ("You are an assistant for tax accountants.") that steers what users ask."""
    keep_system: bool = False
    """Also put the system prompt into each kept prompt's messages."""
    rouge_threshold: Annotated[float, between(0, 1, low_open=True)] = 0.7
    granularity: Granularity = "auto"
    filter: TextFilter = field(default_factory=TextFilter)
    batch_size: PositiveInt = 32
    """Completions drawn per request batch."""
    max_requests: PositiveInt | None = None
    """Stop after this many completions even if short of the target (default: 20 per prompt wanted)."""

    def __post_init__(self) -> None:
        check_fields(self)


def magpie(
    sampler: Sampler,
    tokenizer: Any,
    count: int,
    task: str = "magpie",
    params: SamplingParams | None = None,
    config: MagpieConfig | None = None,
    existing: Sequence[Prompt] = (),
    on_batch: Callable[[list[Prompt]], None] | None = None,
) -> SynthesisResult:
    """Draw user requests from `sampler`'s model until `count` pass the filters (or max_requests is spent).

    `tokenizer` is the model's tokenizer (its chat template builds the
    prefix). `existing` prompts from an interrupted run count toward `count`
    and are deduplicated against.
    """
    cfg = config or MagpieConfig()
    params = params or SamplingParams(temperature=1.0, top_p=1.0, max_tokens=256)
    if count < 1:
        raise UserError(f"magpie count must be at least 1, got {count}")
    prefix = magpie_prefix(tokenizer, cfg.system)
    params = replace(params, n=1, stop=sorted(set(params.stop) | set(end_of_turn(tokenizer, cfg.system))))
    index = RougeIndex(cfg.rouge_threshold, cfg.granularity)
    seen: set[str] = set()
    for p in existing:
        seen.add(normalize(p.question))
        index.extend([p.question])
    result = SynthesisResult()
    have = len(existing)
    max_requests = cfg.max_requests if cfg.max_requests is not None else 20 * count
    bar = tqdm(total=count, initial=min(have, count), desc="magpie", unit="prompt")
    while have < count and result.requests < max_requests:
        n = min(cfg.batch_size, max_requests - result.requests)
        # One raw text per draw, each with its own seed slot, so a batch never repeats one sample n times.
        batch_params = replace(params, seed=None if params.seed is None else params.seed + result.requests)
        outs = sampler.complete([prefix] * n, batch_params)
        result.requests += n
        kept = []
        for (c,) in outs:
            if have + len(kept) >= count:
                break
            prompt = _accept(c, task, cfg, index, seen, result)
            if prompt is not None:
                kept.append(prompt)
        result.prompts.extend(kept)
        have += len(kept)
        bar.update(len(kept))
        if on_batch and kept:
            on_batch(kept)
    bar.close()
    return result


def _accept(c: Candidate, task: str, cfg: MagpieConfig, index: RougeIndex,
            seen: set[str], result: SynthesisResult) -> Prompt | None:
    text = c.text.strip()
    why = item_error(c)
    if why is not None:
        result.reject(text, "request_failed", error=why)
        return None
    if c.finish_reason == "length":
        result.reject(text, "truncated")
        return None
    reason = cfg.filter.reason(text)
    if reason:
        result.reject(text, reason)
        return None
    key = normalize(text)
    if key in seen:
        result.reject(text, "duplicate")
        return None
    kept, score, near = index.add(text)
    if not kept:
        result.reject(text, "near_duplicate", rouge_l=round(score, 4), nearest=near)
        return None
    seen.add(key)
    messages = [{"role": "user", "content": text}]
    if cfg.keep_system and cfg.system:
        messages.insert(0, {"role": "system", "content": cfg.system})
    return Prompt.create(task, messages, metadata={"method": "magpie", "system": cfg.system})
