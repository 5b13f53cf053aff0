"""SelfQA (Zhang et al., 2023): questions from a domain's own documents, kept only if answerable.

Domain knowledge rarely comes as prompts; it comes as manuals, filings and
scanned reports. SelfQA turns each passage into questions whose answers the
passage states, so the round loop can teach that knowledge. The weak point
of the method is questions the passage does not actually answer (the model
invented a detail, or asked about something the OCR lost): trained on, they
teach the student to make things up. So every question is answered several
times by the same model *with* the passage in view, told to reply
UNANSWERABLE when the passage does not say; a pair is kept only if

- most answers are real answers (`min_answered`), and
- they agree with each other (mean pairwise ROUGE-L, `min_agreement`), and
- they are drawn from the passage (ROUGE-L precision of an answer against
  the passage, `min_support`).

The kept prompt's `reference` is the most central of those answers (the one
agreeing best with the others); the passage stays in `metadata["context"]`
as the reference context a judge can read. By default the prompt is the
question alone (closed book: the student must learn the knowledge), which
also means questions that lean on "the passage" or "the text above" are
rejected; `open_book=True` puts the passage in the prompt instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Annotated

from tqdm.auto import tqdm

from thresher.errors import ConfigError
from thresher.prompts.filters import TextFilter
from thresher.prompts.passages import split_passages
from thresher.prompts.rouge import Granularity, RougeIndex, f_measure, lcs_length, tokenize
from thresher.prompts.synth import Language, SynthesisResult, ask, resolve_language, strip_numbering
from thresher.records import Prompt
from thresher.sampling.params import Sampler, SamplingParams
from thresher.typed import Fraction, NonNegativeInt, PositiveInt, between, check_fields

UNANSWERABLE = "UNANSWERABLE"

TEMPLATES = {
    "en": {
        "questions": (
            "Read the passage below and write {n} different questions whose answers are stated in it. Each "
            "question must make sense on its own, without the passage: name the subject, and do not say "
            "\"the passage\", \"the text\" or \"the author\". Write one question per line and nothing else.\n\n"
            "Passage:\n{passage}"
        ),
        "answer": (
            "Answer the question using only the passage. If the passage does not contain the answer, reply "
            f"exactly: {UNANSWERABLE}\n\nPassage:\n{{passage}}\n\nQuestion: {{question}}"
        ),
        "open_book": "{passage}\n\nBased on the text above, answer: {question}",
    },
    "zh": {
        "questions": (
            "阅读下面的段落，写出{n}个不同的问题，问题的答案必须在段落中写明。每个问题都要能脱离段落单独成立："
            "写明所问的对象，不要出现“本段”“本文”“上文”“作者”等说法。每行写一个问题，不要写其他内容。\n\n段落：\n{passage}"
        ),
        "answer": (
            f"只根据段落回答问题。如果段落中没有答案，只回复：{UNANSWERABLE}\n\n段落：\n{{passage}}\n\n问题：{{question}}"
        ),
        "open_book": "{passage}\n\n根据上面的内容回答：{question}",
    },
}

_REFERS_TO_CONTEXT = re.compile(
    r"\b(the|this|above|given|following) (passage|text|paragraph|excerpt|article)\b|"
    r"mentioned above|本段|本文|上文|文中|段落中|这段|该段|原文",
    re.IGNORECASE,
)
_UNANSWERABLE = re.compile(
    r"unanswerable|not (stated|mentioned|specified|provided|given) in the passage|"
    r"(passage|text) does not (say|state|mention|contain|provide)|cannot be (answered|determined)|"
    r"无法回答|无法确定|没有提到|未提及|没有说明|未说明",
    re.IGNORECASE,
)


@dataclass(slots=True)
class AnswerCheck:
    """How well a question's sampled answers hold up: the numbers the keep rule reads."""

    answered: float
    """Fraction of samples that gave an answer rather than UNANSWERABLE (or nothing)."""
    agreement: float
    """Mean pairwise ROUGE-L F1 between the given answers (1.0 when only one was given)."""
    support: float
    """Mean ROUGE-L precision of the given answers against the passage: how much of them it contains."""
    best: str | None
    """The given answer agreeing best with the others (the reference), None if none was given."""


def is_unanswerable(answer: str) -> bool:
    return not answer.strip() or _UNANSWERABLE.search(answer) is not None


def check_answers(answers: Sequence[str], passage: str, granularity: Granularity = "auto") -> AnswerCheck:
    """Score a question's sampled answers against each other and against the passage."""
    given = [a.strip() for a in answers if not is_unanswerable(a)]
    if not given:
        return AnswerCheck(0.0, 0.0, 0.0, None)
    toks = [tokenize(a, granularity) for a in given]
    passage_toks = tokenize(passage, granularity)
    support = sum(lcs_length(t, passage_toks) / len(t) if t else 0.0 for t in toks) / len(toks)
    if len(given) == 1:
        return AnswerCheck(1 / len(answers), 1.0, support, given[0])
    pair = {(i, j): f_measure(lcs_length(toks[i], toks[j]), len(toks[i]), len(toks[j]))
            for i, j in combinations(range(len(given)), 2)}
    agreement = sum(pair.values()) / len(pair)
    centrality = [sum(v for k, v in pair.items() if i in k) for i in range(len(given))]
    best = given[max(range(len(given)), key=lambda i: centrality[i])]
    return AnswerCheck(len(given) / len(answers), agreement, support, best)


