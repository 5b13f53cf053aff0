"""LLM-as-judge on any sampler backend: pointwise critiques, pairwise both ways, listwise best-of-N.

- pointwise: each candidate gets a written critique and a rubric score
  (1..scale).
- pairwise: every pair of a prompt's candidates is judged in both orders; a
  pair counts only when both orders agree, and the disagreements (position
  bias) are counted on each verdict's metadata and in the stage summary. A
  candidate's score is its share of agreed wins (ties count half).
- listwise: the judge sees all N candidates of a prompt (teachers' and
  students' alike, shuffled so the order says nothing about the model),
  reasons, and names the best. Its whole output is the critique of every
  candidate of that prompt; metadata says which was chosen, its rank and the
  order shown, so the feedback stage can rebuild the judge prompt
  (`llm_templates.listwise_messages`) and export critique-SFT.

Every verdict, failed ones included, records how it was asked for
(`metadata`): `language` (en or zh; with `language: auto` each prompt is
judged in its own language), `with_reference` (whether the prompt showed the
reference answer) and, for listwise, `request` (a digest of the exact judge
prompt). Export builds critique rows from these, not from its own settings.

Judge requests are `Prompt` records (task "judge") sent through a Sampler
(vLLM, transformers or an OpenAI-compatible server), greedy by default.
Output that does not parse is `Verdict.error`, never a default score; so is a
request the backend rejects (longer than the judge model's context), which
never stops the other requests.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from itertools import combinations
from typing import Annotated, Any, Literal

from thresher.errors import UserError
from thresher.judges.base import check_shapes
from thresher.judges.llm_parse import (
    JudgeParseError,
    parse_fields,
    parse_index,
    parse_ranking,
    parse_score,
    parse_winner,
)
from thresher.judges.llm_templates import (
    Language,
    listwise_request,
    pairwise_messages,
    pointwise_messages,
    prompt_digest,
    prompt_language,
)
from thresher.records import Candidate, Message, Prompt, Verdict
from thresher.sampling.params import Sampler, SamplingParams, item_error
from thresher.typed import NonNegativeFloat, PositiveInt, at_least

Mode = Literal["pointwise", "pairwise", "listwise"]
LanguageChoice = Literal["en", "zh", "auto"]
RAW_KEPT = 2000
"""Characters of an unparseable judge output kept in the verdict's metadata, to see what went wrong."""


def _request(messages: list[Message], about: str) -> Prompt:
    return Prompt.create("judge", messages, metadata={"about": about})


class Rejected(str):
    """In place of a judge output: the backend rejected the request; the string says why."""


def _error(cid: str, judge: str, why: str, raw: str, **meta: Any) -> Verdict:
    if isinstance(raw, Rejected):
        return Verdict(cid, judge, error=f"judge request rejected: {raw}", metadata=meta)
    return Verdict(cid, judge, error=f"unparseable judge output: {why}", metadata={"raw": raw[:RAW_KEPT], **meta})


# ---------------------------------------------------------------------------------------------- pointwise
def pointwise_verdict(
    cid: str, judge: str, output: str, scale: int = 10, asked: dict[str, Any] | None = None
) -> Verdict:
    """The verdict a pointwise judge output gives, or an error saying why it does not parse.

    `asked` (how the judge was asked: language, ...) goes on the verdict's metadata either way.
    """
    asked = asked or {}
    if isinstance(output, Rejected):
        return _error(cid, judge, "", output, **asked)
    try:
        fields = parse_fields(output, ("critique", "score"))
        score = parse_score(fields["score"], scale)
    except JudgeParseError as e:
        return _error(cid, judge, str(e), output, **asked)
    return Verdict(cid, judge, score=score, critique=fields["critique"], metadata={"scale": scale, **asked})


# ---------------------------------------------------------------------------------------------- pairwise
def pairwise_outcome(output: str) -> tuple[str, str]:
    """(winner A/B/tie, reasoning) from one pairwise output; raises JudgeParseError."""
    if isinstance(output, Rejected):
        raise JudgeParseError(f"request rejected: {output}")
    fields = parse_fields(output, ("reasoning", "winner"))
    return parse_winner(fields["winner"]), fields["reasoning"]


