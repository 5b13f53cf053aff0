"""LLM judge: strict parsing of crafted judge outputs, both-order pairwise, listwise best-of-N, and a real tiny model.

A random tiny model cannot follow the output format, so the verdict logic is
tested on crafted outputs through the same parse-and-aggregate functions the
judge calls, and the tiny model shows the other half: its garbage becomes
counted errors, never scores.
"""

from __future__ import annotations

import pytest

from thresher.judges.llm_judge import (
    LLMJudge,
    listwise_verdicts,
    llm_judge,
    pairwise_verdicts,
    pointwise_verdict,
)
from thresher.judges.llm_parse import JudgeParseError, parse_fields, parse_ranking, parse_score, strip_thinking
from thresher.judges.llm_templates import listwise_messages, pairwise_messages, pointwise_messages
from thresher.records import Candidate, Prompt

PROMPT = Prompt.create("qa", [{"role": "user", "content": "What is 6 * 7?"}], reference="42")


# ------------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    "output",
    [
        "<critique>Correct and concise.</critique>\n<score>9</score>",
        "Sure.\n<critique>Correct and concise.</critique> <score> 9 </score>\n",
        '{"critique": "Correct and concise.", "score": 9}',
        '```json\n{"critique": "Correct and concise.", "score": "9"}\n```',
        "<think>6*7 is 42, matches.</think>\n<critique>Correct and concise.</critique><score>9</score>",
    ],
)
def test_pointwise_accepts_tags_or_json(output):
    v = pointwise_verdict("p/m/0", "llm", output)
    assert v.ok and v.score == 9.0 and v.critique == "Correct and concise." and v.correct is None


@pytest.mark.parametrize(
    ("output", "why"),
    [
        ("The answer looks right, I'd give it a 9.", "no <critique>"),
        ("<critique>ok</critique>", "no <score>"),
        ("<critique>ok</critique><score>nine</score>", "is not a number"),
        ("<critique>ok</critique><score>11</score>", "outside 1..10"),
        ("<critique>ok</critique><score>0</score>", "outside 1..10"),
        ("<critique>a</critique><critique>b</critique><score>5</score>", "appears 2 times"),
        ('{"critique": "ok", "score": 5', "no <critique>"),
        ('{"critique": "ok", "score": 5,}', "invalid JSON"),
        ('{"critique": "ok"}', "lacks score"),
        ("", "no <critique>"),
    ],
)
def test_pointwise_unparseable_is_an_error_never_a_score(output, why):
    v = pointwise_verdict("p/m/0", "llm", output)
    assert v.score is None and v.correct is None and v.critique is None
    assert v.error.startswith("unparseable judge output:") and why in v.error
    assert v.metadata["raw"] == output[:2000]


def test_parse_helpers():
    assert strip_thinking("<think>a</think> b") == "b"
    assert strip_thinking("reasoning without opening tag</think>\n<best>2</best>") == "<best>2</best>"
    assert parse_score("7.5", 10) == 7.5
    assert parse_ranking("3, 1，2", 3) == [3, 1, 2]
    assert parse_ranking("[2, 1]", 2) == [2, 1]
    with pytest.raises(JudgeParseError):
        parse_ranking("1, 1, 2", 3)
    assert parse_fields("<reasoning>r</reasoning><best>1</best>", ("reasoning", "best"), ("ranking",)) == {
        "reasoning": "r",
        "best": "1",
    }


# ------------------------------------------------------------------------------------------ pairwise
def _pair(winner: str, why: str = "because") -> str:
    return f"<reasoning>{why}</reasoning>\n<winner>{winner}</winner>"


