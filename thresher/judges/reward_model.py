"""Reward-model judge: any `AutoModelForSequenceClassification` scoring (prompt, candidate) chats.

Each candidate is formatted with the reward model's own chat template (the
prompt's messages plus the candidate as the assistant turn), so the model sees
what it was trained on. Scoring is batched over length-sorted inputs (little
padding, so batches are cheap) with right padding: a causal model then scores
each sequence exactly as alone, at its last real token, which is where
transformers' sequence-classification heads pool (the rightmost token that is
not the pad id). Scores equal one-at-a-time scoring to ~1e-5 in float32.

An input longer than `max_length` is a `Verdict.error` unless `truncate` is
set: a reward model that never saw the end of an answer has no business
scoring it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thresher.errors import UserError
from thresher.judges.base import check_shapes
from thresher.records import Candidate, Prompt, Verdict
from thresher.typed import PositiveInt


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class RewardModelJudge:
    """Scores candidates with a sequence-classification reward model (one logit per text)."""

    kind = "reward"

    def __init__(
        self,
        model: str,
        batch_size: int = 16,
        max_length: int = 2048,
        device: str | None = None,
        dtype: str | None = None,
        truncate: bool = False,
        name: str = "rm",
    ):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if batch_size < 1:
            raise UserError(f"reward model {model}: batch_size must be at least 1, got {batch_size}")
        self.name = name
        self.path = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.truncate = truncate
        self.device = device or _default_device()
        if dtype is None:
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise UserError(f"reward model {model}: dtype {dtype!r} is not a torch dtype (float32, bfloat16, ...)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForSequenceClassification.from_pretrained(model, dtype=torch_dtype)
        except OSError as e:
            raise UserError(f"reward model {model}: cannot load ({e})") from None
        if self.model.config.num_labels != 1:
            raise UserError(
                f"reward model {model}: has {self.model.config.num_labels} labels; a reward model has exactly one"
            )
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def encode(self, prompt: Prompt, candidate: Candidate) -> list[int]:
        """Token ids of the chat (prompt messages + the candidate as assistant), untruncated."""
        if self.tokenizer.chat_template:
            messages = [*prompt.messages, {"role": "assistant", "content": candidate.text}]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        # Encoder reward models without a chat template (DeBERTa-style) read (question, answer) pairs.
        return self.tokenizer(prompt.question, candidate.text)["input_ids"]

    def score_ids(self, ids: Sequence[list[int]], batch_size: int | None = None) -> list[float]:
        """Scores for token sequences, in input order; batches are formed over length-sorted sequences."""
        import torch

        bs = batch_size or self.batch_size
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        scores: list[float] = [0.0] * len(ids)
        with torch.inference_mode():
            for start in range(0, len(order), bs):
                chunk = order[start : start + bs]
                batch = self.tokenizer.pad(
                    {"input_ids": [ids[i] for i in chunk]}, padding=True, return_tensors="pt"
                ).to(self.device)
                logits = self.model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
                ).logits
                for i, s in zip(chunk, logits[:, 0].float().tolist()):
                    scores[i] = s
        return scores

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        flat = [(p, c) for p, cs in zip(prompts, candidates) for c in cs]
        encoded = [self.encode(p, c) for p, c in flat]
        verdicts: list[Verdict | None] = [None] * len(flat)
        todo, ids = [], []
        for k, ((_, c), seq) in enumerate(zip(flat, encoded)):
            meta: dict[str, Any] = {"tokens": len(seq)}
            if len(seq) > self.max_length:
                if not self.truncate:
                    verdicts[k] = Verdict(
                        c.id,
                        self.name,
                        error=f"input is {len(seq)} tokens, longer than max_length {self.max_length}",
                        metadata=meta,
                    )
                    continue
                seq = seq[-self.max_length :]  # keep the end of the answer, drop the start of the prompt
                meta["truncated"] = True
            todo.append((k, c, meta))
            ids.append(seq)
        for (k, c, meta), score in zip(todo, self.score_ids(ids)):
            verdicts[k] = Verdict(c.id, self.name, score=score, metadata=meta)
        out, i = [], 0
        for cs in candidates:
            out.append(verdicts[i : i + len(cs)])
            i += len(cs)
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Free the model (and its GPU memory) so a sampler can use the device next."""
        import gc

        import torch

        self.model = None  # type: ignore[assignment]
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def reward_model(
    model: str,
    batch_size: PositiveInt = 16,
    max_length: PositiveInt = 2048,
    device: str | None = None,
    dtype: str | None = None,
    truncate: bool = False,
    name: str = "rm",
) -> RewardModelJudge:
    """A reward model at `model` (directory or hub id); bf16 on GPU, float32 on CPU unless `dtype` says."""
    return RewardModelJudge(model, batch_size, max_length, device, dtype, truncate, name)