def pairwise_verdicts(
    cids: Sequence[str], judge: str, outputs: dict[tuple[int, int], str], asked: dict[str, Any] | None = None
) -> list[Verdict]:
    """Verdicts for one prompt's candidates from pairwise outputs.

    `outputs[(i, j)]` is the judge's answer with candidate i shown as A and j
    as B; every pair must be present in both orders. A pair counts when both
    orders name the same candidate (or both say tie); otherwise it is a
    position-bias disagreement. Any unparseable comparison makes the verdicts
    of both its candidates errors.
    """
    n = len(cids)
    asked = asked or {}
    if n < 2:
        return [Verdict(c, judge, critique="Only one candidate: nothing to compare.", metadata=dict(asked)) for c in cids]
    stats = [{"wins": 0, "losses": 0, "ties": 0, "agreed": 0, "disagreed": 0, "unparseable": 0} for _ in cids]
    notes: list[list[str]] = [[] for _ in cids]
    failures: list[list[str]] = [[] for _ in cids]
    raws: list[str] = ["" for _ in cids]
    for i, j in combinations(range(n), 2):
        try:
            first, why_first = pairwise_outcome(outputs[(i, j)])  # i is A
            second, _ = pairwise_outcome(outputs[(j, i)])  # j is A
        except JudgeParseError as e:
            rejected = [o for o in (outputs[(i, j)], outputs[(j, i)]) if isinstance(o, Rejected)]
            for k in (i, j):
                stats[k]["unparseable"] += 1
                failures[k].append(str(e))
                raws[k] = raws[k] or (rejected[0] if rejected else outputs[(i, j)])
            continue
        winner_first = {"A": i, "B": j, "tie": None}[first]
        winner_second = {"A": j, "B": i, "tie": None}[second]
        if winner_first != winner_second:
            for k in (i, j):
                stats[k]["disagreed"] += 1
            continue
        for k, other in ((i, j), (j, i)):
            stats[k]["agreed"] += 1
            if winner_first is None:
                stats[k]["ties"] += 1
                outcome = "tie"
            elif winner_first == k:
                stats[k]["wins"] += 1
                outcome = "win"
            else:
                stats[k]["losses"] += 1
                outcome = "loss"
            notes[k].append(f"vs {cids[other]} ({outcome}): {why_first}")
    verdicts = []
    for k, cid in enumerate(cids):
        s = stats[k]
        if s["unparseable"]:
            why = f"{s['unparseable']} of {n - 1} comparisons unparseable ({failures[k][0]})"
            verdicts.append(_error(cid, judge, why, raws[k], **s, **asked))
            continue
        summary = (
            f"Won {s['wins']}, lost {s['losses']}, tied {s['ties']} of {s['agreed']} comparisons on which both "
            f"orders agreed; {s['disagreed']} flipped with the order."
        )
        if not s["agreed"]:
            verdicts.append(Verdict(cid, judge, critique=summary, metadata={**s, **asked}))
            continue
        score = (s["wins"] + 0.5 * s["ties"]) / s["agreed"]
        verdicts.append(
            Verdict(cid, judge, score=score, critique="\n\n".join([summary, *notes[k]]), metadata={**s, **asked})
        )
    return verdicts


