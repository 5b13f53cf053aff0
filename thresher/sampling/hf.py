"""The transformers backend: batched `generate` for models or machines vLLM does not serve.

What makes it fast compared with the usual best-of-N loop (one `generate`
per prompt): prompts are sorted by length and grouped into batches, so little
compute goes to padding; each batch is left-padded (decoder-only models
continue from the right edge) and decodes all n answers of all its prompts
together; and a prompt's prefill runs once, its KV cache shared by its n
answers, where `num_return_sequences=n` would compute it n times. Device and
dtype come from accelerate and the checkpoint unless given.

Seeding: each answer draws from its own random stream, seeded from the base
seed, the prompt id (a raw completion: its position in the call, as with
vLLM) and the answer's index (`hf_seeded.py`), so a prompt's answers do not depend on which prompts share its batch or chunk: a resumed
stage or a cluster's replicas sample what one straight run would. Without a
seed, a base seed is drawn from torch's generator.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

import torch
from accelerate import PartialState
from transformers import AutoModelForCausalLM, GenerationConfig, StoppingCriteria

from thresher.errors import UserError
from thresher.records import Candidate, Prompt
from thresher.sampling.common import (
    cut_at_stop,
    default_model_name,
    derive_seed,
    draws_per_prompt,
    encode_chat,
    expand_greedy,
    is_greedy,
    load_chat_tokenizer,
    release_torch_memory,
)
from thresher.sampling.hf_seeded import SeededSampling
from thresher.sampling.params import SamplingParams


class HFSampler:
    """Samples with `transformers` `generate`; `batch_size` counts sequences (prompts x n) per call."""

    def __init__(
        self,
        path: str,
        name: str | None = None,
        *,
        batch_size: int = 32,
        device: Any = None,
        dtype: Any = None,
    ):
        if batch_size < 1:
            raise UserError(f"batch_size: must be at least 1, got {batch_size}")
        self.path = path
        self.name = name or default_model_name(path)
        self.batch_size = batch_size
        self.tokenizer = load_chat_tokenizer(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

        self.device = torch.device(device) if device is not None else PartialState().device
        if isinstance(dtype, str) and dtype != "auto":
            dtype = getattr(torch, dtype)
        try:
            model = AutoModelForCausalLM.from_pretrained(os.path.expanduser(path), dtype=dtype or "auto")
        except (OSError, ValueError) as e:
            raise UserError(f"cannot load model {path!r}: {str(e).splitlines()[0]}") from None
        self.model = model.to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.pad_id = self.tokenizer.pad_token_id
        takes_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._last_logits_only = {"logits_to_keep": 1} if takes_keep else {}

    def _generation_config(self, params: SamplingParams) -> Any:
        # A fresh config: the checkpoint's own sampling defaults (top_k=20, repetition
        # penalties) must not leak in, so params mean what they mean on vLLM. Decoding is
        # greedy over what `SeededSampling` leaves: it does the sampling, one stream per answer.
        return GenerationConfig(
            max_new_tokens=params.max_tokens,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.pad_id,
            do_sample=False,
        )

    def sample(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Candidate]]:
        encoded = [encode_chat(self.tokenizer, p.messages) for p in prompts]
        ids = [p.id for p in prompts]
        return self._run(encoded, ids, params, ids)

    def complete(self, texts: Sequence[str], params: SamplingParams) -> list[list[Candidate]]:
        """Raw continuations of `texts`, encoded without extra special tokens (a rendered template has its BOS)."""
        encoded = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        # Seeded by position, as the vLLM backend does: repeats of one text in a call (Magpie's prefix) differ.
        return self._run(encoded, [""] * len(texts), params, [f"complete\x1f{i}" for i in range(len(texts))])

    def _run(
        self, encoded: list[list[int]], prompt_ids: list[str], params: SamplingParams, seed_keys: list[str]
    ) -> list[list[Candidate]]:
        if not encoded:
            return []
        base_seed = params.seed if params.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        config = self._generation_config(params)
        draws = draws_per_prompt(params)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))  # longest first: OOM shows early
        per_batch = max(1, self.batch_size // draws)
        results: list[list[Candidate]] = [[] for _ in encoded]
        for start in range(0, len(order), per_batch):
            batch = order[start : start + per_batch]
            inputs = self.tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            prompt_len = inputs["input_ids"].shape[1]
            stopping = [StopInAnswer(self.tokenizer, params.stop, prompt_len)] if params.stop else None
            sampling = None
            if not is_greedy(params):
                seeds = [derive_seed(base_seed, seed_keys[i], d) for i in batch for d in range(draws)]
                sampling = [SeededSampling(seeds, prompt_len, params.temperature, params.top_p)]
            with torch.inference_mode():
                out = self._generate(inputs["input_ids"], inputs["attention_mask"], draws, config, stopping, sampling)
            generated = out[:, prompt_len:].tolist()
            for row, ids in enumerate(generated):
                i = batch[row // draws]
                results[i].append(self._candidate(prompt_ids[i], len(results[i]), ids, params))
        return [expand_greedy(c, params) for c in results]

    def _generate(
        self, ids: torch.Tensor, mask: torch.Tensor, draws: int, config: Any, stopping: Any, sampling: Any
    ) -> Any:
        """`generate` with n answers per prompt, the prompt's prefill computed once and shared by all n.

        `num_return_sequences=n` would copy each prompt n times before the
        prefill; here the prompt (all but its last token) runs once, its KV
        cache is repeated n times, and generation continues from it.
        """
        if draws == 1 or ids.shape[1] < 2:
            return self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                stopping_criteria=stopping,
                logits_processor=sampling,
            )
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as generate derives them
        prefill = self.model(
            input_ids=ids[:, :-1],
            attention_mask=mask[:, :-1],
            position_ids=positions[:, :-1],
            use_cache=True,
            **self._last_logits_only,
        )
        cache = prefill.past_key_values
        cache.batch_repeat_interleave(draws)
        return self.model.generate(
            input_ids=ids.repeat_interleave(draws, dim=0),
            attention_mask=mask.repeat_interleave(draws, dim=0),
            past_key_values=cache,
            generation_config=config,
            stopping_criteria=stopping,
            logits_processor=sampling,
        )

    def _candidate(self, prompt_id: str, index: int, ids: list[int], params: SamplingParams) -> Candidate:
        end = next((k + 1 for k, t in enumerate(ids) if t in self.eos_ids), None)
        if end is None:  # no EOS: cut the padding a finished (stop string) row was filled with
            end = len(ids)
            if self.pad_id is not None:
                while end > 0 and ids[end - 1] == self.pad_id:
                    end -= 1
        ids = ids[:end]
        text, stopped = cut_at_stop(self._decode(ids), params.stop)
        if stopped:  # count the tokens up to the one that completed the stop string, as vLLM does
            lo, hi = 1, len(ids)
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if cut_at_stop(self._decode(ids[:mid]), params.stop)[1] else (mid + 1, hi)
            ids = ids[:lo]
        hit_eos = bool(ids) and ids[-1] in self.eos_ids
        finish = "stop" if hit_eos or stopped or len(ids) < params.max_tokens else "length"
        return Candidate(prompt_id, self.name, index, text, num_tokens=len(ids), finish_reason=finish)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def close(self) -> None:
        """Free the model's memory (the stage calls this before loading the next model)."""
        self.model = None
        release_torch_memory()


class StopInAnswer(StoppingCriteria):
    """Ends a row once its answer (not prompt + answer) holds a stop string.

    transformers' own `stop_strings` also match across the end of the prompt:
    a ChatML prompt ends in a newline, so stop="\\n\\n" fired on the answer's
    first newline. Only a window of recent answer tokens is decoded per step,
    wide enough for the longest stop string even at one byte per token.
    """

    def __init__(self, tokenizer: Any, stop: list[str], prompt_len: int):
        self.tokenizer = tokenizer
        self.stop = stop
        self.prompt_len = prompt_len
        self.window = 4 * max(len(s) for s in stop) + 4

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        start = max(self.prompt_len, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        return torch.tensor([cut_at_stop(t, self.stop)[1] for t in tails], device=input_ids.device)
