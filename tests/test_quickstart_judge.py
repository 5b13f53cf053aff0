"""The judge experiment, shortened to one round of arm (b): the tiny judge parses, picks better than random,
and its critique rows are the exchange it had.

Uses the session's quickstart models (built from scratch by the first test that needs them) and builds
the tiny judge on top; the full two-round, three-arm figures are in the README.
"""

from __future__ import annotations

import json

import pytest

from thresher.records import Prompt, Verdict, read_jsonl
from thresher.store import RunDir, read_records


@pytest.fixture(scope="module")
def arm_b(tmp_path_factory, quickstart_cache):
    from thresher.quickstart.judge_arms import judge_recipes
    from thresher.quickstart.judge_build import build_judge
    from thresher.rounds import run_recipe

    build_judge(progress=False)
    out = tmp_path_factory.mktemp("judge_runs")
    recipes = judge_recipes(out, ["rounds=1", "prompts.train.count=250", "prompts.eval.count=100", "eval.k=2"])
    run_recipe(recipes["critique"], progress=False)
    return recipes["critique"].run_dir


@pytest.mark.slow
@pytest.mark.timeout(3600)  # may build the quickstart models and the judge from scratch
def test_tiny_judge_verdicts_parse_and_its_pick_beats_a_random_one(arm_b):
    from thresher.quickstart.judge_arms import parse_failures

    fails = parse_failures(arm_b, 1, "tiny_judge")
    judged = sum(f["prompts"] for f in fails.values())
    failed = sum(f["failed"] for f in fails.values())
    assert judged == 250 and failed / judged < 0.05, fails
    judges = json.loads(RunDir(arm_b).round(1).eval.read_text())["judges"]["tiny_judge"]
    picks = sum(m["selection_accuracy"] * m["prompts"] for m in judges.values())
    randoms = sum(m["random_accuracy"] * m["prompts"] for m in judges.values())
    n = sum(m["prompts"] for m in judges.values())
    assert (picks - randoms) / n >= 0.15, judges  # measured: see the README's table
    assert sum(m["selection_lift"] > 0 for m in judges.values()) >= 4, judges


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_arm_b_critique_rows_are_the_judges_exact_exchange(arm_b):
    from thresher.judges.llm_templates import listwise_request, prompt_digest
    from thresher.models import resolve_model_path
    from thresher.sampling.hf import HFSampler
    from thresher.sampling.params import SamplingParams

    rd = RunDir(arm_b).round(1)
    prompts = {p.id: p for p in read_records(rd.prompts, Prompt)}
    verdicts = {v.candidate_id: v for v in read_records(rd.verdicts, Verdict) if v.judge == "tiny_judge"}
    texts = {c["prompt_id"] + "/" + c["model"] + "/" + str(c["index"]): c["text"] for c in read_records(rd.candidates)}
    rows = list(read_jsonl(rd.critique_sft))
    assert 100 <= len(rows) <= 300
    for row in rows:
        p = prompts[row["prompt_id"]]
        v = verdicts[row["order"][0]]
        assert v.metadata["shown"] == row["order"]
        request = listwise_request(p, [texts[cid] for cid in row["order"]], v.metadata["language"], False)
        assert row["messages"] == [request[0], {"role": "assistant", "content": v.critique}]
        assert prompt_digest(request) == v.metadata["request"]
        assert row["language"] == ("zh" if p.task == "word_problem_zh" else "en")
    # the exchange happened: the judge, asked again greedily, answers each row's prompt with the row's answer
    judge = HFSampler(resolve_model_path("builtin:tiny-judge"), "tiny_judge", batch_size=8)
    try:
        asked = [Prompt.create("judge", [row["messages"][0]]) for row in rows[:6]]
        again = judge.sample(asked, SamplingParams(n=1, temperature=0.0, max_tokens=256, seed=0))
    finally:
        judge.close()
    assert [a[0].text.strip() for a in again] == [row["messages"][1]["content"] for row in rows[:6]]
