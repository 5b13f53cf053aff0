"""Function judges, the registry's load-time checks, and the gate / ensemble / vote combinators."""

from __future__ import annotations

import pytest

from thresher.config import JudgeConfig, parse_recipe
from thresher.errors import ConfigError
from thresher.judges import JUDGES, build_judge, function_judge
from thresher.judges.base import Judge
from thresher.judges.combinators import EnsembleJudge, GateJudge, VoteJudge
from thresher.records import Candidate, Prompt, Verdict


def _prompts():
    p1 = Prompt.create("math", [{"role": "user", "content": "1+1?"}], reference="2")
    p2 = Prompt.create("math", [{"role": "user", "content": "2+3?"}], reference="5")
    cands = [
        [Candidate(p1.id, "m", 0, "2"), Candidate(p1.id, "m", 1, "3"), Candidate(p1.id, "m", 2, "long 2 answer")],
        [Candidate(p2.id, "m", 0, "5"), Candidate(p2.id, "m", 1, "error")],
    ]
    return [p1, p2], cands


def exact(prompts, completions):
    """1.0 when the completion equals the reference, else 0.0; None without a reference."""
    return [None if p.reference is None else float(c.strip() == p.reference) for p, c in zip(prompts, completions)]


def length(prompts, completions):
    return [float(len(c)) for c in completions]


class Checker:
    """A verifier judge written as a class: correct when the reference appears in the text; errors on 'error'."""

    def __init__(self, name="checker"):
        self.name = name

    def judge(self, prompts, candidates):
        out = []
        for p, cs in zip(prompts, candidates):
            row = []
            for c in cs:
                if c.text == "error":
                    row.append(Verdict(c.id, self.name, error="checker failed"))
                else:
                    ok = p.reference in c.text
                    row.append(
                        Verdict(c.id, self.name, score=float(ok), correct=ok, critique=f"has {p.reference}: {ok}")
                    )
            out.append(row)
        return out


def test_function_judge_lifts_a_plain_function():
    prompts, cands = _prompts()
    judge = function_judge(exact, "exact")
    assert isinstance(judge, Judge)
    out = judge.judge(prompts, cands)
    assert [[v.score for v in row] for row in out] == [[1.0, 0.0, 0.0], [1.0, 0.0]]
    assert out[0][1].candidate_id == cands[0][1].id and out[0][1].judge == "exact"
    nobody = function_judge(lambda ps, cs: [None] * len(cs), "none").judge(prompts, cands)
    assert all(v.ok and v.score is None for row in nobody for v in row)
    with pytest.raises(ValueError, match="returned 1 scores for 5"):
        function_judge(lambda ps, cs: [1.0], "short").judge(prompts, cands)
    with pytest.raises(TypeError, match="expected float or None"):
        function_judge(lambda ps, cs: ["high"] * len(cs), "bad").judge(prompts, cands)


def test_gate_ranks_only_what_passes_and_keeps_errors():
    prompts, cands = _prompts()
    ranked = []

    def ranker_fn(ps, cs):
        ranked.extend(cs)
        return length(ps, cs)

    gate = GateJudge(Checker(), function_judge(ranker_fn, "len"), name="gate")
    out = gate.judge(prompts, cands)
    assert sorted(ranked) == sorted(["2", "long 2 answer", "5"])  # the failed '3' was never ranked
    (a, b, c), (d, e) = out
    assert (a.correct, a.score) == (True, 1.0) and (c.correct, c.score) == (True, 13.0)
    assert b.correct is False and b.score is None and b.critique.startswith("Failed the gate (checker)")
    assert d.score == 1.0 and e.error == "checker: checker failed"
    assert a.metadata["judges"] == {
        "checker": {"score": 1.0, "correct": True, "error": None},
        "len": {"score": 1.0, "correct": None, "error": None},
    }


def test_ensemble_weights_normalises_and_does_not_average_errors_away():
    prompts, cands = _prompts()
    judges = [function_judge(exact, "exact"), function_judge(length, "len")]
    plain = EnsembleJudge(judges, [3.0, 1.0], "none", "ens").judge(prompts, cands)
    assert plain[0][0].score == pytest.approx((3 * 1.0 + 1 * 1.0) / 4)
    assert plain[0][2].score == pytest.approx((3 * 0.0 + 13.0) / 4)
    minmax = EnsembleJudge(judges, [3.0, 1.0], "minmax", "ens").judge(prompts, cands)
    assert [v.score for v in minmax[0]] == pytest.approx([0.75, 0.0, 0.25])
    ranked = EnsembleJudge(judges, [1.0, 1.0], "rank", "ens").judge(prompts, cands)
    assert [v.score for v in ranked[0]] == pytest.approx([(1.0 + 0.25) / 2, (0.25 + 0.25) / 2, (0.25 + 1.0) / 2])
    with_errors = EnsembleJudge([Checker(), judges[1]], [1.0, 1.0], "none", "ens").judge(prompts, cands)
    assert with_errors[1][1].error == "checker: checker failed" and with_errors[1][1].score is None
    assert with_errors[1][0].correct is True


