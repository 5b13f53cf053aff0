"""What every local backend shares: checking a model path, the chat template, seeds, greedy copies.

The vLLM and transformers backends both turn a Prompt's messages into model
input the same way — the model's own chat template with
`add_generation_prompt=True`, encoded without extra special tokens — so the
same prompt means the same tokens whichever backend samples it. A tokenizer
without a chat template is an error, not a silent fallback to raw text: a
chat model fed unformatted text answers badly and nobody notices.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from thresher.errors import UserError
from thresher.records import Candidate, Message
from thresher.sampling.params import SamplingParams


def default_model_name(path: str) -> str:
    """A readable model name from a path or hub id: its last component (names must not hold '/')."""
    name = Path(str(path).rstrip("/")).name or str(path)
    return name.replace("/", "_").removeprefix("builtin:") or "model"


def check_model_path(path: str) -> None:
    """Fail early, before an engine starts, when a local model directory is missing."""
    from thresher.config import is_local_path

    if is_local_path(path) and not Path(os.path.expanduser(path)).exists():
        raise UserError(f"model path {path!r} does not exist")


def load_chat_tokenizer(path: str) -> Any:
    """The model's tokenizer, which must carry a chat template (UserError otherwise)."""
    check_model_path(path)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(os.path.expanduser(path))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load the tokenizer of model {path!r}: {str(e).splitlines()[0]}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"model {path!r}: its tokenizer has no chat template; thresher samples chat answers and "
            "needs one (add `chat_template` to tokenizer_config.json or use an instruct model)"
        )
    return tokenizer


def render_chat(tokenizer: Any, messages: list[Message]) -> str:
    """The prompt text up to the start of the assistant's reply."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_chat(tokenizer: Any, messages: list[Message]) -> list[int]:
    """Token ids of the rendered prompt; special tokens come from the template only (no double BOS)."""
    return tokenizer(render_chat(tokenizer, messages), add_special_tokens=False)["input_ids"]


def release_torch_memory() -> None:
    """After a model is dropped: collect it now and hand its GPU memory back, so the next model fits."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def derive_seed(seed: int | None, *parts: object) -> int | None:
    """A 31-bit seed from a base seed and labels (prompt id, ...); None stays None.

    Seeding each prompt from its own id makes a prompt's answers independent of
    which other prompts share its batch, so a resumed run samples the same
    thing a straight run would.
    """
    if seed is None:
        return None
    blob = "\x1f".join([str(seed), *map(str, parts)]).encode("utf-8")
    return int.from_bytes(hashlib.sha1(blob).digest()[:4], "big") & 0x7FFFFFFF


def is_greedy(params: SamplingParams) -> bool:
    return params.temperature == 0


def draws_per_prompt(params: SamplingParams) -> int:
    """Sequences to actually generate: greedy decoding gives one answer, copied n times."""
    return 1 if is_greedy(params) else params.n


def expand_greedy(candidates: list[Candidate], params: SamplingParams) -> list[Candidate]:
    """Fill a greedy prompt's n slots with copies of its one answer (indices 0..n-1)."""
    if not is_greedy(params) or len(candidates) != 1:
        return candidates
    first = candidates[0]
    return [replace(first, index=i, metadata=dict(first.metadata)) for i in range(params.n)]


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Text before the first stop string (which is dropped, as vLLM and OpenAI do), and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if not cuts:
        return text, False
    return text[: min(cuts)], True