@dataclass(slots=True)
class SelfQAConfig:
    questions_per_passage: PositiveInt = 3
    answer_samples: PositiveInt = 3
    """Answers sampled per question for the consistency check."""
    min_answered: Fraction = 0.6
    min_agreement: Fraction = 0.35
    min_support: Fraction = 0.5
    open_book: bool = False
    """Put the passage in the prompt (reading comprehension) instead of the question alone."""
    rouge_threshold: Annotated[float, between(0, 1, low_open=True)] = 0.7
    """Questions this close (ROUGE-L) to an earlier one, from any passage, are dropped."""
    granularity: Granularity = "auto"
    filter: TextFilter = field(default_factory=lambda: TextFilter(min_words=3, max_words=80))
    max_chars: PositiveInt = 1500
    """Longest passage in characters."""
    min_chars: NonNegativeInt = 200
    """Passages shorter than this (a title, a stray line) get no questions."""
    language: Language = "auto"
    batch_size: PositiveInt = 32
    """Passages sent to the sampler at once."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.min_chars > self.max_chars:
            raise ConfigError("min_chars", f"must be at most max_chars ({self.max_chars}), got {self.min_chars}")


def selfqa(
    sampler: Sampler,
    documents: Sequence[tuple[str, str]],
    task: str = "selfqa",
    params: SamplingParams | None = None,
    config: SelfQAConfig | None = None,
) -> SynthesisResult:
    """Questions from `documents` ((name, text) pairs), each checked against its passage.

    Output order follows documents and passages; `metadata` records the
    source document, the passage index and the answer-check numbers.
    """
    cfg = config or SelfQAConfig()
    params = params or SamplingParams(temperature=0.7, top_p=0.95, max_tokens=512)
    result = SynthesisResult()
    passages: list[tuple[str, int, str]] = []
    for name, text in documents:
        for i, passage in enumerate(split_passages(text, cfg.max_chars, cfg.min_chars)):
            if len(passage) < cfg.min_chars:
                result.reject(passage, "passage_too_short", source=name, passage_index=i)
            else:
                passages.append((name, i, passage))
    lang = resolve_language(cfg.language, [p for _, _, p in passages])
    tpl = TEMPLATES[lang]
    index = RougeIndex(cfg.rouge_threshold, cfg.granularity)
    one = replace(params, n=1)
    for start in tqdm(range(0, len(passages), cfg.batch_size), desc="selfqa", unit="batch"):
        chunk = passages[start : start + cfg.batch_size]
        outs = ask(sampler, [tpl["questions"].format(n=cfg.questions_per_passage, passage=p) for _, _, p in chunk],
                   one, result)
        result.requests += len(chunk)
        pending: list[tuple[str, int, str, str]] = []
        for (name, i, passage), cands in zip(chunk, outs):
            if cands is None:
                continue
            questions = _parse_questions(cands[0].text)[: cfg.questions_per_passage]
            if not questions:
                result.reject(cands[0].text, "no_questions", source=name, passage_index=i)
            for question in questions:
                if _accept_question(question, cfg, index, result, source=name, passage_index=i):
                    pending.append((name, i, passage, question))
        answers = ask(sampler, [tpl["answer"].format(passage=p, question=q) for _, _, p, q in pending],
                      replace(params, n=cfg.answer_samples), result)
        result.requests += len(pending) * cfg.answer_samples
        for (name, i, passage, question), cands in zip(pending, answers):
            if cands is None:
                continue
            texts = [c.text for c in cands]
            check = check_answers(texts, passage, cfg.granularity)
            detail = {"source": name, "passage_index": i, "answers": texts, "answered": round(check.answered, 4),
                          "agreement": round(check.agreement, 4), "support": round(check.support, 4)}
            reason = _answer_reason(check, cfg)
            if reason:
                result.reject(question, reason, **detail)
                continue
            content = tpl["open_book"].format(passage=passage, question=question) if cfg.open_book else question
            result.prompts.append(Prompt.create(
                task, [{"role": "user", "content": content}], reference=check.best,
                metadata={"method": "selfqa", "question": question, "context": passage, **detail},
            ))
    return result


def _parse_questions(text: str) -> list[str]:
    return [q for q in (strip_numbering(line) for line in text.splitlines()) if q]


def _accept_question(question: str, cfg: SelfQAConfig, index: RougeIndex, result: SynthesisResult,
                     **where: object) -> bool:
    reason = cfg.filter.reason(question)
    if reason is None and not cfg.open_book and _REFERS_TO_CONTEXT.search(question):
        reason = "refers_to_passage"
    if reason:
        result.reject(question, reason, **where)
        return False
    kept, score, near = index.add(question)
    if not kept:
        result.reject(question, "near_duplicate", rouge_l=round(score, 4), nearest=near, **where)
    return kept


def _answer_reason(check: AnswerCheck, cfg: SelfQAConfig) -> str | None:
    if check.answered < cfg.min_answered:
        return "unanswerable"
    if check.agreement < cfg.min_agreement:
        return "inconsistent"
    if check.support < cfg.min_support:
        return "unsupported"
    return None