def test_vote_takes_the_majority_and_abstains_on_errors():
    prompts, cands = _prompts()
    judges = [Checker("c1"), function_judge(exact, "exact"), function_judge(length, "len")]
    out = VoteJudge(judges, threshold=5.0, name="vote").judge(prompts, cands)
    (a, _, c), (_, e) = out
    # '2': c1 yes, exact yes (score 1 < 5 but exact gives no `correct`, so threshold), len 1 < 5 no
    assert (a.metadata["yes"], a.metadata["no"]) == (1, 2) and a.correct is False
    assert (c.metadata["yes"], c.metadata["no"]) == (2, 1) and c.correct is True and c.score == pytest.approx(2 / 3)
    assert e.metadata["abstained"] == 1 and "c1 failed and abstained" in e.critique
    only_checker = VoteJudge([Checker("c1")], None, "vote").judge(prompts, cands)
    assert only_checker[1][1].error.startswith("no judge could vote")
    no_votes = VoteJudge([function_judge(length, "len")], None, "vote").judge(prompts, cands)
    assert no_votes[0][0].ok and no_votes[0][0].score is None


# ------------------------------------------------------------------------------------------ registry
def test_registry_has_the_builders():
    assert {"math", "code", "rm", "llm", "gate", "ensemble", "vote"} <= set(JUDGES)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"type": "maths"}, "judges[1].type: unknown judge 'maths'"),
        ({"type": "math", "args": {"timout": 5}}, "judges[1].args.timout: unknown key"),
        ({"type": "math", "args": {"timeout": "five"}}, "judges[1].args.timeout: expected a number"),
        ({"type": "rm"}, "judges[1].args.model: missing required key"),
        ({"type": "llm", "args": {"model": "x", "mode": "best"}}, "judges[1].args.mode: 'best' is not one of"),
        (
            {"type": "gate", "args": {"verifier": {"type": "math"}, "ranker": {"type": "rm", "args": {"modle": "x"}}}},
            "judges[1].args.ranker.args.modle: unknown key",
        ),
        (
            {"type": "vote", "args": {"judges": [{"type": "math"}, {"type": "cod"}]}},
            "judges[1].args.judges[1].type: unknown judge 'cod'",
        ),
        (
            {"type": "ensemble", "args": {"judges": [{"type": "math"}], "weights": [1, 2]}},
            "judges[1].args.weights: 2 weights for 1 judges",
        ),
        ({"type": "math", "args": {"workers": 0}}, "judges[1].args.workers: must be at least 1, got 0"),
        (
            {"type": "gate", "args": {"verifier": {"type": "math", "args": {"timeout": -1}}, "ranker": {"type": "code"}}},
            "judges[1].args.verifier.args.timeout: must be greater than 0, got -1",
        ),
        ({"type": "llm", "args": {"model": "x", "backend": "openai"}}, "judges[1].args.base_url: required for"),
        (
            {"type": "llm", "args": {"model": "x", "sampler_args": {"batchsize": 2}}},
            "judges[1].args.sampler_args.batchsize: unknown key",
        ),
    ],
)
def test_recipe_typos_fail_at_load_with_the_key_path(cfg, message):
    """Every judge argument, sub-judges' included, is checked when the recipe is parsed: nothing is built."""
    with pytest.raises(ConfigError) as e:
        parse_recipe({"name": "r", "models": [{"name": "m", "path": "x/y"}], "judges": [{"type": "code"}, cfg]},
                     check_files=False)
    assert str(e.value).startswith(message)


def test_build_judge_names_and_builds_combinators():
    gate = build_judge(
        JudgeConfig(
            type="gate",
            name="verified",
            args={"verifier": {"type": "math", "args": {"workers": 1}}, "ranker": {"type": "math", "name": "m2"}},
        )
    )
    try:
        assert isinstance(gate, GateJudge) and gate.name == "verified"
        assert gate.verifier.name == "math" and gate.ranker.name == "m2"
    finally:
        gate.close()
    with pytest.raises(ConfigError, match=r"^args\.judges\[1\]\.name: duplicate judge name 'math'"):
        JudgeConfig(type="vote", args={"judges": [{"type": "math"}, {"type": "math"}]})
