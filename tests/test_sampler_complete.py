"""Raw completion on every backend, and a request the backend rejects is that item's error, not a crash.

The slow tests run on the session's real tiny vLLM engine (`tiny_vllm`,
max_model_len 1024): one prompt longer than the model's context among short
ones comes back as that item's error candidates while the others are
answered, in the sampler, in the LLM judge (a `Verdict.error`) and in prompt
synthesis (a rejected text with reason `request_failed`). The OpenAI backend
is checked against `FakeOpenAIServer` (a fake standing in for a hosted model), which refuses long requests with HTTP 400 as vLLM's
server does.
"""

from __future__ import annotations

import pytest
from fake_openai import FakeOpenAIServer

from thresher.errors import UserError
from thresher.records import Candidate, Prompt
from thresher.sampling.params import ERROR, SamplingParams, item_error, raise_item_errors

LONG = "tax " * 3000
"""Far more tokens than the tiny model's 1024-token context."""


def _p(text: str) -> Prompt:
    return Prompt.create("t", [{"role": "user", "content": text}])


@pytest.mark.slow
def test_vllm_answers_the_rest_when_one_prompt_is_too_long(tiny_vllm):
    prompts = [_p("1+1?"), _p(LONG), _p("2+2?")]
    rows = tiny_vllm.sample(prompts, SamplingParams(n=2, temperature=1.0, max_tokens=4, seed=0))
    assert [len(r) for r in rows] == [2, 2, 2]
    assert [c.prompt_id for r in rows for c in r] == [p.id for p in prompts for _ in range(2)]
    assert all(item_error(c) is None and c.text for c in rows[0] + rows[2])
    assert all(c.finish_reason == ERROR and "rejected by vLLM" in item_error(c) for c in rows[1])
    assert "1024" in item_error(rows[1][0]), "the reason names the model's context length"
    with pytest.raises(UserError, match=f"model 'tiny' rejected prompt '{prompts[1].id}'"):
        raise_item_errors((c for r in rows for c in r), "tiny")


@pytest.mark.slow
def test_sample_stage_records_a_rejected_prompt_and_export_drops_it(tiny_vllm, tiny_lm, tmp_path):
    """One over-long prompt in a round: its candidates are that item's recorded error, the stage finishes."""
    from thresher.config import ExportConfig, ModelConfig, SelectionConfig
    from thresher.feedback.stage import export_stage
    from thresher.sampling.stage import sample_stage
    from thresher.store import read_records

    prompts = [_p("1+1?"), _p(LONG), _p("2+2?")]
    model = ModelConfig(name="tiny", path=str(tiny_lm), n=2, sampling=SamplingParams(max_tokens=4, seed=0))
    rd = tmp_path / "round_1"
    summary = sample_stage(prompts, [model], rd / "candidates", samplers={"tiny": tiny_vllm}, progress=False)
    assert summary["candidates"] == 6 and summary["models"]["tiny"]["errors"] == 2
    assert summary["models"]["tiny"]["error_example"].startswith(f"prompt {prompts[1].id}: rejected by vLLM")
    cands = list(read_records(rd / "candidates", Candidate))
    assert sorted(c.id for c in cands if item_error(c)) == [f"{prompts[1].id}/tiny/{i}" for i in range(2)]
    out = export_stage(prompts, rd / "candidates", None, rd, SelectionConfig("random", {"k": 1}),
                       ExportConfig(args={"filters": {"drop_truncated": False}}), set(), progress=False)
    assert out["candidates"]["filtered"] == {"sampling_error": 2}
    assert out["exports"]["sft"]["rows"] == 2 and out["no_pass"]["prompt_ids"] == [prompts[1].id]


@pytest.mark.slow
def test_complete_continues_raw_text_and_reports_a_rejected_text(tiny_vllm):
    rows = tiny_vllm.complete(["<|im_start|>user\n", LONG], SamplingParams(n=3, temperature=0.0, max_tokens=5))
    assert len(rows) == 2 and [len(r) for r in rows] == [3, 3]
    first = rows[0]
    assert all(isinstance(c, Candidate) and c.prompt_id == "" and c.num_tokens <= 5 for c in first)
    assert len({c.text for c in first}) == 1, "greedy: n copies of one continuation"
    assert all(item_error(c) is not None for c in rows[1])


@pytest.mark.slow
def test_llm_judge_records_a_rejected_request_as_that_verdicts_error(tiny_vllm):
    from thresher.judges.llm_judge import llm_judge

    prompt = _p("What is 2+2?")
    cands = [Candidate(prompt.id, "m", 0, "4"), Candidate(prompt.id, "m", 1, LONG), Candidate(prompt.id, "m", 2, "5")]
    judge = llm_judge("unused", sampler=tiny_vllm, max_tokens=8)
    (verdicts,) = judge.judge([prompt], [cands])
    assert verdicts[1].error.startswith("judge request rejected: rejected by vLLM")
    for v in (verdicts[0], verdicts[2]):  # a random model's output does not parse: their own, different error
        assert v.error is None or v.error.startswith("unparseable judge output")


@pytest.mark.slow
def test_synthesis_records_a_rejected_request_and_goes_on(tiny_vllm):
    from thresher.prompts.backtranslation import BacktranslationConfig, backtranslate
    from thresher.prompts.filters import TextFilter

    short = "To reset the router, hold the recessed button on the back for ten seconds until the lights blink."
    result = backtranslate(tiny_vllm, [short, LONG], "support", SamplingParams(temperature=0.0, max_tokens=8),
                           BacktranslationConfig(filter=TextFilter(min_words=1, max_words=1000, min_letters=0.0),
                                                 max_response_chars=20000))
    failed = [r for r in result.rejected if r.reason == "request_failed"]
    assert len(failed) == 1 and LONG.strip() in failed[0].text and "rejected by vLLM" in failed[0].detail["error"]
    assert result.requests >= 2 and result.reasons()["request_failed"] == 1


@pytest.fixture
def server():
    def reply(text: str, body: dict) -> tuple[int, str]:  # echoes the tail; over 1000 characters is refused
        if len(text) > 1000:
            return 400, f"prompt has {len(text)} tokens, the limit is 1000"
        return 200, f"<{text[-3:]}>"

    with FakeOpenAIServer(reply) as s:
        yield s


def test_openai_complete_sends_raw_text_and_a_refused_request_is_that_items_error(server):
    from thresher.sampling.openai_backend import OpenAISampler

    sampler = OpenAISampler(server.url, "m", "served", max_retries=0)
    rows = sampler.complete(["<|im_start|>user\n", "x" * 2000, "abc"], SamplingParams(n=2, temperature=1.0, max_tokens=4))
    assert [[c.text for c in r] for r in (rows[0], rows[2])] == [["<er\n>"] * 2, ["<abc>"] * 2]
    assert all(c.prompt_id == "" and item_error(c) is None for c in rows[0] + rows[2])
    assert [item_error(c) for c in rows[1]] == ["HTTP 400: prompt has 2000 tokens, the limit is 1000"] * 2
    raw = [b for b in server.bodies if b["prompt"] == "abc"]
    assert len(raw) == 2 and all(b["add_special_tokens"] is False and "messages" not in b for b in raw)

    chats = sampler.sample([_p("2+2?"), _p("y" * 2000)], SamplingParams(n=1, max_tokens=4))
    assert chats[0][0].text == "<+2?>" and item_error(chats[0][0]) is None
    assert chats[1][0].finish_reason == ERROR and chats[1][0].prompt_id == _p("y" * 2000).id