def test_pairwise_counts_only_pairs_both_orders_agree_on():
    cids = ["p/a/0", "p/b/0", "p/c/0"]
    outputs = {
        (0, 1): _pair("A", "a is right"),  # a wins as A ...
        (1, 0): _pair("B"),  # ... and as B: agreed, a beats b
        (0, 2): _pair("A"),  # A wins in both orders: position bias, no verdict
        (2, 0): _pair("A"),
        (1, 2): _pair("tie", "both fine"),  # tie both ways: agreed tie
        (2, 1): _pair("平局"),
    }
    a, b, c = pairwise_verdicts(cids, "llm", outputs)
    assert (a.metadata["wins"], a.metadata["losses"], a.metadata["agreed"], a.metadata["disagreed"]) == (1, 0, 1, 1)
    assert a.score == 1.0 and "vs p/b/0 (win): a is right" in a.critique
    assert (b.metadata["losses"], b.metadata["ties"], b.metadata["agreed"]) == (1, 1, 2)
    assert b.score == 0.25
    assert c.score == 0.5 and c.metadata["disagreed"] == 1
    assert all(v.ok for v in (a, b, c))


def test_pairwise_with_no_agreement_has_no_opinion_and_bad_output_is_an_error():
    cids = ["p/a/0", "p/b/0", "p/c/0"]
    outputs = {
        (0, 1): _pair("A"),
        (1, 0): _pair("A"),
        (0, 2): _pair("A"),
        (2, 0): _pair("A"),
        (1, 2): "I prefer the second one",
        (2, 1): _pair("B"),
    }
    a, b, c = pairwise_verdicts(cids, "llm", outputs)
    assert a.ok and a.score is None and a.metadata["disagreed"] == 2
    assert "flipped with the order" in a.critique
    assert b.error is not None and "1 of 2 comparisons unparseable" in b.error and b.score is None
    assert c.error is not None and c.metadata["disagreed"] == 1


# ------------------------------------------------------------------------------------------ listwise
LISTWISE_OUT = (
    "<reasoning>Response 1 says 41, wrong. Response 2 says 42 with a clear check. Response 3 says 42 "
    "but no work.</reasoning>\n<best>2</best>\n<ranking>2, 3, 1</ranking>"
)


def test_listwise_maps_shown_labels_back_to_candidates():
    cids = ["p/teacher/0", "p/student/0", "p/student/1"]
    shown = [2, 0, 1]  # response 1 = p/student/1, response 2 = p/teacher/0, response 3 = p/student/0
    verdicts = listwise_verdicts(cids, "llm", shown, LISTWISE_OUT)
    by_id = {v.candidate_id: v for v in verdicts}
    assert [v.candidate_id for v in verdicts] == cids
    assert by_id["p/teacher/0"].metadata["chosen"] is True and by_id["p/teacher/0"].score == 1.0
    assert by_id["p/teacher/0"].metadata["rank"] == 1 and by_id["p/teacher/0"].metadata["position"] == 1
    assert by_id["p/student/0"].metadata["rank"] == 2 and by_id["p/student/0"].score == 0.5
    assert by_id["p/student/1"].metadata["rank"] == 3 and by_id["p/student/1"].score == 0.0
    assert all(v.critique == LISTWISE_OUT and v.metadata["best"] == "p/teacher/0" for v in verdicts)
    assert by_id["p/student/1"].metadata["label"] == "1"
    assert verdicts[0].metadata["shown"] == ["p/student/1", "p/teacher/0", "p/student/0"]


def test_listwise_without_ranking_and_with_bad_output():
    cids = ["p/a/0", "p/b/0"]
    v = listwise_verdicts(cids, "llm", [0, 1], '{"reasoning": "b is right", "best": 2}')
    assert [x.score for x in v] == [0.0, 1.0] and "rank" not in v[0].metadata
    for bad in (
        "<reasoning>r</reasoning><best>3</best>",
        "<reasoning>r</reasoning><best>1</best><ranking>2, 1</ranking>",
        "<reasoning>r</reasoning><best>first</best>",
        "The best is 1.",
    ):
        out = listwise_verdicts(cids, "llm", [0, 1], bad)
        assert all(x.error and x.score is None for x in out), bad


