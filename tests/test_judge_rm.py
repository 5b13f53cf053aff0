"""Reward-model judge on a tiny real Qwen2ForSequenceClassification: batched scores equal one-at-a-time scores."""

from __future__ import annotations

import random

import pytest
import torch

from thresher.errors import UserError
from thresher.judges.reward_model import reward_model
from thresher.records import Candidate, Prompt


@pytest.fixture(scope="module")
def rm(tiny_rm):
    return reward_model(str(tiny_rm), batch_size=8, max_length=512)


def _data(n_prompts: int = 6, per: int = 3, seed: int = 0):
    rng = random.Random(seed)
    prompts = [
        Prompt.create("t", [{"role": "user", "content": f"q{i} " + "word " * rng.randint(1, 30)}])
        for i in range(n_prompts)
    ]
    cands = [[Candidate(p.id, "m", k, "answer " * rng.randint(1, 40) + "终") for k in range(per)] for p in prompts]
    return prompts, cands


def test_batched_scores_equal_one_at_a_time(rm):
    prompts, cands = _data()
    batched = rm.judge(prompts, cands)
    assert [[v.candidate_id for v in row] for row in batched] == [[c.id for c in row] for row in cands]
    flat = [v.score for row in batched for v in row]
    ids = [rm.encode(p, c) for p, row in zip(prompts, cands) for c in row]
    single = rm.score_ids(ids, batch_size=1)
    assert len({len(x) for x in ids}) > 5  # lengths really differ, so batches really pad
    assert max(abs(a - b) for a, b in zip(flat, single)) < 1e-4
    assert all(v.ok and v.correct is None and v.judge == "rm" for row in batched for v in row)
    assert batched[0][0].metadata["tokens"] == len(ids[0])


def test_input_is_the_chat_template_with_the_candidate_as_assistant(rm):
    prompts, cands = _data(1, 1)
    text = rm.tokenizer.decode(rm.encode(prompts[0], cands[0][0]))
    assert text.startswith(f"<|im_start|>user\n{prompts[0].messages[0]['content']}<|im_end|>\n")
    assert text.endswith(f"<|im_start|>assistant\n{cands[0][0].text}<|im_end|>")


def test_score_is_taken_at_the_last_real_token_of_right_padded_batches(rm):
    """The model's own pooling on a right-padded batch equals a manual read of the last real position."""
    prompts, cands = _data(2, 2, seed=3)
    ids = [rm.encode(p, c) for p, row in zip(prompts, cands) for c in row]
    batch = rm.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
    assert rm.tokenizer.padding_side == "right"
    with torch.inference_mode():
        pooled = rm.model(**batch).logits[:, 0]
        hidden = rm.model.model(**batch).last_hidden_state
        per_token = rm.model.score(hidden)[..., 0]
    last = batch["attention_mask"].sum(dim=1) - 1
    manual = per_token[torch.arange(len(ids)), last]
    assert torch.allclose(pooled, manual, atol=1e-6)


def test_too_long_input_is_an_error_unless_truncation_is_asked(tiny_rm):
    prompts, cands = _data(1, 2)
    cands[0][0] = Candidate(prompts[0].id, "m", 0, "short")
    cands[0][1] = Candidate(prompts[0].id, "m", 1, "x" * 600)
    strict = reward_model(str(tiny_rm), max_length=300)
    short, long = strict.judge(prompts, cands)[0]
    assert short.ok and short.score is not None
    assert long.score is None and long.error.startswith("input is ") and "max_length 300" in long.error
    lenient = reward_model(str(tiny_rm), max_length=300, truncate=True)
    _, cut = lenient.judge(prompts, cands)[0]
    assert cut.ok and cut.metadata["truncated"] is True and cut.score is not None


def test_bad_model_path_and_dtype_are_user_errors(tmp_path, tiny_rm):
    with pytest.raises(UserError, match="cannot load"):
        reward_model(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="dtype 'float99'"):
        reward_model(str(tiny_rm), dtype="float99")


TRIMMING = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{% endfor %}"
)
"""A template that edits answers (strips them): splicing the answer into one rendering would be wrong."""
QWEN_STYLE = (
    "{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
)


@pytest.mark.parametrize("template", [None, QWEN_STYLE, TRIMMING], ids=["chatml", "qwen-newline", "trimming"])
def test_each_prompt_is_rendered_once_and_inputs_equal_full_renders(tiny_rm, template):
    """Splicing answers into one rendering per prompt gives the template's own text, or is not used."""
    from transformers import AutoTokenizer

    from thresher.judges.chat_inputs import ChatFormatter

    tok = AutoTokenizer.from_pretrained(tiny_rm)
    if template is not None:
        tok.chat_template = template
    fmt = ChatFormatter(tok)
    assert fmt.splices is (template is not TRIMMING)
    prompts, cands = _data(4, 3, seed=5)
    cands[0][0] = Candidate(prompts[0].id, "m", 0, "  padded answer \n")
    calls = 0
    real = tok.apply_chat_template

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    tok.apply_chat_template = counting
    got = fmt.encode_pairs(prompts, [[c.text for c in row] for row in cands])
    assert calls == (len(prompts) if fmt.splices else sum(len(row) for row in cands))
    tok.apply_chat_template = real
    want = [
        tok(real([*p.messages, {"role": "assistant", "content": c.text}], tokenize=False), add_special_tokens=False)[
            "input_ids"
        ]
        for p, row in zip(prompts, cands)
        for c in row
    ]
    assert got == want