# ---------------------------------------------------------------------------------------------- listwise
def listwise_verdicts(
    cids: Sequence[str], judge: str, shown: Sequence[int], output: str, asked: dict[str, Any] | None = None
) -> list[Verdict]:
    """Verdicts for one prompt's candidates from one listwise output.

    `shown[r]` is the index (into `cids`) of the candidate shown as response
    r + 1. Every candidate gets the judge's whole output as its critique and
    metadata: `chosen`, `best` (the chosen candidate's id), `position` (0-based
    place in the shown order), `label` (the number the judge saw), `shown`
    (candidate ids in shown order) and `rank` when the judge ranked them all.
    The chosen one scores 1.0, the others by rank (1 - (rank - 1) / (N - 1))
    when given, else 0.0. `asked` (language, request digest, ...) goes
    on every verdict, failed ones included.
    """
    n = len(cids)
    asked = asked or {}
    order = [cids[i] for i in shown]
    if isinstance(output, Rejected):
        return [_error(c, judge, "", output, shown=order, **asked) for c in cids]
    try:
        fields = parse_fields(output, ("reasoning", "best"), ("ranking",))
        best = parse_index(fields["best"], n)
        ranking = parse_ranking(fields["ranking"], n) if "ranking" in fields else None
        if ranking is not None and ranking[0] != best:
            raise JudgeParseError(f"best is {best} but the ranking starts with {ranking[0]}")
    except JudgeParseError as e:
        return [_error(c, judge, str(e), output, shown=order, **asked) for c in cids]
    best_id = order[best - 1]
    verdicts = []
    for i, cid in enumerate(cids):
        label = shown.index(i) + 1
        meta: dict[str, Any] = {
            "chosen": cid == best_id,
            "best": best_id,
            "position": label - 1,
            "label": str(label),
            "shown": order,
            **asked,
        }
        if ranking is not None:
            rank = ranking.index(label) + 1
            meta["rank"] = rank
            score = 1.0 - (rank - 1) / (n - 1) if n > 1 else 1.0
        else:
            score = 1.0 if cid == best_id else 0.0
        verdicts.append(Verdict(cid, judge, score=score, critique=output.strip(), metadata=meta))
    return verdicts


