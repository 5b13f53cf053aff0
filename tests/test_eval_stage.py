"""The eval stage with a real sampler, the real math verifier and crafted round verdicts."""

from __future__ import annotations

import json
import random

import pytest

from thresher.config import EvalConfig, TrainConfig
from thresher.eval.judge_selection import judge_selection
from thresher.eval.stage import GREEDY_FILE, eval_stage
from thresher.records import Candidate, Prompt, Verdict, write_jsonl
from thresher.store import ShardedJsonl

PROBLEMS = [  # (task, question, reference); the "constant" model below always answers 7
    ("addition", "3+4=", "7"), ("addition", "5+2=", "7"), ("addition", "1+6=", "7"), ("addition", "2+3=", "5"),
    ("subtraction", "9-2=", "7"), ("subtraction", "8-1=", "7"), ("subtraction", "4-3=", "1"),
    ("subtraction", "6-6=", "0"),
]


def _prompts() -> list[Prompt]:
    return [Prompt.create(task, [{"role": "user", "content": q}], reference=ref) for task, q, ref in PROBLEMS]


def _round(prompts: list[Prompt]) -> tuple[list[Candidate], list[bool]]:
    """4 candidates per prompt; on prompt i the first 1 + (i // 2) % 2 are right, the others off by j."""
    cands, correct = [], []
    for i, p in enumerate(prompts):
        right = 1 + (i // 2) % 2
        for j in range(4):
            ok = j < right
            value = int(p.reference) + (0 if ok else j)
            cands.append(Candidate(p.id, "teacher", j, f"The answer is {value}."))
            correct.append(ok)
    return cands, correct


@pytest.fixture(scope="module")
def sevens(tiny_lm, tmp_path_factory):
    """The tiny LM fine-tuned (real SFT, a few steps) to answer 7 to every question."""
    from thresher.train.sft import train_sft

    d = tmp_path_factory.mktemp("sevens")
    rows = [{"messages": p.messages + [{"role": "assistant", "content": "7"}]} for p in _prompts()]
    data = d / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return train_sft(str(tiny_lm), [data], d / "model", TrainConfig(
        epochs=12, learning_rate=1e-2, batch_size=8, max_length=64, args={"lr_scheduler_type": "constant"}))


@pytest.mark.slow
def test_eval_stage_tasks_judges_skip_and_reuse(sevens, tiny_lm, tmp_path):
    from thresher.sampling.hf import HFSampler

    prompts = _prompts()
    cands, correct = _round(prompts)
    rng = random.Random(0)
    verdicts = []
    for c, ok in zip(cands, correct):
        verdicts.append(Verdict(c.id, "good_rm", score=0.9 if ok else 0.1))
        verdicts.append(Verdict(c.id, "random_rm", score=rng.random()))
        verdicts.append(Verdict(c.id, "broken", error="timeout"))
    round_dir = tmp_path / "round_1"
    write_jsonl(round_dir / "prompts.jsonl", prompts)
    with ShardedJsonl(round_dir / "candidates", Candidate, shard_size=10).writer() as w:
        w.write_many(cands)
    write_jsonl(round_dir / "verdicts.jsonl", verdicts)

    cfg = EvalConfig(k=4, temperature=1.5, max_tokens=8, args={"judge_task": True})
    result = eval_stage(str(sevens), prompts, cfg, round_dir, sampler=HFSampler(str(sevens), "student"),
                        round_candidates=round_dir / "candidates", round_verdicts=round_dir / "verdicts.jsonl")
    assert json.loads((round_dir / "eval.json").read_text()) == result

    greedy = {c["prompt_id"]: c["text"] for c in map(json.loads, (round_dir / GREEDY_FILE).read_text().splitlines())}
    assert all(t.strip() == "7" for t in greedy.values()), greedy
    assert result["tasks"]["addition"]["pass@1"] == 0.75  # three of four answers are 7
    assert result["tasks"]["subtraction"]["pass@1"] == 0.5
    low, high = result["tasks"]["addition"]["pass@1_ci"]  # 3 of 4 right: a resample holds 0 to 4 right ones
    assert low in (0.0, 0.25) and high == 1.0
    for task in ("addition", "subtraction"):
        metrics = {"pass@1", "pass@4", "maj@4", "sample_accuracy"}
        assert set(result["tasks"][task]) == metrics | {f"{m}_ci" for m in metrics} | {"prompts"}
        assert result["tasks"][task]["prompts"] == 4
        assert result["counts"][task] == {"prompts": 4, "unverifiable": 0, "verifier_errors": 0}

    # the judge task shows prompts whose samples hold a right and a wrong answer (at temperature 1.5 some do);
    # asked to judge, this model still only says 7: no conclusion to read, so no right pick
    n_judge = result["counts"]["judge"]["prompts"]
    assert 1 <= n_judge <= len(prompts)
    assert result["counts"]["judge"]["unparsed"] == n_judge
    assert result["tasks"]["judge"]["pass@1"] == 0.0 and 0 < result["tasks"]["judge"]["random_accuracy"] < 1

    judges = result["judges"]
    assert set(judges) == {"good_rm", "random_rm", "broken"}
    for task in ("addition", "subtraction"):
        idx = [i for i, p in enumerate(prompts) if p.task == task]
        rand = sum((1 + (i // 2) % 2) / 4 for i in idx) / len(idx)
        good = judges["good_rm"][task]
        assert good["selection_accuracy"] == 1.0
        assert good["random_accuracy"] == pytest.approx(rand)
        assert good["selection_lift"] == pytest.approx(1.0 - rand)
        assert 0.5 <= good["selection_lift_ci"][0] <= good["selection_lift"] <= good["selection_lift_ci"][1] <= 0.75
        assert good["best_of_n"]["judge"][-1] == 1.0 and good["best_of_n"]["n"] == [1, 2, 4]
        broken = judges["broken"][task]  # failed on everything: visible, never a score
        assert broken["coverage"] == 0.0 and broken["selection_lift"] == 0.0 and broken["errors"] == 16.0
    # the random scores' pick, worked out by hand: the top-scored candidate of each prompt, right or not
    scores = {v.candidate_id: v.score for v in verdicts if v.judge == "random_rm"}
    for task in ("addition", "subtraction"):
        lifts = []
        for p in prompts:
            if p.task == task:
                mine = [(scores[c.id], ok) for c, ok in zip(cands, correct) if c.prompt_id == p.id]
                lifts.append(float(max(mine)[1]) - sum(ok for _, ok in mine) / len(mine))
        assert judges["random_rm"][task]["selection_lift"] == pytest.approx(sum(lifts) / len(lifts))

    # finished: the same request is skipped without asking the sampler for anything
    class Untouchable:
        name = "untouchable"

        def sample(self, prompts, params):
            raise AssertionError("a finished eval must not sample")

    same = dict(round_candidates=round_dir / "candidates", round_verdicts=round_dir / "verdicts.jsonl")
    assert eval_stage(str(sevens), prompts, cfg, round_dir, sampler=Untouchable(), **same) == result
    # killed after generating: the generations on disk are reused (the sampler here, over the random
    # model, would answer differently) ...
    (round_dir / "eval.json").unlink()
    random_sampler = HFSampler(str(tiny_lm), "random")
    again = eval_stage(str(sevens), prompts, cfg, round_dir, sampler=random_sampler, **same)
    assert again["tasks"]["addition"] == result["tasks"]["addition"]
    assert again["tasks"]["subtraction"] == result["tasks"]["subtraction"]
    # ... but never for another model, whose numbers replace the old ones (never reported under its name)
    other = eval_stage(str(tiny_lm), prompts, cfg, round_dir, sampler=random_sampler, **same)
    fresh = [json.loads(line)["text"] for line in (round_dir / GREEDY_FILE).read_text().splitlines()]
    assert any(t.strip() != "7" for t in fresh)
    assert other["model"] == str(tiny_lm) and other["tasks"] != result["tasks"]


def test_oracle_verdicts_in_the_round_are_reused(tmp_path):
    """With the math judge's verdicts present, they are the oracle (no verifier run), errors are counted."""
    prompts = [_prompts()[0], _prompts()[4]]  # one addition, one subtraction
    cands, correct = _round(prompts)
    flipped = [not ok if i == 1 else ok for i, ok in enumerate(correct)]  # the recorded oracle says c1 is right
    verdicts = [Verdict(c.id, "math", score=float(ok), correct=ok) for c, ok in zip(cands, flipped)]
    verdicts += [Verdict(c.id, "rm", score=float(j), error="oom" if j == 3 else None)
                 for j, c in enumerate(cands[:4])]
    out = judge_selection(prompts, cands, verdicts)
    assert out["math"]["addition"]["selection_accuracy"] == 1.0
    assert out["math"]["addition"]["random_accuracy"] == 0.5  # the recorded verdicts, not a fresh check (0.25)
    rm = out["rm"]["addition"]  # rm picks c2 (c3 errored); the oracle says c0 and c1 of 4 are right
    assert rm["selection_accuracy"] == 0.0 and rm["random_accuracy"] == 0.5 and rm["errors"] == 1.0
    assert out["rm"]["subtraction"]["coverage"] == 0.0  # no rm verdicts there: its pick counts as random
    assert out["rm"]["subtraction"]["selection_lift"] == 0.0


@pytest.mark.slow
def test_eval_command(tiny_lm, tmp_path, capsys):
    from thresher.cli import main

    prompts_file = tmp_path / "prompts.jsonl"
    write_jsonl(prompts_file, _prompts())
    out = tmp_path / "round_0"
    assert main(["eval", "--model", str(tiny_lm), "--prompts", str(prompts_file), "--run", str(tmp_path),
                 "--round", "0", "--k", "1", "--max-tokens", "4", "--backend", "hf"]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert set(result["tasks"]) == {"addition", "subtraction"}
    assert result["counts"]["addition"]["prompts"] == 4
    assert "pass@1" in capsys.readouterr().out
    assert main(["eval", "--model", str(tiny_lm), "--prompts", str(prompts_file), "--out", str(out),
                 "--candidates", "x"]) == 2
