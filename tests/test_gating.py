"""One gating semantics for the `gate` judge and the `gated` policy, and judge kinds recorded on verdicts."""

from __future__ import annotations

import pytest

from thresher.config import SelectionConfig
from thresher.errors import ConfigError, UserError
from thresher.feedback.groups import JudgeInfo, PromptGroup
from thresher.feedback.policies import build_policy
from thresher.judges import function_judge
from thresher.judges.combinators import GateJudge
from thresher.judges.stage import judge_stage
from thresher.judges.verdicts import pass_gate
from thresher.records import Candidate, Prompt, Verdict, write_jsonl
from thresher.store import read_records
from thresher.typed import to_data

PROMPT = Prompt.create("math", [{"role": "user", "content": "2+2?"}], reference="4")
TEXTS = ["4", "5", "four 4", "oops", "4 again", "40"]
CANDS = [Candidate(PROMPT.id, "m", i, t) for i, t in enumerate(TEXTS)]


class TableJudge:
    """Says for each candidate text what a crafted table says: (score, correct, error); kind given."""

    def __init__(self, name: str, kind: str, table: dict[str, tuple]):
        self.name, self.kind, self.table = name, kind, table

    def judge(self, prompts, candidates):
        return [[Verdict(c.id, self.name, *self.table[c.text][:2], error=self.table[c.text][2]) for c in cs]
                for cs in candidates]


CHECK = {
    "4": (1.0, True, None), "5": (0.0, False, None), "four 4": (1.0, True, None),
    "oops": (None, None, "timed out"), "4 again": (1.0, True, None), "40": (None, None, None),
}
RM = {"4": (0.2, None, None), "5": (0.9, None, None), "four 4": (0.7, None, None), "oops": (0.99, None, None),
      "4 again": (None, None, "rm crashed"), "40": (0.95, None, None)}


def catalog(verdicts):
    out: dict[str, JudgeInfo] = {}
    for v in verdicts:
        out.setdefault(v.judge, JudgeInfo(v.judge)).add(to_data(v))
    return out


def test_the_gate_judge_and_the_gated_policy_decide_alike():
    checker, rm = TableJudge("math", "verifier", CHECK), TableJudge("rm", "reward", RM)
    combined = GateJudge(checker, rm, name="gate").judge([PROMPT], [CANDS])[0]
    by_text = {c.text: v for c, v in zip(CANDS, combined)}
    assert (by_text["4"].correct, by_text["4"].score) == (True, 0.2)
    assert (by_text["four 4"].correct, by_text["four 4"].score) == (True, 0.7)
    assert by_text["5"].correct is False and by_text["5"].score is None  # the rm's 0.9 never lifts a wrong answer
    assert by_text["oops"].error == "math: timed out"
    assert by_text["4 again"].correct is True and by_text["4 again"].error == "rm: rm crashed"
    assert by_text["40"].correct is None and by_text["40"].critique.startswith("Failed the gate (math)")

    stored = checker.judge([PROMPT], [CANDS])[0] + rm.judge([PROMPT], [CANDS])[0]
    for v in stored:
        v.kind = "verifier" if v.judge == "math" else "reward"
    g = PromptGroup(PROMPT, CANDS)
    for v in stored:
        g.verdicts.setdefault(v.candidate_id, {})[v.judge] = v
    [sel] = build_policy(SelectionConfig("gated", {"k": 3})).select([g], catalog(stored))
    assert [(k.candidate.text, k.score) for k in sel.kept] == [("four 4", 0.7), ("4", 0.2)]
    # what the policy keeps is what the gate judge scores, best first
    assert [k.candidate.text for k in sel.kept] == [
        c.text for c, v in sorted(zip(CANDS, combined), key=lambda cv: -(cv[1].score or -1)) if v.score is not None
    ]


