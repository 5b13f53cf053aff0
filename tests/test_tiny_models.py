"""The tiny models load through transformers like real ones, in seconds, with no download."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from thresher.tiny_models import build_tokenizer


def test_tokenizer_is_byte_level_with_chatml_and_generation_mask():
    tok = build_tokenizer()
    text = "What is 12 + 30? 答案是42"
    assert tok.decode(tok(text)["input_ids"]) == text
    out = tok.apply_chat_template(
        [{"role": "user", "content": "2+3?"}, {"role": "assistant", "content": "5"}],
        return_dict=True, return_assistant_tokens_mask=True,
    )
    answer = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(answer) == "5<|im_end|>"
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_causal_lm_generates_and_stops_at_eos(tiny_lm):
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    assert model.config.architectures == ["Qwen2ForCausalLM"]
    assert sum(p.numel() for p in model.parameters()) < 200_000
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] <= ids["input_ids"].shape[1] + 5
    assert model.generation_config.eos_token_id == tok.eos_token_id


def test_reward_model_scores_padded_batches_like_single_texts(tiny_rm):
    tok = AutoTokenizer.from_pretrained(tiny_rm)
    tok.padding_side = "right"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_rm).eval()
    texts = ["short", "a much longer text than the first one"]
    with torch.no_grad():
        batch = model(**tok(texts, return_tensors="pt", padding=True)).logits[:, 0]
        single = torch.stack([model(**tok([t], return_tensors="pt")).logits[0, 0] for t in texts])
    assert torch.allclose(batch, single, atol=1e-5)
