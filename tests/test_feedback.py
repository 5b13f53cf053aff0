"""Feedback stage on crafted candidates and verdicts: policies, honest DPO pairs, critiques, dedup, filters, mixing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thresher.cli import main
from thresher.config import ExportConfig, SelectionConfig, dump_recipe, parse_recipe
from thresher.errors import ConfigError, RecordError
from thresher.feedback import POLICIES, export_stage
from thresher.feedback.dedup import DedupConfig, Deduplicator
from thresher.feedback.groups import JudgeInfo, PromptGroup
from thresher.feedback.mixing import mix_files
from thresher.feedback.policies import build_policy
from thresher.judges.answers import answers_equivalent
from thresher.records import Candidate, Prompt, Verdict, read_jsonl, write_jsonl
from thresher.store import ShardedJsonl
from thresher.typed import to_data

# crafted records -----------------------------------------------------------------------


def P(i: int, task: str = "add", reference: str | None = None, text: str | None = None) -> Prompt:
    return Prompt.create(task, [{"role": "user", "content": text or f"What is {i} + {i}? Question {i}."}], reference=reference)


def C(p: Prompt, model: str, index: int, text: str, finish: str = "stop") -> Candidate:
    return Candidate(p.id, model, index, text, len(text), finish)


def V(c: Candidate, judge: str, score=None, correct=None, critique=None, error=None, **meta) -> Verdict:
    return Verdict(c.id, judge, score, correct, critique, error, meta)


def catalog(verdicts: list[Verdict]) -> dict[str, JudgeInfo]:
    out: dict[str, JudgeInfo] = {}
    for v in verdicts:
        out.setdefault(v.judge, JudgeInfo(v.judge)).add(to_data(v))
    return out


def group(p: Prompt, cands: list[Candidate], verdicts: list[Verdict]) -> PromptGroup:
    g = PromptGroup(p, cands)
    for v in verdicts:
        g.verdicts.setdefault(v.candidate_id, {})[v.judge] = v
    return g


def select(policy: str, groups: list[PromptGroup], verdicts: list[Verdict], **args):
    return build_policy(SelectionConfig(policy, args)).select(groups, catalog(verdicts))


def write_round(root: Path, prompts, candidates, verdicts, shard_size: int = 3) -> Path:
    rd = root / "round_1"
    write_jsonl(rd / "prompts.jsonl", prompts)
    with ShardedJsonl(rd / "candidates", Candidate, shard_size=shard_size).writer() as w:
        w.write_many(candidates)
    with ShardedJsonl(rd / "verdicts", Verdict, shard_size=shard_size).writer() as w:
        w.write_many(verdicts)
    return rd


def run_export(rd: Path, policy="best", pargs=None, students=frozenset({"student"}), seed=0, **export):
    return export_stage(
        list(read_jsonl(rd / "prompts.jsonl", Prompt)), rd / "candidates", rd / "verdicts", rd,
        SelectionConfig(policy, pargs or {}), ExportConfig(**export), set(students), seed=seed,
    )


# policies ------------------------------------------------------------------------------


def test_registry_has_every_policy():
    assert set(POLICIES) == {"best", "threshold", "gated", "vote", "top_k", "random"}


def test_best_ranks_by_score_skips_errors_and_verifier_failures():
    p = P(1)
    a, b, c, d = (C(p, "teacher", i, t) for i, t in enumerate(["a 2", "b 2", "c 2", "d 2"]))
    vs = [
        V(a, "rm", 0.5),
        V(b, "rm", error="timeout"),  # a failure is never a score, however it is read
        V(c, "rm", 0.9),
        V(d, "rm", 0.1),
    ]
    [sel] = select("best", [group(p, [a, b, c, d], vs)], vs)
    assert [k.candidate.id for k in sel.kept] == [c.id]
    assert (sel.kept[0].judge, sel.kept[0].score) == ("rm", 0.9)
    assert b.id not in sel.scores and sel.scores[a.id] == 0.5

    ws = [V(a, "math", 1.0, True), V(c, "math", 0.0, False), V(d, "math", 1.0, True)]
    [sel] = select("best", [group(p, [a, c, d], ws)], ws, judge="math")
    assert sel.kept[0].candidate.id in {a.id, d.id}  # never the one the verifier failed


def test_best_needs_a_judge_name_when_several_judged():
    p = P(1)
    a = C(p, "teacher", 0, "x")
    vs = [V(a, "rm", 0.5), V(a, "math", 1.0, True)]
    with pytest.raises(ConfigError, match=r"selection.args.judge: .*math \(verifier\), rm \(reward\)"):
        select("best", [group(p, [a], vs)], vs)
    with pytest.raises(ConfigError, match="no verdicts from judge 'nope'"):
        select("best", [group(p, [a], vs)], vs, judge="nope")
    with pytest.raises(ConfigError, match=r"^args\.bogus: unknown key"):
        build_policy(SelectionConfig("best", {"bogus": 1}))


def test_ties_are_broken_by_seeded_hash_not_file_order():
    winners = set()
    for i in range(40):
        p = P(i)
        cands = [C(p, "teacher", 0, "t"), C(p, "student", 0, "s")]
        vs = [V(c, "rm", 1.0) for c in cands]
        [sel] = select("best", [group(p, cands, vs)], vs)
        winners.add(sel.kept[0].candidate.model)
    assert winners == {"teacher", "student"}


def test_no_pass_reasons():
    p1, p2, p3 = P(1), P(2), P(3)
    a, b = C(p1, "t", 0, "1"), C(p1, "t", 1, "2")
    c = C(p2, "t", 0, "3")
    d = C(p3, "t", 0, "4")
    vs = [V(a, "math", 0.0, False), V(b, "math", 0.0, False), V(c, "math", error="timeout")]
    sels = select("best", [group(p1, [a, b], vs), group(p2, [c], vs), group(p3, [d], vs)], vs)
    assert [s.reason for s in sels] == ["none_correct", "all_verdicts_failed", "no_verdicts"]
    assert not any(s.kept for s in sels)


def test_threshold_and_top_k():
    p = P(1, reference="2")
    cands = [C(p, "t", i, f"answer {i}") for i in range(4)]
    vs = [V(cands[0], "math", 1.0, True), V(cands[1], "math", 0.0, False), V(cands[2], "math", 1.0, True),
          V(cands[3], "math", error="boom")]
    [sel] = select("threshold", [group(p, cands, vs)], vs)
    assert {k.candidate.id for k in sel.kept} == {cands[0].id, cands[2].id}

    rs = [V(c, "rm", s) for c, s in zip(cands, [0.2, 0.9, 0.5, 0.7], strict=True)]
    [sel] = select("threshold", [group(p, cands, rs)], rs, min_score=0.5)
    assert {k.candidate.id for k in sel.kept} == {cands[1].id, cands[2].id, cands[3].id}
    with pytest.raises(ConfigError, match="set min_score"):
        select("threshold", [group(p, cands, rs)], rs)
    [sel] = select("top_k", [group(p, cands, rs)], rs, k=2)
    assert [k.candidate.id for k in sel.kept] == [cands[1].id, cands[3].id]


def test_gated_ranks_verified_answers_by_reward():
    p = P(1, reference="2")
    cands = [C(p, "t", i, f"answer {i}") for i in range(4)]
    vs = [V(c, "math", float(ok), ok) for c, ok in zip(cands, [True, False, True, True], strict=True)]
    vs += [V(c, "rm", s) for c, s in zip(cands, [0.3, 0.99, 0.6, -1.0], strict=True)]
    [sel] = select("gated", [group(p, cands, vs)], vs)
    assert [(k.candidate.id, k.judge, k.score) for k in sel.kept] == [(cands[2].id, "rm", 0.6)]

    wrong = [V(c, "math", 0.0, False) for c in cands] + [V(c, "rm", 1.0) for c in cands]
    [sel] = select("gated", [group(p, cands, wrong)], wrong)
    assert sel.reason == "none_correct" and not sel.kept


def test_vote_counts_equivalent_answers_and_weights():
    assert answers_equivalent("0.5", "\\frac{1}{2}") and answers_equivalent("1/2", "0.5")
    assert not answers_equivalent("2", "3")
    p = P(1)
    texts = ["so \\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "it is \\boxed{1/2}", "\\boxed{3}", "\\boxed{3}"]
    cands = [C(p, "t", i, t) for i, t in enumerate(texts)]
    [sel] = select("vote", [group(p, cands, [])], [])
    assert sel.kept[0].candidate.id in {c.id for c in cands[:3]}
    assert sel.kept[0].score == pytest.approx(3 / 5)
    # answers recorded by the math verifier are used; weights from a [0, 1] judge can overturn the count
    vs = [Verdict(c.id, "math", None, None, None, None, {"answer": a}) for c, a in zip(cands, ["0.5", "1/2", "0.5", "3", "3"], strict=True)]
    vs += [V(c, "prm", w) for c, w in zip(cands, [0.1, 0.1, 0.1, 0.9, 0.8], strict=True)]
    [sel] = select("vote", [group(p, cands, vs)], vs, weight_judge="prm")
    assert sel.kept[0].candidate.id == cands[3].id and sel.kept[0].judge == "vote(prm)"
    tie = [C(p, "t", i, t) for i, t in enumerate(["\\boxed{1}", "\\boxed{2}"])]
    [sel] = select("vote", [group(p, tie, [])], [])
    assert sel.reason == "vote_tie" and not sel.kept


def test_random_control_is_seeded_uniform_and_ignores_judges():
    prompts = [P(i) for i in range(300)]
    groups = [group(p, [C(p, "m", k, f"{p.id} {k}") for k in range(4)], []) for p in prompts]
    picks = [s.kept[0].candidate.index for s in select("random", groups, [], seed=3)]
    again = [s.kept[0].candidate.index for s in select("random", list(reversed(groups)), [], seed=3)]
    assert picks == list(reversed(again))  # same draw per prompt whatever the order
    other = [s.kept[0].candidate.index for s in select("random", groups, [], seed=4)]
    assert picks != other
    counts = [picks.count(k) for k in range(4)]
    assert all(45 <= n <= 105 for n in counts), counts  # 75 expected each
    assert all(s.kept[0].judge == "random" and s.kept[0].score is None for s in select("random", groups, []))


# the stage: SFT rows, summary, resume --------------------------------------------------


def _basic_round(tmp_path: Path) -> Path:
    prompts = [P(i, reference=str(2 * i)) for i in range(6)]
    cands, vs = [], []
    for i, p in enumerate(prompts[:5]):
        for model in ("teacher", "student"):
            for k in range(2):
                right = (model == "teacher") == (k == 0)
                text = f"{model} {k}: {i}+{i} is \\boxed{{{2 * i if right else 2 * i + 1}}}"
                c = C(p, model, k, text)
                cands.append(c)
                vs.append(V(c, "math", float(right), right, f"extracted {2 * i if right else 2 * i + 1}",
                            answer=str(2 * i if right else 2 * i + 1)))
                vs.append(V(c, "rm", 0.1 * k + (0.5 if model == "teacher" else 0.2) + 0.01 * i))
    # prompt 4: the verifier failed on every candidate
    for v in vs:
        if v.candidate_id.startswith(prompts[4].id) and v.judge == "math":
            v.error, v.score, v.correct = "timeout after 5s", None, None
    return write_round(tmp_path, prompts, cands, vs)


def test_sft_export_rows_provenance_and_summary(tmp_path):
    rd = _basic_round(tmp_path)
    summary = run_export(rd, "gated")
    ps4 = P(4).id
    rows = list(read_jsonl(rd / "sft.jsonl"))
    assert len(rows) == 4 and summary["exports"]["sft"]["rows"] == 4
    for r in rows:
        assert set(r) == {"messages", "metadata"}  # provenance in one column, the schema critique rows share
        assert r["messages"][-1]["role"] == "assistant" and r["messages"][0]["role"] == "user"
        m = r["metadata"]
        assert (m["kind"], m["source"], m["judge"], m["judge_kind"], m["policy"], m["task"]) == (
            "sft", "selected", "rm", "reward", "gated", "add")
        [cid] = m["candidate_ids"]
        assert cid == f"{m['prompt_id']}/teacher/0" and m["models"] == ["teacher"] and m["chosen"] == [True]
        i = int(r["messages"][0]["content"].split()[2])
        assert m["scores"] == [{"candidate_id": cid, "judge": "math", "score": 1.0},
                               {"candidate_id": cid, "judge": "rm", "score": pytest.approx(0.5 + 0.01 * i)}]
        n = int(r["messages"][0]["content"].split()[2])
        assert f"\\boxed{{{2 * n}}}" in r["messages"][-1]["content"]  # a verified-correct answer
    assert summary["no_pass"]["count"] == 2
    assert summary["no_pass"]["reasons"] == {"no_candidates": 1, "none_correct": 1}
    assert summary["verdicts"]["errors"] == {"math": 4}
    assert summary["candidates"]["read"] == 20 and summary["verdicts"]["read"] == 40
    assert summary["tasks"]["add"]["prompts"] == 6 and summary["tasks"]["add"]["sft"] == 4
    assert not list(rd.glob("*.tmp"))
    # what happened to each candidate: the right teacher answer kept, wrong ones and the outranked one dropped
    decisions = list(read_jsonl(rd / "export_decisions.jsonl"))
    assert len(decisions) == 20
    why = {(d["candidate_id"].split("/", 1)[1], d["reason"]) for d in decisions if d["prompt_id"] != ps4}
    assert why == {("teacher/0", None), ("teacher/1", "wrong"), ("student/0", "wrong"), ("student/1", "outranked")}
    assert {d["reason"] for d in decisions if d["prompt_id"] == ps4} == {"verifier_error"}  # the gate could not pass
    assert sum(d["decision"] == "kept" for d in decisions) == 4
    assert all(d["rank"] is not None and d["score"] is not None for d in decisions)


def test_export_skips_when_complete_and_redoes_on_change(tmp_path, capsys):
    from thresher.feedback.stage import export_outcome

    rd = _basic_round(tmp_path)
    prompts = list(read_jsonl(rd / "prompts.jsonl", Prompt))

    def export(policy, pargs=None):
        return export_outcome(prompts, rd / "candidates", rd / "verdicts", rd, SelectionConfig(policy, pargs or {}),
                              ExportConfig(), {"student"})

    first = export("gated")
    mtime = (rd / "sft.jsonl").stat().st_mtime_ns
    again = export("gated")
    assert again.skipped == ["export"] and not again.ran and (rd / "sft.jsonl").stat().st_mtime_ns == mtime
    assert again.summary["exports"] == first.summary["exports"]
    other = export("random", {"k": 2})
    assert other.ran == ["export"] and other.summary["exports"]["sft"]["rows"] == 10
    assert "selection.policy: \"gated\" -> \"random\"" in capsys.readouterr().err
    (rd / "sft.jsonl").unlink()  # an output deleted by hand is made again, not assumed
    assert export("random", {"k": 2}).ran == ["export"] and (rd / "sft.jsonl").is_file()


def test_grouping_is_the_same_with_many_buckets(tmp_path):
    rd = _basic_round(tmp_path)
    one = run_export(rd, "gated", dpo="best_vs_worst")
    rows_one = sorted(map(json.dumps, read_jsonl(rd / "sft.jsonl"))), sorted(map(json.dumps, read_jsonl(rd / "dpo.jsonl")))
    many = run_export(rd, "gated", dpo="best_vs_worst", args={"bucket_mb": 0.0005})
    rows_many = sorted(map(json.dumps, read_jsonl(rd / "sft.jsonl"))), sorted(map(json.dumps, read_jsonl(rd / "dpo.jsonl")))
    assert rows_one == rows_many and one["exports"] == many["exports"]
    assert json.loads((rd / ".stages" / "export.json").read_text())["summary"] == many


def test_bad_inputs_name_file_and_line(tmp_path):
    rd = _basic_round(tmp_path)
    shard = sorted((rd / "verdicts").glob("shard-*.jsonl"))[1]
    lines = shard.read_text().splitlines()
    bad = json.loads(lines[1])
    bad["score"] = "high"
    lines[1] = json.dumps(bad)
    shard.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match=rf"{shard.name}:2: .*score"):
        run_export(rd, "gated")
    assert not list(rd.glob("*.tmp"))

    rd2 = write_round(tmp_path / "b", [P(1)], [C(P(2), "t", 0, "x")], [])
    with pytest.raises(RecordError, match=r"shard-00000.jsonl:1: prompt id .* is not in the round's prompts"):
        run_export(rd2)


# DPO: honest pairs -------------------------------------------------------------------------


def test_dpo_never_emits_a_bad_pair_and_counts_each_reason(tmp_path):
    ps = [P(i, reference="4") for i in range(6)]
    cands, vs = [], []

    def add(p, model, idx, text, rm, ok=None):
        c = C(p, model, idx, text)
        cands.append(c)
        vs.append(V(c, "rm", rm))
        if ok is not None:
            vs.append(V(c, "math", float(ok), ok, answer="4" if ok else "5"))
        return c

    add(ps[0], "teacher", 0, "tie one: 4", 0.7)              # tie
    add(ps[0], "student", 0, "tie two: 4", 0.7)
    add(ps[1], "teacher", 0, "same text 4", 0.9)             # identical texts
    add(ps[1], "student", 0, "same text 4", 0.1)
    add(ps[2], "teacher", 0, "spaced  text\n4", 0.9)         # whitespace-identical
    add(ps[2], "student", 0, " spaced text 4 ", 0.1)
    add(ps[3], "teacher", 0, "wrong answer 5", 0.9, False)   # chosen failed the verifier, rejected passed it
    add(ps[3], "student", 0, "right answer 4", 0.2, True)
    add(ps[4], "teacher", 0, "good answer 4", 0.8, True)     # the one sound pair
    add(ps[4], "student", 0, "bad answer 5", 0.3, False)
    add(ps[5], "teacher", 0, "alone 4", 0.8)                 # nothing to pair with
    rd = write_round(tmp_path, ps, cands, vs)
    summary = run_export(rd, "best", {"judge": "rm"}, sft=False, dpo="best_vs_worst", args={"dedup": {"near": False}})
    rows = list(read_jsonl(rd / "dpo.jsonl"))
    assert len(rows) == 1 and summary["exports"]["dpo"]["rows"] == 1
    assert summary["exports"]["dpo"]["dropped"] == {
        "tie": 1, "identical_text": 1, "whitespace_identical": 1, "chosen_failed_verifier": 1, "no_rejected": 1
    }
    r = rows[0]
    assert r["chosen"] == [{"role": "assistant", "content": "good answer 4"}]
    assert r["rejected"] == [{"role": "assistant", "content": "bad answer 5"}]
    assert (r["chosen_score"], r["rejected_score"], r["margin"]) == (0.8, 0.3, pytest.approx(0.5))
    assert (r["rule"], r["chosen_model"], r["rejected_model"]) == ("best_vs_worst", "teacher", "student")
    assert r["prompt"] == ps[4].messages and r["metadata"]["judge"] == "rm"


def _pairs_round(tmp_path: Path) -> Path:
    ps = [P(i) for i in range(10)]
    cands, vs = [], []
    for i, p in enumerate(ps):
        for m, model in enumerate(("teacher", "student", "student2")):
            for k in range(2):
                c = C(p, model, k, f"{model} answer {k} to {i}")
                cands.append(c)
                vs.append(V(c, "rm", float(3 * (2 - m) + k + (i % 2) * 0.5)))
    return write_round(tmp_path, ps, cands, vs)


@pytest.mark.parametrize("rule", ["best_vs_worst", "best_vs_random", "margin", "on_policy"])
def test_every_dpo_rule_gives_sound_pairs(tmp_path, rule):
    rd = _pairs_round(tmp_path)
    summary = run_export(rd, "best", sft=False, dpo=rule, students={"student", "student2"},
                         args={"dpo": {"min_margin": 1.5 if rule == "margin" else 1.0, "max_pairs_per_prompt": 5},
                               "dedup": {"near": False}})
    rows = list(read_jsonl(rd / "dpo.jsonl"))
    assert rows and all(r["rule"] == rule for r in rows)
    for r in rows:
        assert r["margin"] == pytest.approx(r["chosen_score"] - r["rejected_score"]) and r["margin"] >= 1.0
        assert r["chosen"][0]["content"] != r["rejected"][0]["content"]
    per_prompt = {}
    for r in rows:
        per_prompt[r["prompt_id"]] = per_prompt.get(r["prompt_id"], 0) + 1
    if rule == "margin":
        # scores {0,1,3,4,6,7} (+0.5 on odd prompts): 3 of 15 pairs differ by 1 < 1.5, the cap keeps 5 of 12
        assert set(per_prompt.values()) == {5} and len(rows) == 50
        assert summary["exports"]["dpo"]["dropped"] == {"below_margin": 30, "over_pair_cap": 70}
        assert min(r["margin"] for r in rows) == 4.0  # the widest margins are kept
    else:
        assert len(rows) == 10 and summary["exports"]["dpo"]["dropped"] == {}
        assert all(r["chosen_model"] == "teacher" for r in rows)
    if rule == "best_vs_worst":
        assert all(r["rejected_model"] == "student2" and r["rejected_score"] in (0.0, 0.5) for r in rows)
    if rule == "on_policy":
        assert {r["rejected_model"] for r in rows} <= {"student", "student2"}


def test_dpo_rejects_settings_that_cannot_pair(tmp_path):
    rd = _pairs_round(tmp_path)
    with pytest.raises(ConfigError, match="^dpo: 'nope' is not one of"):
        run_export(rd, dpo="nope")
    with pytest.raises(ConfigError, match="does not rank candidates"):
        run_export(rd, "random", dpo="best_vs_worst")
    with pytest.raises(ConfigError, match="on_policy pairs need a student"):
        run_export(rd, dpo="on_policy", students=set())


# critique-SFT ---------------------------------------------------------------------------


def _math_round(tmp_path: Path, n: int = 4) -> tuple[Path, list[Prompt]]:
    ps = [P(i, reference=str(2 * i)) for i in range(n)]
    cands, vs = [], []
    for i, p in enumerate(ps):
        for model, answers in (("teacher", [2 * i, 2 * i]), ("student", [2 * i + 1, 2 * i])):
            for k, a in enumerate(answers):
                c = C(p, model, k, f"{model} says {i} + {i} = \\boxed{{{a}}} ({k})")
                cands.append(c)
                ok = a == 2 * i
                vs.append(V(c, "math", float(ok), ok, f"extracted {a}, reference {2 * i}: {'equal' if ok else 'different'}",
                            answer=str(a)))
    return write_round(tmp_path, ps, cands, vs), ps


@pytest.mark.parametrize("language", ["en", "zh"])
def test_critique_from_verifier_findings(tmp_path, language):
    rd, ps = _math_round(tmp_path)
    summary = run_export(rd, "best", critique=True, language=language, args={"critique": {"max_candidates": 3}})
    rows = list(read_jsonl(rd / "critique_sft.jsonl"))
    assert len(rows) == 4 and summary["exports"]["critique_sft"]["judge"] == "math"
    cands = {c.id: c for c in ShardedJsonl(rd / "candidates", Candidate)}
    for r in rows:
        user, assistant = r["messages"][0]["content"], r["messages"][1]["content"]
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
        m = r["metadata"]
        order = m["candidate_ids"]
        assert len(order) == 3 and m["models"] == [cands[c].model for c in order]
        positions = [user.index(cands[c].text) for c in order]
        assert positions == sorted(positions)  # the row shows candidates in the recorded order
        assert m["chosen"].count(True) == 1 and m["kind"] == "critique_sft" and m["judge_kind"] == "verifier"
        label = str(m["chosen"].index(True) + 1)  # candidates are labelled 1..N in the order shown
        ref = next(p.reference for p in ps if p.id == m["prompt_id"])
        if language == "en":
            assert user.startswith("Below are a problem and 3 candidate answers.")
            assert assistant.endswith(f"Conclusion: the best answer is Candidate {label}.")
            assert f"which equals the correct answer {ref}" in assistant
            assert "but the correct answer is" in assistant  # each row shows a wrong answer too
        else:
            assert user.startswith("下面是一道题目和 3 个候选答案。")
            assert assistant.endswith(f"结论：最好的答案是候选答案 {label}。")
            assert f"与正确答案 {ref} 相同" in assistant and "但正确答案是" in assistant
    orders = [r["metadata"]["candidate_ids"] for r in rows]
    again = run_export(rd, "best", critique=True, language=language, args={"critique": {"max_candidates": 3}}, seed=1)
    assert "skipped" not in again
    assert [r["metadata"]["candidate_ids"] for r in read_jsonl(rd / "critique_sft.jsonl")] != orders  # shuffled, by seed


def test_critique_from_listwise_judge_is_its_exact_exchange_and_drops_contradictions(tmp_path):
    from thresher.judges.llm_judge import listwise_verdicts
    from thresher.judges.llm_templates import listwise_messages

    ps = [P(i, reference=str(2 * i)) for i in range(4)]
    cands, vs = [], []
    for i, p in enumerate(ps):
        group_c = [C(p, m, 0, f"{m} answer for {i}") for m in ("teacher", "student", "other")]
        cands += group_c
        best = 3 if i == 2 else 2  # prompt 2: the judge picks the student's wrong answer
        output = f"<reasoning>Response 1 is sloppy, response 2 is right, response 3 is off.</reasoning><best>{best}</best>"
        if i == 3:
            output = "I cannot decide."  # unparseable: every verdict of the prompt is an error
        # the judge was shown other, teacher, student (its own shuffle)
        vs += listwise_verdicts([c.id for c in group_c], "listwise", [2, 0, 1], output)
        for c in group_c:  # a verifier: only the teacher is right
            ok = c.model == "teacher"
            vs.append(V(c, "math", float(ok), ok, answer=str(2 * i)))
    rd = write_round(tmp_path, ps, cands, vs)
    summary = run_export(rd, "best", {"judge": "math"}, critique=True, args={"critique": {"judge": "listwise"}})
    rows = list(read_jsonl(rd / "critique_sft.jsonl"))
    assert len(rows) == 2
    assert summary["exports"]["critique_sft"]["dropped"] == {"judge_contradicts_verifier": 1, "judge_failed": 1}
    assert summary["verdicts"]["errors"] == {"listwise": 3}
    by_id = {p.id: p for p in ps}
    for r in rows:
        m = r["metadata"]
        assert m["models"] == ["other", "teacher", "student"] and m["chosen"] == [False, True, False]
        assert r["messages"][1]["content"].endswith("<best>2</best>") and m["judge_kind"] == "listwise"
        # the judge's own prompt, rebuilt: the numbers in its reasoning point at the same answers
        i = int(by_id[m["prompt_id"]].reference) // 2
        texts = [f"{m} answer for {i}" for m in ("other", "teacher", "student")]
        assert r["messages"][0]["content"] == listwise_messages(by_id[m["prompt_id"]], texts)[0]["content"]
        assert "[Response 2]\nteacher answer" in r["messages"][0]["content"]
        assert m["candidate_ids"][1] == f"{m['prompt_id']}/teacher/0"


def test_critique_from_pointwise_llm_judge(tmp_path):
    p = P(1)
    cands = [C(p, m, 0, f"{m} text") for m in ("teacher", "student")]
    vs = [V(cands[0], "llm", 8.0, critique="Clear and right."), V(cands[1], "llm", 3.0, critique="Misses a step.")]
    rd = write_round(tmp_path, [p], cands, vs)
    run_export(rd, "best", critique=True)
    [row] = read_jsonl(rd / "critique_sft.jsonl")
    label = str(row["metadata"]["candidate_ids"].index(cands[0].id) + 1)
    text = row["messages"][1]["content"]
    assert f"Candidate {label}: Clear and right.\nScore: 8" in text
    assert text.endswith(f"Conclusion: the best answer is Candidate {label}.")


def test_critique_judge_must_be_clear():
    from thresher.feedback.critique import resolve_critique_judge

    infos = {"rm": JudgeInfo("rm", verdicts=4, scored=4), "pair": JudgeInfo("pair", verdicts=4, scored=4, pairwise=4)}
    with pytest.raises(ConfigError, match=r"export.args.critique.judge: .*rm \(reward\), pair \(pairwise\)"):
        resolve_critique_judge(infos, None)
    infos["a"] = JudgeInfo("a", verdicts=4, scored=4, critiqued=4)
    infos["b"] = JudgeInfo("b", verdicts=4, scored=4, listwise=4, critiqued=4)
    with pytest.raises(ConfigError, match="several judges could write the critiques \\(a, b\\)"):
        resolve_critique_judge(infos, None)
    infos["math"] = JudgeInfo("math", verdicts=4, verified=4)
    assert resolve_critique_judge(infos, "math") == "math"


# dedup and filters ---------------------------------------------------------------------


LONG = (
    "To add the two numbers we line them up by place value, add the ones, carry the ten, then add the tens. "
    "Checking by subtraction gives back the first number, so the sum is right. "
)


def test_deduplicator_removes_planted_near_duplicates_and_keeps_distinct_rows():
    d = Deduplicator(DedupConfig())
    distinct = [
        LONG,
        "Multiply first: seven times six is forty-two, because six sevens are two more than five sevens (35).",
        "The derivative of x squared is two x; at x = 3 the slope of the tangent line is therefore six.",
        "A completely different answer about geometry and the area of circles, pi r squared.",
    ]
    for t in distinct:
        assert d.check(t) is None
    assert d.check(distinct[0].upper().replace(" ", "   ")) == "exact_duplicate"  # case / whitespace only
    assert d.check(distinct[0].replace("carry the ten", "carry a ten")) == "near_duplicate"
    assert d.check(distinct[2] + " Done.") == "near_duplicate"
    assert d.check("Short and new.") is None
    assert dict(d.removed) == {"exact_duplicate": 1, "near_duplicate": 2}


def test_stage_dedup_and_filters_report_what_they_removed(tmp_path):
    ps = [P(i, text=f"Explain sum number {i} in detail.") for i in range(6)]
    ps.append(P(99, text="Explain sum number 0 in detail!"))  # a near-duplicate prompt
    cands, vs = [], []
    texts = {
        0: LONG + "Zero.",
        1: LONG.replace("place value", "position") + "One.",
        2: "Totally distinct: we count on our fingers, there are " + "many " * 5 + "fingers.",
        3: "",  # empty
        4: LONG + "cut off mid",  # truncated
        5: LONG + "<|im_end|> leaked",  # forbidden token
        99: LONG + "Zero.",
    }
    for i, p in zip([0, 1, 2, 3, 4, 5, 99], ps, strict=True):
        c = C(p, "teacher", 0, texts[i], finish="length" if i == 4 else "stop")
        cands.append(c)
        vs.append(V(c, "rm", 1.0))
    rd = write_round(tmp_path, ps, cands, vs)
    summary = run_export(rd, "best")
    rows = list(read_jsonl(rd / "sft.jsonl"))
    assert [r["messages"][-1]["content"][-5:] for r in rows] == ["Zero.", " One.", "gers."]
    assert summary["candidates"]["filtered"] == {"empty": 1, "forbidden_text": 1, "truncated": 1}
    assert summary["exports"]["sft"]["dropped"] == {"near_duplicate": 1}
    assert summary["no_pass"]["reasons"] == {"all_filtered": 3}

    summary = run_export(rd, "best", args={"filters": {"require": {"add": "One\\.$"}, "drop_truncated": False,
                                                          "forbid": []}, "dedup": {"near": False}})
    assert summary["candidates"]["filtered"] == {"empty": 1, "format": 5}
    assert summary["exports"]["sft"]["rows"] == 1


def test_dedup_on_prompt_removes_repeated_prompts_but_keeps_each_prompts_answers(tmp_path):
    base = "Explain, with a worked example, how long division of a three digit number by one digit works."
    ps = [P(0, text=base), P(1, text=base.replace("three digit", "three-digit")), P(2, text="Name the primes below 20.")]
    cands, vs = [], []
    for p in ps:
        for k in range(3):
            c = C(p, "teacher", k, f"Answer {k} for {p.id}: " + "distinct words here " * (k + 1))
            cands.append(c)
            vs.append(V(c, "rm", float(k)))
    rd = write_round(tmp_path, ps, cands, vs)
    summary = run_export(rd, "top_k", {"k": 3}, args={"dedup": {"on": "prompt"}})
    rows = list(read_jsonl(rd / "sft.jsonl"))
    assert sorted({r["metadata"]["prompt_id"] for r in rows}) == sorted([ps[0].id, ps[2].id])
    assert len(rows) == 6 and summary["exports"]["sft"]["dropped"] == {"near_duplicate": 3}


# mixing ------------------------------------------------------------------------------------


def _rows(path: Path, n: int, task: str, tag: str) -> Path:
    write_jsonl(path, ({"messages": [{"role": "user", "content": f"{tag} {i}"}], "task": task} for i in range(n)))
    return path


def test_mixing_by_ratio_and_repeats_is_deterministic(tmp_path):
    dom = _rows(tmp_path / "dom.jsonl", 10, "math", "d")
    gen = _rows(tmp_path / "gen.jsonl", 40, "chat", "g")
    out = tmp_path / "mix.jsonl"
    s = mix_files([("domain", dom, 1.0), ("general", gen, 1.0)], out, seed=0)
    assert s["by_source"] == {"domain": 10, "general": 10}
    rows = list(read_jsonl(out))
    assert len(rows) == 20 and {r["source"] for r in rows} == {"domain", "general"}
    assert len({r["messages"][0]["content"] for r in rows}) == 20  # nothing repeated without repeats
    text = out.read_text()
    mix_files([("domain", dom, 1.0), ("general", gen, 1.0)], out, seed=0)
    assert out.read_text() == text
    mix_files([("domain", dom, 1.0), ("general", gen, 1.0)], out, seed=1)
    assert out.read_text() != text

    s = mix_files([("domain", dom, 1.0), ("general", gen, 2.0)], out, seed=0, repeats={"math": 2, "chat": 0.5})
    assert s["by_task"] == {"chat": 10, "math": 20} and s["rows"] == 30
    s = mix_files([("domain", dom, 1.0), ("general", gen, 1.0)], out, seed=0, total=50)
    assert s["by_source"] == {"domain": 25, "general": 25}


def test_stage_mixes_sft_with_other_data(tmp_path):
    rd = _basic_round(tmp_path)
    gen = _rows(tmp_path / "general.jsonl", 30, "chat", "g")
    summary = run_export(rd, "gated", args={"mix": [{"sources": [{"path": str(gen)}], "repeats": {"add": 2}}]})
    rows = list(read_jsonl(rd / "sft.jsonl"))
    assert summary["mix"]["sft"]["by_source"] == {"general": 4, "selected": 8}
    assert len(rows) == 12 and summary["exports"]["sft"]["rows"] == 12
    with pytest.raises(ConfigError, match=r"export.args.mix\[0\].target: 'dpo' is not exported"):
        run_export(rd, "gated", args={"mix": [{"sources": [{"path": str(gen)}], "target": "dpo"}]})
    with pytest.raises(ConfigError, match=r"^args.dedup.treshold: unknown key"):
        run_export(rd, "gated", args={"dedup": {"treshold": 0.5}})


# CLI -------------------------------------------------------------------------------------


def test_cli_exports_a_run_and_prints_the_table(tmp_path, capsys):
    run = tmp_path / "runs" / "demo"
    _basic_round(run)
    recipe = parse_recipe({
        "name": "demo", "out_dir": str(tmp_path / "runs"),
        "models": [{"name": "teacher", "path": "builtin:tiny-teacher"},
                   {"name": "student", "path": "builtin:tiny-student", "role": "student"}],
        "judges": [{"type": "math"}, {"type": "loglik", "name": "rm", "args": {"model": "builtin:tiny-rm"}}],
        "selection": {"policy": "gated"},
    }, check_files=False)
    dump_recipe(recipe, run / "recipe.yaml")
    code = main(["export", "--run", str(run), "--sft", "--dpo", "on_policy", "--critique"])
    out = capsys.readouterr().out
    assert code == 0
    assert (run / "round_1" / "dpo.jsonl").is_file() and (run / "round_1" / "critique_sft.jsonl").is_file()
    assert "sft.jsonl" in out and "dpo.jsonl" in out and "no_candidates" in out
    summary = json.loads((run / "round_1" / ".stages" / "export.json").read_text())["summary"]
    assert summary["policy"] == "gated" and summary["exports"]["dpo"]["rule"] == "on_policy"
    assert all(r["rejected_model"] == "student" for r in read_jsonl(run / "round_1" / "dpo.jsonl"))

    code = main(["export", "--run", str(run), "--policy", "random", "--arg", "k=2"])
    assert code == 0 and len(list(read_jsonl(run / "round_1" / "sft.jsonl"))) == 10
    assert main(["export", "--run", str(run), "--dpo", "worst"]) == 2
    assert "--dpo: 'worst' is not one of" in capsys.readouterr().err
    assert main(["export", "--run", str(tmp_path / "nope")]) == 2

