"""The "judge" task: after critique-SFT, does the student pick the right candidate?

Critique-SFT teaches the student to judge: the user turn shows a problem and
numbered candidates, the assistant turn judges each and ends with a
conclusion naming the best. This task asks the same of the student on
held-out prompts, in the format it was taught (`form`): `critique`, the
critique-SFT templates of `thresher.feedback.critique` (rows from verifier
findings), or `listwise`, thresher's listwise LLM-judge prompt without the
reference answer, read by the LLM judge's own strict parser (rows that are a
listwise judge's exchanges). Candidates come from the student's own eval
samples: at least one right and one wrong answer per item, as the oracle
verifier says. The score is how often the conclusion names a right one, next
to what a uniform guess would score, overall and per source task
(`pass@1[<task>]`). Language `auto` asks each item in its prompt's language.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thresher.eval.metrics import judge_task_metrics
from thresher.judges.llm_templates import prompt_language
from thresher.records import Candidate, Prompt, Verdict
from thresher.sampling.params import Sampler, SamplingParams

JUDGE_TASK = "judge"
"""Task name the judge metrics are reported under."""


@dataclass(slots=True)
class JudgeItem:
    prompt: Prompt
    """The judge prompt: the problem and the numbered candidates."""
    correct: list[bool]
    """The oracle's verdict on each shown candidate, in the order shown."""
    language: str = "en"
    form: str = "critique"


def _template(language: str) -> Any:
    from thresher.feedback.critique import TEMPLATES

    return TEMPLATES[language]


def judge_prompt_text(question: str, texts: Sequence[str], language: str = "en") -> str:
    """The user turn of a critique-SFT row (verifier or pointwise form) for these candidates."""
    t = _template(language)
    parts = [t.instruction.format(n=len(texts)), t.problem.format(question=question)]
    parts += [t.candidate.format(label=str(i + 1), text=text) for i, text in enumerate(texts)]
    return "\n\n".join(parts)


def _item_text(p: Prompt, shown: Sequence[str], language: str, form: str) -> str:
    if form == "listwise":
        from thresher.judges.llm_templates import listwise_request

        return listwise_request(p, shown, language, with_reference=False)[0]["content"]  # type: ignore[arg-type]
    return judge_prompt_text(p.question, shown, language)


def build_items(
    prompts: Sequence[Prompt],
    samples: Sequence[Sequence[Candidate]],
    verdicts: Sequence[Sequence[Verdict | None]],
    language: str = "en",
    max_candidates: int = 4,
    seed: int = 0,
    form: str = "critique",
) -> list[JudgeItem]:
    """One judge item per prompt whose distinct samples include a right and a wrong answer."""
    items = []
    for p, cands, vs in zip(prompts, samples, verdicts):
        seen: dict[str, bool] = {}
        for c, v in zip(cands, vs):
            if v is not None and v.ok and v.correct is not None and c.text.strip() and c.text not in seen:
                seen[c.text] = bool(v.correct)
        right = [t for t, ok in seen.items() if ok]
        wrong = [t for t, ok in seen.items() if not ok]
        if not right or not wrong:
            continue
        rng = random.Random(f"{seed}:{p.id}:judge")
        rng.shuffle(right)
        rng.shuffle(wrong)
        rest = right[1:] + wrong[1:]
        rng.shuffle(rest)
        shown = ([right[0], wrong[0]] + rest)[: max(2, max_candidates)]
        rng.shuffle(shown)
        lang = prompt_language(p) if language == "auto" else language
        text = _item_text(p, shown, lang, form)
        jp = Prompt.create(JUDGE_TASK, [{"role": "user", "content": text}], metadata={"source": p.id, "task": p.task})
        items.append(JudgeItem(jp, [seen[t] for t in shown], lang, form))
    return items


def _label_pattern(template: str) -> re.Pattern[str]:
    """The template's text up to its first label, then the label: "Conclusion: ... Candidate(s) (N)"."""
    head = template.split("{", 1)[0]
    return re.compile(re.escape(head) + r"\s*(\d+)")


def parse_pick(text: str, n: int, language: str = "en") -> int | None:
    """The 0-based candidate the answer's last conclusion names, or None (no conclusion, "none correct")."""
    t = _template(language)
    found: list[tuple[int, int | None]] = []
    for tmpl in (t.best_one, t.best_many):
        for m in _label_pattern(tmpl).finditer(text):
            found.append((m.start(), int(m.group(1)) - 1))
    for m in re.finditer(re.escape(t.none_correct), text):
        found.append((m.start(), None))
    if not found:
        return None
    pick = max(found, key=lambda x: x[0])[1]
    return pick if pick is not None and 0 <= pick < n else None


def parse_listwise_pick(text: str, n: int) -> int | None:
    """The 0-based response a listwise judge answer names as best, or None when it does not parse (strictly)."""
    from thresher.judges.llm_parse import JudgeParseError, parse_fields, parse_index

    try:
        return parse_index(parse_fields(text, ("reasoning", "best"), ("ranking",))["best"], n) - 1
    except JudgeParseError:
        return None


def item_pick(item: JudgeItem, text: str) -> int | None:
    """The candidate the model's answer to `item` picks, read in the item's own form and language."""
    if item.form == "listwise":
        return parse_listwise_pick(text, len(item.correct))
    return parse_pick(text, len(item.correct), item.language)


def per_task_accuracy(items: Sequence[JudgeItem], picks: Sequence[int | None]) -> dict[str, float]:
    """`pass@1[<task>]`: the judge task's accuracy on items from each source task."""
    by: dict[str, list[float]] = defaultdict(list)
    for it, pick in zip(items, picks):
        by[str(it.prompt.metadata.get("task"))].append(float(pick is not None and it.correct[pick]))
    return {f"pass@1[{task}]": sum(v) / len(v) for task, v in sorted(by.items())}


def judge_task_eval(
    sampler: Sampler,
    prompts: Sequence[Prompt],
    samples: Sequence[Sequence[Candidate]],
    verdicts: Sequence[Sequence[Verdict | None]],
    max_tokens: int,
    language: str = "en",
    max_candidates: int = 4,
    seed: int = 0,
    form: str = "critique",
) -> tuple[dict[str, Any], dict[str, int], list[dict[str, Any]]]:
    """(metrics, counts, examples) of the judge task; metrics are empty when no item could be built."""
    items = build_items(prompts, samples, verdicts, language, max_candidates, seed, form)
    if not items:
        return {}, {"prompts": 0, "unparsed": 0}, []
    answers = sampler.sample([it.prompt for it in items],
                             SamplingParams(n=1, temperature=0.0, max_tokens=max_tokens, seed=seed))
    picks = [item_pick(it, a[0].text) for it, a in zip(items, answers)]
    m = judge_task_metrics(picks, [it.correct for it in items])
    metrics = {"pass@1": m["judge_accuracy"], "random_accuracy": m["judge_random_accuracy"],
               "prompts": int(m["judge_items"])}
    if "judge_accuracy_ci" in m:
        metrics["pass@1_ci"] = m["judge_accuracy_ci"]
    metrics.update(per_task_accuracy(items, picks))
    counts = {"prompts": len(items), "unparsed": sum(p is None for p in picks)}
    examples = [
        {"task": JUDGE_TASK, "prompt_id": it.prompt.id, "prompt": it.prompt.question,
         "reference": ", ".join(str(i + 1) for i, ok in enumerate(it.correct) if ok), "answer": a[0].text,
         "extracted": None if p is None else str(p + 1), "correct": p is not None and it.correct[p], "error": None}
        for it, a, p in list(zip(items, answers, picks))[:3]
    ]
    return metrics, counts, examples
