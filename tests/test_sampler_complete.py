"""Raw completion on every backend, and a request the backend rejects is that item's error, not a crash.

Runs on the session's real tiny vLLM engine (`tiny_vllm`, max_model_len 1024):
one prompt longer than the model's context among short ones comes back as
that item's error candidates while the others are answered, in the sampler,
in the LLM judge (a `Verdict.error`) and in prompt synthesis (a rejected
text with reason `request_failed`).
"""

from __future__ import annotations

import pytest

from thresher.errors import UserError
from thresher.records import Candidate, Prompt
from thresher.sampling.params import ERROR, SamplingParams, item_error, raise_item_errors

pytestmark = pytest.mark.slow

LONG = "tax " * 3000
"""Far more tokens than the tiny model's 1024-token context."""


def _p(text: str) -> Prompt:
    return Prompt.create("t", [{"role": "user", "content": text}])


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


def test_complete_continues_raw_text_and_reports_a_rejected_text(tiny_vllm):
    rows = tiny_vllm.complete(["<|im_start|>user\n", LONG], SamplingParams(n=3, temperature=0.0, max_tokens=5))
    assert len(rows) == 2 and [len(r) for r in rows] == [3, 3]
    first = rows[0]
    assert all(isinstance(c, Candidate) and c.prompt_id == "" and c.num_tokens <= 5 for c in first)
    assert len({c.text for c in first}) == 1, "greedy: n copies of one continuation"
    assert all(item_error(c) is not None for c in rows[1])


def test_llm_judge_records_a_rejected_request_as_that_verdicts_error(tiny_vllm):
    from thresher.judges.llm_judge import llm_judge

    prompt = _p("What is 2+2?")
    cands = [Candidate(prompt.id, "m", 0, "4"), Candidate(prompt.id, "m", 1, LONG), Candidate(prompt.id, "m", 2, "5")]
    judge = llm_judge("unused", sampler=tiny_vllm, max_tokens=8)
    (verdicts,) = judge.judge([prompt], [cands])
    assert verdicts[1].error.startswith("judge request rejected: rejected by vLLM")
    for v in (verdicts[0], verdicts[2]):  # a random model's output does not parse: their own, different error
        assert v.error is None or v.error.startswith("unparseable judge output")


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
