"""Reward-model judge: any `AutoModelForSequenceClassification` scoring (prompt, candidate) chats.

Each candidate is formatted exactly as TRL's RewardTrainer formats a
training pair: the prompt's messages plus the candidate as the assistant
turn, through the model's own chat template, tokenized with no extra special
tokens (`chat_inputs.ChatFormatter`: one rendering per prompt, one batched
tokenizer call). Scoring is batched over length-sorted inputs (little
padding, so batches are cheap) with right padding, as the trainer's collator
pads: a causal model then scores each sequence exactly as alone, at its last
real token, which is where transformers' sequence-classification heads pool
(the rightmost token that is not the pad id) in training and here alike.
Scores equal one-at-a-time scoring to ~1e-5 in float32.

An input longer than `max_length` is a `Verdict.error` unless `truncate` is
set: a reward model that never saw the end of an answer has no business
scoring it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thresher.errors import UserError
from thresher.judges.base import check_shapes, unflatten
from thresher.judges.chat_inputs import ChatFormatter, length_sorted_batches, right_pad
from thresher.judges.devices import device_and_dtype
from thresher.records import Candidate, Prompt, Verdict
from thresher.typed import PositiveInt


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
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if batch_size < 1:
            raise UserError(f"reward model {model}: batch_size must be at least 1, got {batch_size}")
        self.name = name
        self.path = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.truncate = truncate
        self.device, torch_dtype = device_and_dtype(f"reward model {model}", device, dtype)
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
        self.formatter = ChatFormatter(self.tokenizer)

    def encode(self, prompt: Prompt, candidate: Candidate) -> list[int]:
        """Token ids of the chat (prompt messages + the candidate as assistant), untruncated."""
        return self.formatter.encode_pairs([prompt], [[candidate.text]])[0]

    def score_ids(self, ids: Sequence[list[int]], batch_size: int | None = None) -> list[float]:
        """Scores for token sequences, in input order; batches are formed over length-sorted sequences."""
        import torch

        scores: list[float] = [0.0] * len(ids)
        pad_id = self.model.config.pad_token_id
        with torch.inference_mode():
            for chunk in length_sorted_batches([len(x) for x in ids], batch_size or self.batch_size):
                input_ids, mask = right_pad([ids[i] for i in chunk], pad_id)
                logits = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False
                ).logits
                for i, s in zip(chunk, logits[:, 0].float().tolist()):
                    scores[i] = s
        return scores

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        flat = [c for cs in candidates for c in cs]
        encoded = self.formatter.encode_pairs(prompts, [[c.text for c in cs] for cs in candidates])
        verdicts: list[Verdict | None] = [None] * len(flat)
        todo, ids = [], []
        for k, (c, seq) in enumerate(zip(flat, encoded)):
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
        for (k, c, meta), score in zip(todo, self.score_ids(ids) if ids else []):
            verdicts[k] = Verdict(c.id, self.name, score=score, metadata=meta)
        return unflatten(verdicts, candidates)  # type: ignore[arg-type]

    def close(self) -> None:
        """Free the model (and its GPU memory) so a sampler can use the device next."""
        from thresher.sampling.common import release_torch_memory

        self.model = None  # type: ignore[assignment]
        release_torch_memory()


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
