"""The pairs a reward model learns from: one prompt's own verified-right text against its verified-wrong text."""

from __future__ import annotations

from thresher.records import Candidate, Prompt, Verdict
from thresher.train.reward import verified_pairs


def _group(pid: int, answers: list[tuple[str, bool | None]], error_at: int | None = None):
    p = Prompt.create("addition", [{"role": "user", "content": f"What is {pid} + 1?"}], reference=str(pid + 1))
    cands = [Candidate(p.id, "student", k, text) for k, (text, _) in enumerate(answers)]
    verdicts = [
        Verdict(c.id, "math", error="timeout") if k == error_at
        else Verdict(c.id, "math", score=None if ok is None else float(ok), correct=ok)
        for k, (c, (_, ok)) in enumerate(zip(cands, answers))
    ]
    return p, cands, verdicts


def test_pairs_are_within_one_prompt_of_distinct_right_and_wrong_texts():
    groups = [
        _group(1, [("so 2", True), ("so 2", True), ("so 3", False), ("so 4", False), ("so 5", False)]),
        _group(2, [("so 3", True), ("so 3", True)]),  # all right: nothing to tell apart
        _group(3, [("so 5", False), ("so 6", False)]),  # all wrong: nothing either
        _group(4, [("so 5", True), ("so 6", None), ("so 7", False)], error_at=2),  # no opinion, an error: no pair
    ]
    prompts, cands, verdicts = (list(x) for x in zip(*groups))
    rows = verified_pairs(prompts, cands, verdicts, per_prompt=2, seed=0)
    assert len(rows) == 2  # prompt 1: 1 right text x 3 wrong texts, capped at 2
    assert all(r["prompt"] == prompts[0].messages for r in rows)
    assert {r["chosen"][0]["content"] for r in rows} == {"so 2"}
    rejected = [r["rejected"][0]["content"] for r in rows]
    assert len(set(rejected)) == 2 and set(rejected) <= {"so 3", "so 4", "so 5"}
    assert all(r["chosen"][0]["role"] == r["rejected"][0]["role"] == "assistant" for r in rows)
    assert verified_pairs(prompts, cands, verdicts, per_prompt=2, seed=0) == rows  # seeded
    assert len(verified_pairs(prompts, cands, verdicts, per_prompt=10)) == 3
