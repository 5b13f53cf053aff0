"""What the export did with each candidate, and why: `export_decisions.jsonl`.

The export summary counts removals by reason; this file says which candidate
each count is about, so a user (and `thresher view`) can open a prompt and
see, per answer, whether it was kept and otherwise the first reason it was
not, in this order:

    filtered:<why>   a filter removed it before selection (empty, truncated, format, ...)
    duplicate        it was kept, but dedup found its row a repeat and wrote none
    judge_error      the judge the policy selects by failed on it
    wrong            a verifier (or the selecting judge) said it is wrong
    verifier_error   a verifier failed on it (a gate it could not pass)
    <prompt reason>  nothing of the prompt passed (none_correct, vote_tie, ...)
    outranked        the policy ranked it below the kept answers
    not_selected     the policy passed it over without a rank (the random control's draw)

One row per candidate: `{"prompt_id", "candidate_id", "model", "task",
"decision": "kept" | "dropped", "reason", "prompt_reason", "score", "rank"}`;
`prompt_reason` is why the prompt kept nothing (None when it kept some),
`score` the number the policy ranked the candidate by and `rank` its place
(1 = best) among the candidates the policy could rank, both None when it
ranked none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from thresher.feedback.filters import CandidateFilter
from thresher.feedback.groups import PromptGroup
from thresher.feedback.policies import Selection

DECISIONS_FILE = "export_decisions.jsonl"


def candidate_decisions(
    group: PromptGroup, passed: PromptGroup, selection: Selection, written: set[str], filt: CandidateFilter,
    prompt_reason: str | None, verifiers: frozenset[str],
) -> Iterator[dict[str, Any]]:
    """The decision on each candidate of one prompt.

    `passed` is the group after filtering, `written` the ids of kept
    candidates whose SFT row was written (dedup may have dropped the rest),
    `prompt_reason` why nothing passed, when nothing did, `verifiers` the
    round's verifier judges.
    """
    kept = {k.candidate.id for k in selection.kept}
    after_filter = {c.id for c in passed.candidates}
    ranked = sorted(selection.scores.items(), key=lambda kv: -kv[1])
    rank = {cid: i + 1 for i, (cid, _) in enumerate(ranked)}
    for c in group.candidates:
        reason: str | None = None
        if c.id not in after_filter:
            reason = f"filtered:{filt.reason(c, group.prompt.task) or 'unknown'}"
        elif c.id in kept:
            reason = None if c.id in written else "duplicate"
        else:
            sel = group.verdict(c.id, selection.judge) if selection.judge else None
            if sel is not None and sel.error is not None:
                reason = "judge_error"
            elif (sel is not None and sel.correct is False) or False in group.verifier_results(c.id).values():
                reason = "wrong"
            elif any(v.error is not None and j in verifiers for j, v in group.verdicts.get(c.id, {}).items()):
                reason = "verifier_error"
            elif prompt_reason is not None:
                reason = prompt_reason
            elif c.id in rank:
                reason = "outranked"
            else:
                reason = "not_selected"
        yield {
            "prompt_id": group.prompt.id,
            "candidate_id": c.id,
            "model": c.model,
            "task": group.prompt.task,
            "decision": "kept" if c.id in kept and reason is None else "dropped",
            "reason": reason,
            "prompt_reason": prompt_reason,
            "score": selection.scores.get(c.id),
            "rank": rank.get(c.id),
        }
