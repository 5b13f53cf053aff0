"""The "judge" task: after critique-SFT, does the student pick the right candidate?

Critique-SFT teaches the student to judge: the user turn shows a problem and
numbered candidates, the assistant turn judges each and ends with a
conclusion naming the best. This task asks the same of the student on
held-out prompts, in the same format (the critique-SFT templates of
`thresher.feedback.critique`), with candidates drawn from the student's own
eval samples: at least one right and one wrong answer per item, as the
oracle verifier says. The score is how often the conclusion names a right
one, next to what a uniform guess would score.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thresher.eval.metrics import judge_task_metrics
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


def _template(language: str) -> Any:
    from thresher.feedback.critique import TEMPLATES

    return TEMPLATES[language]


def judge_prompt_text(question: str, texts: Sequence[str], language: str = "en") -> str:
    """The user turn of a critique-SFT row (verifier or pointwise form) for these candidates."""
    t = _template(language)
    parts = [t.instruction.format(n=len(texts)), t.problem.format(question=question)]
    parts += [t.candidate.format(label=str(i + 1), text=text) for i, text in enumerate(texts)]
    return "\n\n".join(parts)


def build_items(
    prompts: Sequence[Prompt],
    samples: Sequence[Sequence[Candidate]],
    verdicts: Sequence[Sequence[Verdict | None]],
    language: str = "en",
    max_candidates: int = 4,
    seed: int = 0,
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
        text = judge_prompt_text(p.question, shown, language)
        jp = Prompt.create(JUDGE_TASK, [{"role": "user", "content": text}], metadata={"source": p.id, "task": p.task})
        items.append(JudgeItem(jp, [seen[t] for t in shown]))
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


def judge_task_eval(
    sampler: Sampler,
    prompts: Sequence[Prompt],
    samples: Sequence[Sequence[Candidate]],
    verdicts: Sequence[Sequence[Verdict | None]],
    max_tokens: int,
    language: str = "en",
    max_candidates: int = 4,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, int], list[dict[str, Any]]]:
    """(metrics, counts, examples) of the judge task; metrics are empty when no item could be built."""
    items = build_items(prompts, samples, verdicts, language, max_candidates, seed)
    if not items:
        return {}, {"prompts": 0, "unparsed": 0}, []
    answers = sampler.sample([it.prompt for it in items],
                             SamplingParams(n=1, temperature=0.0, max_tokens=max_tokens, seed=seed))
    picks = [parse_pick(a[0].text, len(it.correct), language) for it, a in zip(items, answers)]
    m = judge_task_metrics(picks, [it.correct for it in items])
    metrics = {"pass@1": m["judge_accuracy"], "random_accuracy": m["judge_random_accuracy"],
               "prompts": int(m["judge_items"])}
    if "judge_accuracy_ci" in m:
        metrics["pass@1_ci"] = m["judge_accuracy_ci"]
    counts = {"prompts": len(items), "unparsed": sum(p is None for p in picks)}
    examples = [
        {"task": JUDGE_TASK, "prompt_id": it.prompt.id, "prompt": it.prompt.question,
         "reference": ", ".join(str(i + 1) for i, ok in enumerate(it.correct) if ok), "answer": a[0].text,
         "extracted": None if p is None else str(p + 1), "correct": p is not None and it.correct[p], "error": None}
        for it, a, p in list(zip(items, answers, picks))[:3]
    ]
    return metrics, counts, examples
