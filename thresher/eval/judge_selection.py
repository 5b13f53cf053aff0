"""Every judge of a round measured against the oracle: lift with its interval, and the rest of its card.

The oracle is the verifier for each prompt's kind (math answers against the
reference, code against its tests). Its verdicts come from the round when a
judge of that name already checked every candidate of a prompt, and are
computed here otherwise. For each judge and task the entry in eval.json
holds the selection metrics (`thresher.eval.metrics.selection_metrics`:
accuracy of its pick, of a random pick, the lift and its 95% interval, the
oracle's ceiling, coverage, prompts), its errors, and its report card
(`thresher.eval.judge_card`): the best-of-N curve beside majority vote,
random and oracle; length bias; and for LLM judges parse failures and
position bias.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from thresher.eval.judge_card import (
    answer_classes,
    baseline_curves,
    best_of_n,
    judge_kind,
    length_bias,
    llm_rates,
)
from thresher.eval.metrics import JudgedPrompt, selection_metrics
from thresher.eval.stage import candidates_by_prompt, oracle_for, oracle_verdicts, verifier_kind
from thresher.feedback.groups import judge_score
from thresher.records import Candidate, Prompt, Verdict


def _lengths(cands: Sequence[Candidate]) -> list[int]:
    """Tokens when the sampler counted them for every candidate of the prompt, else characters."""
    if all(c.num_tokens for c in cands):
        return [int(c.num_tokens or 0) for c in cands]
    return [len(c.text) for c in cands]


def _answer(c: Candidate, v: Verdict) -> str | None:
    from thresher.judges.answers import candidate_answer

    return candidate_answer(c, {v.judge: v}, v.judge)


def _oracle(
    prompts: Sequence[Prompt], by_prompt: dict[str, list[Candidate]], by_judge: dict[str, dict[str, Verdict]],
    verifier: Any, cache: dict[str, Any],
) -> dict[str, Verdict]:
    """The oracle's usable verdict (no error, correctness known) of every candidate it could check."""
    out: dict[str, Verdict] = {}
    todo: list[Prompt] = []
    for p in prompts:
        given = by_judge.get(oracle_for(verifier_kind(p), verifier, cache).name, {})
        cands = by_prompt[p.id]
        if all(c.id in given for c in cands):
            out.update({c.id: given[c.id] for c in cands})
        else:
            todo.append(p)
    if todo:
        fresh = oracle_verdicts(todo, [by_prompt[p.id] for p in todo], verifier, cache)
        for p, vs in zip(todo, fresh):
            out.update({c.id: v for c, v in zip(by_prompt[p.id], vs) if v is not None})
    return {cid: v for cid, v in out.items() if v.ok and v.correct is not None}


def judge_selection(
    prompts: Sequence[Prompt],
    candidates: Sequence[Candidate],
    verdicts: Sequence[Verdict],
    verifier: Any = None,
    verifier_cache: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """For every judge in `verdicts`: per task, its selection metrics, errors and report card.

    Prompts without a reference or tests have no oracle and are left out. A
    judge with neither a score nor a failure on any candidate (critique text
    only) has nothing to rank by and is left out too.
    """
    cache = {} if verifier_cache is None else verifier_cache
    by_prompt = candidates_by_prompt(candidates)
    checkable = [p for p in prompts if verifier_kind(p) is not None and by_prompt.get(p.id)]
    by_judge: dict[str, dict[str, Verdict]] = defaultdict(dict)
    for v in verdicts:
        by_judge[v.judge][v.candidate_id] = v
    oracle = _oracle(checkable, by_prompt, by_judge, verifier, cache)

    shown: list[tuple[Prompt, list[Candidate]]] = []
    for p in checkable:
        cands = [c for c in by_prompt[p.id] if c.id in oracle]
        if cands:
            shown.append((p, cands))
    correct = [[bool(oracle[c.id].correct) for c in cands] for _, cands in shown]
    lengths = [_lengths(cands) for _, cands in shown]
    classes = [
        answer_classes([_answer(c, oracle[c.id]) for c in cands], ok) if verifier_kind(p) == "math" else None
        for (p, cands), ok in zip(shown, correct)
    ]
    plain = [JudgedPrompt(p.task, ok, [None] * len(ok)) for (p, _), ok in zip(shown, correct)]
    baselines = baseline_curves(plain, classes, seed)
    task_of = {p.id: p.task for p in prompts}

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in sorted(by_judge):
        seen = by_judge[name]
        if not any(judge_score(v) is not None or not v.ok for v in seen.values()):
            continue  # pure critique text, no score and no failure: nothing to rank by
        items = [
            JudgedPrompt(p.task, ok, [judge_score(seen.get(c.id)) for c in cands], n)
            for (p, cands), ok, n in zip(shown, correct, lengths)
        ]
        errors: dict[str, int] = defaultdict(int)
        for (p, cands) in shown:
            errors[p.task] += sum(1 for c in cands if c.id in seen and not seen[c.id].ok)
        per_task: dict[str, list[Verdict]] = defaultdict(list)
        for v in seen.values():
            task = task_of.get(v.prompt_id)
            if task is not None:
                per_task[task].append(v)
        kind = judge_kind(list(seen.values()))
        curves = best_of_n(items, baselines=baselines)
        bias = length_bias(items)
        card = selection_metrics(items)
        for task, m in card.items():
            m["errors"] = float(errors[task])
            m.update(bias.get(task, {}))
            m.update(llm_rates(per_task.get(task, []), kind))
            m["best_of_n"] = curves[task]
        out[name] = card
    return out