# ------------------------------------------------------------------------------------------ templates
def test_templates_in_english_and_chinese():
    en = pointwise_messages(PROMPT, "42")[0]["content"]
    assert "[Question]\nWhat is 6 * 7?" in en and "[Reference answer]\n42" in en and "<score>" in en
    zh = pairwise_messages(PROMPT, "41", "42", language="zh")[0]["content"]
    assert "【问题】" in zh and "【回答 A】\n41" in zh and "【回答 B】\n42" in zh and "<winner>" in zh
    lw = listwise_messages(PROMPT, ["x", "y", "z"], language="zh")[0]["content"]
    assert "3 个回答" in lw and "【回答 3】\nz" in lw and "<ranking>" in lw


# ------------------------------------------------------------------------------------------ a real tiny model
@pytest.fixture(scope="module")
def tiny_sampler(tiny_lm):
    from thresher.sampling.hf import HFSampler

    return HFSampler(str(tiny_lm), "tiny-judge", batch_size=16)


@pytest.mark.parametrize("mode", ["pointwise", "pairwise", "listwise"])
def test_tiny_random_model_output_gives_errors_never_scores(tiny_sampler, mode):
    judge = llm_judge("unused", mode=mode, sampler=tiny_sampler, max_tokens=24, language="zh")
    assert isinstance(judge, LLMJudge) and judge.owns_sampler is False
    prompts = [PROMPT, Prompt.create("qa", [{"role": "user", "content": "2+2?"}])]
    cands = [[Candidate(p.id, "m", k, f"answer {k}") for k in range(3)] for p in prompts]
    out = judge.judge(prompts, cands)
    assert [[v.candidate_id for v in row] for row in out] == [[c.id for c in row] for row in cands]
    for v in (v for row in out for v in row):
        assert v.error is not None and v.error.startswith("unparseable judge output")
        assert v.score is None and v.correct is None
        assert "raw" in v.metadata


def test_listwise_shows_a_seeded_shuffle():
    judge = LLMJudge(sampler=None, mode="listwise", seed=1)  # type: ignore[arg-type]
    first = judge.shown_order(PROMPT, 6)
    assert sorted(first) == list(range(6)) and first == judge.shown_order(PROMPT, 6)
    assert first != list(range(6))


# ------------------------------------------------------------------------------------------ other backends (slow)
@pytest.mark.slow
def test_listwise_judge_on_the_shared_vllm_engine(tiny_vllm):
    judge = llm_judge("unused", mode="listwise", sampler=tiny_vllm, max_tokens=16)
    prompts = [PROMPT, Prompt.create("qa", [{"role": "user", "content": "2+2?"}])]
    cands = [[Candidate(p.id, "m", k, f"answer {k}") for k in range(3)] for p in prompts]
    out = judge.judge(prompts, cands)
    assert [[v.candidate_id for v in row] for row in out] == [[c.id for c in row] for row in cands]
    assert all(v.error and v.score is None and v.metadata["shown"] for row in out for v in row)
    judge.close()  # not its sampler: the shared engine stays up
    assert tiny_vllm.llm is not None


@pytest.mark.slow
def test_cli_pairwise_judge_on_an_openai_compatible_server(tiny_vllm_server, tmp_path, capsys):
    from thresher.cli import main
    from thresher.records import Verdict, write_jsonl
    from thresher.store import ShardedJsonl

    run = tmp_path / "round_1"
    prompts = [PROMPT]
    write_jsonl(run / "prompts.jsonl", prompts)
    write_jsonl(run / "candidates.jsonl", [Candidate(PROMPT.id, "m", k, f"{40 + k}") for k in range(3)])
    argv = ["judge", "--out", str(run), "--candidates", str(run / "candidates.jsonl"),
            "--judge", f"llm:{tiny_vllm_server}:pairwise", "--max-tokens", "16"]  # fmt: skip
    assert main(argv) == 0
    verdicts = list(ShardedJsonl(run / "verdicts", Verdict))
    assert len(verdicts) == 3 and all(v.judge == "llm" and v.error and v.score is None for v in verdicts)
    assert "llm: 3 verdicts, 3 errors, 0 correct, mean score n/a" in capsys.readouterr().err