@pytest.mark.parametrize(
    ("gates", "ranked", "reason"),
    [
        ([(0.0, False, None)], [(0.9, None, None)], "none_correct"),
        ([(None, None, "boom")], [(0.9, None, None)], "none_correct"),
        ([(1.0, True, None)], [None], "no_verdicts"),
        ([(1.0, True, None)], [(None, None, "rm down")], "all_verdicts_failed"),
        ([(1.0, True, None)], [(None, None, None)], "correct_unscored"),
        ([(1.0, True, None)], [(0.1, None, None)], "below_threshold"),
    ],
)
def test_why_nothing_passed_the_gate(gates, ranked, reason):
    c = CANDS[0]
    verdicts = [Verdict(c.id, "math", s, ok, error=e, kind="verifier") for s, ok, e in gates]
    verdicts += [Verdict(c.id, "rm", r[0], r[1], error=r[2], kind="reward") for r in ranked if r is not None]
    other = Verdict(CANDS[1].id, "rm", 0.5, kind="reward")  # so the catalog knows the rm
    g = PromptGroup(PROMPT, [c])
    for v in verdicts:
        g.verdicts.setdefault(v.candidate_id, {})[v.judge] = v
    [sel] = build_policy(SelectionConfig("gated", {"min_score": 0.5})).select([g], catalog([*verdicts, other]))
    assert not sel.kept and sel.reason == reason


def test_pass_gate_needs_every_gate():
    c = CANDS[0]
    ok = Verdict(c.id, "math", 1.0, True)
    assert pass_gate({"math": ok, "code": ok}, "rm", None).passed
    missing = pass_gate({"math": ok, "code": None}, "rm", None)
    assert not missing.passed and missing.correct is None and missing.critique == "Failed the gate (code): no verdict"
    wrong = pass_gate({"math": ok, "code": Verdict(c.id, "code", 0.0, False)}, "rm", None)
    assert not wrong.passed and wrong.correct is False


def test_recorded_kind_decides_not_what_the_verdicts_look_like():
    """An LLM judge that also says `correct` was guessed to be a verifier; its recorded kind says llm."""
    c = CANDS[0]
    llm = Verdict(c.id, "critic", 8.0, True, critique="fine", kind="llm")
    math = Verdict(c.id, "math", 1.0, True, kind="verifier")
    infos = catalog([llm, math])
    assert infos["critic"].kind == "llm" and infos["math"].kind == "verifier"
    g = PromptGroup(PROMPT, [c], {c.id: {"critic": llm, "math": math}})
    [sel] = build_policy(SelectionConfig("gated", {})).select([g], infos)
    assert sel.kept[0].judge == "critic"  # the gate is math alone; the llm judge ranks
    legacy = catalog([Verdict(c.id, "critic", 8.0, True, critique="fine")])
    assert legacy["critic"].kind == "verifier"  # files written before kinds: read off the verdicts
    with pytest.raises(ConfigError, match="needs a verifier judge"):
        build_policy(SelectionConfig("gated", {})).select([g], catalog([llm]))


def test_the_judge_stage_records_each_judges_kind(tmp_path):
    write_jsonl(tmp_path / "cands.jsonl", CANDS)
    judges = [function_judge(lambda ps, cs: [float(len(x)) for x in cs], "len"), TableJudge("math", "verifier", CHECK)]
    judge_stage([PROMPT], tmp_path / "cands.jsonl", judges, tmp_path / "v", progress=False)
    kinds = {(v.judge, v.kind) for v in read_records(tmp_path / "v", Verdict)}
    assert kinds == {("len", "reward"), ("math", "verifier")}

    class NoKind:
        name = "anon"

        def judge(self, prompts, candidates):
            return [[Verdict(c.id, self.name, 1.0) for c in cs] for cs in candidates]

    with pytest.raises(UserError, match="judge 'anon' declares kind None"):
        judge_stage([PROMPT], tmp_path / "cands.jsonl", [NoKind()], tmp_path / "v2", progress=False)


def test_the_viewer_reads_the_recorded_kind_as_export_does(tmp_path):
    from test_feedback import write_round

    from thresher.view.index import open_index

    c = CANDS[0]
    verdicts = [Verdict(c.id, "critic", 8.0, True, critique="fine", kind="llm"), Verdict(c.id, "math", 1.0, True),
                Verdict(c.id, "rm", 0.5, kind="reward")]
    write_round(tmp_path / "run", [PROMPT], [c], verdicts)
    con = open_index([tmp_path / "run"], cache=tmp_path / "cache", progress=False)
    try:
        kinds = dict(con.execute("SELECT judge, kind FROM judges").fetchall())
    finally:
        con.close()
    assert kinds == {name: info.kind for name, info in catalog(verdicts).items()}
    assert kinds == {"critic": "llm", "math": "verifier", "rm": "reward"}  # math: an older file, read off its verdicts
