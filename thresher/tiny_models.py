"""Tiny real models built from a config, with no download.

Tests and the quickstart need causal LMs and reward models that load through
the same code paths as real ones (transformers, vLLM, TRL) but build in
seconds on a CPU. These are Qwen2-architecture models with random weights and
a byte-level tokenizer made with `tokenizers`: every UTF-8 text (Chinese
included) encodes without unknown tokens, and the ChatML chat template marks
assistant turns with `{% generation %}` so TRL can train on answers only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|im_start|>assistant\n{% generation %}{{ message['content'] }}<|im_end|>{% endgeneration %}\n"
    "{% else %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML, as Qwen models use it; generation tags let TRL mask everything but answers."""


def as_chatml_tokenizer(tok: Any) -> Any:
    """Wrap a `tokenizers.Tokenizer` holding the ChatML specials as a transformers tokenizer with the template.

    eos is `<|im_end|>` (so generation stops at the end of a turn), pad is
    `<|endoftext|>`, and padding is on the left, as batched generation wants.
    """
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        model_max_length=2048,
        padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tokenizer(out_dir: str | Path | None = None) -> Any:
    """A byte-level tokenizer with no merges (one token per byte) plus ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIAL_TOKENS)
    fast = as_chatml_tokenizer(tok)
    if out_dir is not None:
        fast.save_pretrained(str(out_dir))
    return fast


def tiny_qwen2_config(vocab_size: int, **overrides: Any) -> Any:
    """A Qwen2 config small enough to train on a laptop CPU; head_dim 32 suits vLLM's CPU kernels."""
    from transformers import Qwen2Config

    kwargs: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        rope_theta=10000.0,
    )
    kwargs.update(overrides)
    return Qwen2Config(**kwargs)


def _save(model: Any, tokenizer: Any, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def build_causal_lm(out_dir: str | Path, seed: int = 0, **config_overrides: Any) -> Path:
    """Build and save a tiny random Qwen2ForCausalLM with its tokenizer; returns the directory."""
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    tokenizer = build_tokenizer()
    config = tiny_qwen2_config(len(tokenizer), **config_overrides)
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.bos_token_id = None
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return _save(model, tokenizer, Path(out_dir))


def build_reward_model(out_dir: str | Path, seed: int = 0, **config_overrides: Any) -> Path:
    """Build and save a tiny random Qwen2ForSequenceClassification (one score per text)."""
    import torch
    from transformers import Qwen2ForSequenceClassification

    tokenizer = build_tokenizer()
    config = tiny_qwen2_config(len(tokenizer), num_labels=1, **config_overrides)
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(seed)
    model = Qwen2ForSequenceClassification(config)
    return _save(model, tokenizer, Path(out_dir))


def describe(path: str | Path) -> dict[str, Any]:
    """Architecture and size of a saved tiny model, for logs and reports."""
    cfg = json.loads((Path(path) / "config.json").read_text())
    return {k: cfg.get(k) for k in ("architectures", "hidden_size", "num_hidden_layers", "vocab_size")}
