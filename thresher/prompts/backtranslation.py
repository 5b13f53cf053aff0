"""Instruction back-translation (Li et al., 2023, "Humpback"): write the instruction a good text answers.

A domain often has good answers without questions: help-centre articles,
analyst notes, worked solutions. Back-translation asks a model, for each such
text, "what request would this be the answer to?", then — self-curation —
asks it to rate how well the text answers that request on a 1–5 scale, and
keeps only high-rated pairs (the paper trained on the score-5 ones).

The score is parsed from the judge's reply ("Score: 4"); a reply with no
score is recorded as a rejection with reason `unscored`, never read as a low
score. Two responses that get the same request would make two prompts with
one id (which `thresher sample` refuses); the second is rejected as `duplicate`. The original text is kept as the prompt's `reference` (a known good
answer a judge or a selection step can use) and in `metadata["response"]`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from statistics import mean
from typing import Annotated

from tqdm.auto import tqdm

from thresher.prompts.filters import TextFilter
from thresher.prompts.synth import Language, SynthesisResult, ask, first_paragraph, resolve_language
from thresher.records import Prompt
from thresher.sampling.params import Sampler, SamplingParams
from thresher.typed import NonNegativeInt, PositiveInt, between, check_fields

TEMPLATES = {
    "en": {
        "instruction": (
            "Below is a response written by an AI assistant. Write the user's request that this text is the "
            "best answer to. Write only the request, as the user would phrase it, and nothing else.\n\n"
            "Response:\n{response}"
        ),
        "score": (
            "Rate how well the response answers the user's request, on a scale of 1 to 5:\n"
            "1: it does not address the request, or only a small part of it.\n"
            "2: it addresses most of the request but is not written as a direct answer.\n"
            "3: it answers the request helpfully but reads like text from elsewhere (a blog post, a web page).\n"
            "4: a helpful, complete answer written for this request, with minor room for improvement.\n"
            "5: a perfect answer to this request: focused, complete, well organised, no irrelevant content.\n\n"
            "Request: {instruction}\n\nResponse:\n{response}\n\n"
            "Give a one-sentence reason, then the score on its own line as \"Score: N\"."
        ),
    },
    "zh": {
        "instruction": (
            "下面是AI助手写的一段回复。请写出以这段文字为最佳回答的用户请求。只写请求本身，用用户的口吻，不要写其他内容。\n\n"
            "回复：\n{response}"
        ),
        "score": (
            "请按1到5分评价这段回复回答用户请求的程度：\n"
            "1分：没有回应请求，或只回应了很小一部分。\n"
            "2分：回应了请求的大部分，但不是直接的回答。\n"
            "3分：有帮助地回答了请求，但读起来像摘自别处的文字（博客、网页）。\n"
            "4分：针对该请求写的有帮助且完整的回答，略有改进空间。\n"
            "5分：对该请求的完美回答：切题、完整、条理清楚、没有无关内容。\n\n"
            "请求：{instruction}\n\n回复：\n{response}\n\n"
            "先用一句话说明理由，然后单独一行写出“Score: N”（N为分数）。"
        ),
    },
}

_SCORE = re.compile(r"(?:score|评分|分数|得分)\s*[:：]?\s*\**\s*([1-5])(?:\s*/\s*5)?\b", re.IGNORECASE)
_LEADING_LABEL = re.compile(r"^\s*(?:\**\s*)?(?:user'?s? request|request|instruction|用户请求|请求|指令)\s*(?:\**)?\s*[:：]\s*",
                            re.IGNORECASE)


def parse_score(text: str) -> int | None:
    """The last 'Score: N' (N in 1..5) in a rating reply; None when there is none."""
    found = _SCORE.findall(text)
    return int(found[-1]) if found else None


def parse_instruction(text: str) -> str:
    """The request a generation wrote: its first paragraph, without a 'Request:' label or quotes."""
    text = _LEADING_LABEL.sub("", first_paragraph(text))
    return text.strip().strip('"“”').strip()


@dataclass(slots=True)
class BacktranslationConfig:
    min_score: Annotated[float, between(1, 5)] = 4.0
    """Keep pairs whose mean self-curation score reaches this (the paper's best data: 5)."""
    score_samples: PositiveInt = 1
    """Ratings sampled per pair; their mean is the score (more samples, steadier scores)."""
    score_max_tokens: PositiveInt = 256
    """Room for the rating's reason and its 'Score: N' line."""
    filter: TextFilter = field(default_factory=lambda: TextFilter(max_words=300))
    min_response_chars: NonNegativeInt = 50
    """Shorter responses (a title, a fragment) get no instruction."""
    max_response_chars: PositiveInt = 8000
    """Longer responses are cut here in the model's prompts (the full text stays the reference)."""
    language: Language = "auto"
    batch_size: PositiveInt = 32

    def __post_init__(self) -> None:
        check_fields(self)


def backtranslate(
    sampler: Sampler,
    responses: Sequence[str],
    task: str = "backtranslation",
    params: SamplingParams | None = None,
    config: BacktranslationConfig | None = None,
) -> SynthesisResult:
    """An instruction for each response, kept when the model rates the pair `min_score` or higher."""
    cfg = config or BacktranslationConfig()
    params = params or SamplingParams(temperature=0.7, top_p=0.95, max_tokens=256)
    result = SynthesisResult()
    usable = []
    for i, text in enumerate(responses):
        if len(text.strip()) < cfg.min_response_chars:
            result.reject(text, "response_too_short", response_index=i)
        else:
            usable.append((i, text.strip()))
    lang = resolve_language(cfg.language, [t for _, t in usable])
    tpl = TEMPLATES[lang]
    made: set[str] = set()
    for start in tqdm(range(0, len(usable), cfg.batch_size), desc="back-translation", unit="batch"):
        chunk = usable[start : start + cfg.batch_size]
        outs = ask(sampler, [tpl["instruction"].format(response=t[: cfg.max_response_chars]) for _, t in chunk],
                   replace(params, n=1), result)
        result.requests += len(chunk)
        pairs = []
        for (i, response), cands in zip(chunk, outs):
            if cands is None:
                continue
            instruction = parse_instruction(cands[0].text)
            reason = cfg.filter.reason(instruction)
            if reason:
                result.reject(instruction, reason, response_index=i)
            else:
                pairs.append((i, response, instruction))
        ratings = ask(
            sampler,
            [tpl["score"].format(instruction=ins, response=resp[: cfg.max_response_chars]) for _, resp, ins in pairs],
            replace(params, n=cfg.score_samples, temperature=params.temperature if cfg.score_samples > 1 else 0.0,
                    max_tokens=cfg.score_max_tokens),
            result,
        )
        result.requests += len(pairs) * cfg.score_samples
        for (i, response, instruction), cands in zip(pairs, ratings):
            if cands is None:
                continue
            scores = [parse_score(c.text) for c in cands]
            valid = [s for s in scores if s is not None]
            detail = {"response_index": i, "scores": scores}
            if not valid:
                result.reject(instruction, "unscored", ratings=[c.text for c in cands], **detail)
                continue
            score = mean(valid)
            if score < cfg.min_score:
                result.reject(instruction, "low_score", score=score, **detail)
                continue
            prompt = Prompt.create(
                task, [{"role": "user", "content": instruction}], reference=response,
                metadata={"method": "backtranslation", "response": response, "score": score, **detail},
            )
            if prompt.id in made:  # the same request written for two responses: kept once, for the first
                result.reject(instruction, "duplicate", **detail)
                continue
            made.add(prompt.id)
            result.prompts.append(prompt)
    return result