# ---------------------------------------------------------------------------------------------- the judge
class LLMJudge:
    """A language model judging candidates in one of three modes (see the module docstring)."""

    def __init__(
        self,
        sampler: Sampler,
        mode: Mode = "pointwise",
        language: LanguageChoice = "en",
        params: SamplingParams | None = None,
        scale: int = 10,
        seed: int = 0,
        name: str = "llm",
        owns_sampler: bool = True,
        with_reference: bool = True,
    ):
        if mode not in ("pointwise", "pairwise", "listwise"):
            raise UserError(f"llm judge {name}: mode {mode!r} is not one of pointwise, pairwise, listwise")
        if language not in ("en", "zh", "auto"):
            raise UserError(f"llm judge {name}: language {language!r} is not one of en, zh, auto")
        self.sampler = sampler
        self.mode = mode
        self.language = language
        self.with_reference = with_reference
        self.params = params or SamplingParams(n=1, temperature=0.0, max_tokens=1024)
        self.scale = scale
        self.seed = seed
        self.name = name
        self.owns_sampler = owns_sampler

    @property
    def kind(self) -> str:
        """pointwise verdicts are scores with critiques (llm); the other modes compare candidates."""
        return "llm" if self.mode == "pointwise" else self.mode

    def _generate(self, requests: list[Prompt]) -> list[str]:
        if not requests:
            return []
        out = self.sampler.sample(requests, self.params)
        if len(out) != len(requests):
            raise RuntimeError(f"judge {self.name}: sampler returned {len(out)} results for {len(requests)} requests")
        return [cands[0].text if item_error(cands[0]) is None else Rejected(item_error(cands[0])) for cands in out]

    def language_of(self, prompt: Prompt) -> Language:
        """The language this judge asks about `prompt` in: its own setting, or the prompt's with `auto`."""
        return prompt_language(prompt) if self.language == "auto" else self.language

    def shown_prompt(self, prompt: Prompt) -> Prompt:
        """The prompt as the judge sees it: without its reference answer unless `with_reference`."""
        return prompt if self.with_reference or prompt.reference is None else replace(prompt, reference=None)

    def asked(self, prompt: Prompt) -> dict[str, Any]:
        """How the judge is asked about `prompt`, recorded on every verdict."""
        return {"language": self.language_of(prompt), "with_reference": self.with_reference}

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        if self.mode == "pointwise":
            return self._pointwise(prompts, candidates)
        if self.mode == "pairwise":
            return self._pairwise(prompts, candidates)
        return self._listwise(prompts, candidates)

    def _pointwise(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        requests = [
            _request(pointwise_messages(self.shown_prompt(p), c.text, self.language_of(p), self.scale), c.id)
            for p, cs in zip(prompts, candidates)
            for c in cs
        ]
        outputs = iter(self._generate(requests))
        return [
            [pointwise_verdict(c.id, self.name, next(outputs), self.scale, self.asked(p)) for c in cs]
            for p, cs in zip(prompts, candidates)
        ]

    def _pairwise(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        keys, requests = [], []
        for k, (p, cs) in enumerate(zip(prompts, candidates)):
            for i, j in combinations(range(len(cs)), 2):
                for a, b in ((i, j), (j, i)):
                    keys.append((k, a, b))
                    messages = pairwise_messages(self.shown_prompt(p), cs[a].text, cs[b].text, self.language_of(p))
                    requests.append(_request(messages, cs[a].id))
        outputs: list[dict[tuple[int, int], str]] = [{} for _ in prompts]
        for (k, a, b), text in zip(keys, self._generate(requests)):
            outputs[k][(a, b)] = text
        return [
            pairwise_verdicts([c.id for c in cs], self.name, outputs[k], self.asked(prompts[k]))
            for k, cs in enumerate(candidates)
        ]

    def shown_order(self, prompt: Prompt, n: int) -> list[int]:
        """The order candidates are shown in: a shuffle seeded by the prompt, so runs repeat."""
        order = list(range(n))
        random.Random(f"{self.seed}:{prompt.id}").shuffle(order)
        return order

    def _listwise(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        requests, shown, asked, how = [], [], [], []
        for k, (p, cs) in enumerate(zip(prompts, candidates)):
            if len(cs) < 2:
                continue
            order = self.shown_order(p, len(cs))
            messages = self.listwise_request(p, [cs[i].text for i in order])
            requests.append(_request(messages, p.id))
            shown.append(order)
            asked.append(k)
            how.append({**self.asked(p), "request": prompt_digest(messages)})
        out: list[list[Verdict]] = [
            [
                Verdict(c.id, self.name, critique="Only one candidate: nothing to compare.", metadata=self.asked(p))
                for c in cs
            ]
            for p, cs in zip(prompts, candidates)
        ]
        for k, order, meta, text in zip(asked, shown, how, self._generate(requests)):
            out[k] = listwise_verdicts([c.id for c in candidates[k]], self.name, order, text, meta)
        return out

    def listwise_request(self, prompt: Prompt, texts: Sequence[str]) -> list[Message]:
        """The listwise judge prompt for `texts` shown in this order, exactly as the judge is asked."""
        return listwise_request(prompt, texts, self.language_of(prompt), self.with_reference)

    def close(self) -> None:
        if self.owns_sampler:
            close = getattr(self.sampler, "close", None)
            if callable(close):
                close()


def llm_judge(
    model: str,
    mode: Mode = "pointwise",
    backend: Literal["vllm", "hf", "openai"] = "hf",
    base_url: str | None = None,
    language: LanguageChoice = "en",
    with_reference: bool = True,
    max_tokens: PositiveInt = 1024,
    temperature: NonNegativeFloat = 0.0,
    scale: Annotated[int, at_least(2)] = 10,
    seed: int = 0,
    sampler_args: dict[str, Any] | None = None,
    sampler: Sampler | None = None,
    name: str = "llm",
) -> LLMJudge:
    """An LLM judge generating with `model` on `backend` (or on a `sampler` the caller already built).

    For backend openai, `model` is the served model name and `base_url` the
    server. `sampler_args` go to the backend (batch_size for hf, engine
    arguments for vllm, max_concurrency for openai). `language: auto` judges
    each prompt in its own language (en or zh); `with_reference: false` hides
    prompts' reference answers from the judge (it judges unaided, as when
    there are none).
    """
    owns = sampler is None
    if sampler is None:
        from thresher.config import ModelConfig
        from thresher.sampling.pool import build_sampler

        config = ModelConfig(name=name, path=model, backend=backend, base_url=base_url, args=sampler_args or {})
        sampler = build_sampler(config)
    params = SamplingParams(n=1, temperature=temperature, max_tokens=max_tokens, seed=seed)
    return LLMJudge(sampler, mode, language, params, scale, seed, name, owns_sampler=owns, with_reference=with_reference)
