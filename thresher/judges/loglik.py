"""Likelihood judge: a causal LM's log-probability of each candidate given its prompt.

Whoever has a policy has this judge at hand. A teacher's log-likelihood of an
answer is a strong signal of whether the answer is right where the teacher
is strong (on the quickstart it picks a right answer far more often than a
sequence-classifier reward model trained on a few thousand pairs, which is
why the quickstart's reward model is scored by this judge: the teacher
trained on those pairs, its mean log-probability per answer token as the
reward, as in SimPO and ORPO), and with a `reference` model
the score is DPO's implicit reward, log pi(y|x) - log pi_ref(y|x) summed over
the answer's tokens (beta = 1), which ranks candidates the way a DPO-trained
policy prefers them.

The answer's tokens are those of the full chat (prompt messages + the
candidate as the assistant turn, through the model's chat template) after
the rendered prompt, end-of-turn tokens included: the same split TRL's DPO
trainer makes, so the implicit reward here is the one DPO optimised.

Score: the mean log-probability per answer token (`score: mean`, the default
without a reference: long answers are not punished for being long) or the
total (`score: total`, the default with a reference). Both, and the token
count, are in each verdict's metadata. Inputs are length-sorted and
right-padded, one forward pass per batch; only the logits of answer
positions are kept. An input longer than `max_length` is that verdict's
error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from thresher.errors import UserError
from thresher.judges.base import check_shapes, unflatten
from thresher.judges.chat_inputs import ChatFormatter, length_sorted_batches, right_pad
from thresher.judges.devices import device_and_dtype
from thresher.records import Candidate, Prompt, Verdict
from thresher.typed import PositiveInt

_PROBE = "What is 12 + 30? 答案是42。"
"""Text both tokenizers must split alike before a reference model is accepted."""


def _load_lm(path: str, device: str, dtype: Any) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as e:
        raise UserError(f"likelihood judge: cannot load causal LM {path} ({str(e).splitlines()[0]})") from None
    return model.to(device).eval()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if list(a[:n]) == list(b[:n]):
        return n
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class LoglikJudge:
    """Scores candidates by a causal LM's log-probability of them (or a policy/reference log-ratio)."""

    kind = "reward"

    def __init__(
        self,
        model: str,
        reference: str | None = None,
        score: Literal["mean", "total"] | None = None,
        batch_size: int = 16,
        max_length: int = 2048,
        device: str | None = None,
        dtype: str | None = None,
        name: str = "loglik",
    ):
        from thresher.sampling.common import load_chat_tokenizer

        if batch_size < 1:
            raise UserError(f"likelihood judge {model}: batch_size must be at least 1, got {batch_size}")
        self.name = name
        self.path = model
        self.reference_path = reference
        self.score_kind = score or ("total" if reference else "mean")
        self.batch_size = batch_size
        self.max_length = max_length
        self.device, torch_dtype = device_and_dtype(f"likelihood judge {model}", device, dtype)
        self.tokenizer = load_chat_tokenizer(model)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.formatter = ChatFormatter(self.tokenizer)
        self.model = _load_lm(model, self.device, torch_dtype)
        self.reference = None
        if reference is not None:
            ref_tokenizer = load_chat_tokenizer(reference)
            if len(ref_tokenizer) != len(self.tokenizer) or ref_tokenizer(_PROBE)["input_ids"] != self.tokenizer(
                _PROBE
            )["input_ids"]:
                raise UserError(
                    f"likelihood judge: reference {reference} does not share the tokenizer of {model}; "
                    "a log-ratio needs both models to read the same tokens"
                )
            self.reference = _load_lm(reference, self.device, torch_dtype)

    def encode(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[tuple[list[int], int]]:
        """(token ids of the full chat, index of the answer's first token) per candidate, flattened in order."""
        heads = self.formatter.encode([self.formatter.prompt_text(p) for p in prompts])
        fulls = self.formatter.encode_pairs(prompts, [[c.text for c in cs] for cs in candidates])
        flat_heads = [head for head, cs in zip(heads, candidates) for _ in cs]
        starts = [_common_prefix(head, full) for head, full in zip(flat_heads, fulls)]
        return list(zip(fulls, starts))

    def logprobs(self, model: Any, inputs: Sequence[tuple[list[int], int]], batch_size: int | None = None) -> list[list[float]]:
        """Per-token log-probabilities of each input's answer tokens under `model`, in input order."""
        import torch

        out: list[list[float]] = [[] for _ in inputs]
        pad_id = self.tokenizer.pad_token_id
        with torch.inference_mode():
            for chunk in length_sorted_batches([len(ids) for ids, _ in inputs], batch_size or self.batch_size):
                ids, mask = right_pad([inputs[i][0] for i in chunk], pad_id)
                width = ids.shape[1]
                # Logits only from the earliest answer position on: the prompt's logits are never read.
                first = min(inputs[i][1] for i in chunk)
                keep = width - first + 1
                logits = model(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False,
                    logits_to_keep=keep,
                ).logits
                offset = width - logits.shape[1]  # logits[:, j] predicts the token at position offset + j + 1
                for row, i in enumerate(chunk):
                    seq, start = inputs[i]
                    targets = torch.as_tensor(seq[start:], device=logits.device)
                    pred = logits[row, start - 1 - offset : len(seq) - 1 - offset].float().log_softmax(-1)
                    out[i] = pred.gather(-1, targets[:, None])[:, 0].tolist()
        return out

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        flat = [c for cs in candidates for c in cs]
        encoded = self.encode(prompts, candidates)
        verdicts: list[Verdict | None] = [None] * len(flat)
        todo = []
        for k, (c, (ids, start)) in enumerate(zip(flat, encoded)):
            if len(ids) > self.max_length:
                error = f"input is {len(ids)} tokens, longer than max_length {self.max_length}"
            elif start >= len(ids) or start == 0:
                error = "the chat template leaves no answer tokens to score"
            else:
                todo.append(k)
                continue
            verdicts[k] = Verdict(c.id, self.name, error=error, metadata={"tokens": len(ids) - start})
        inputs = [encoded[k] for k in todo]
        policy = self.logprobs(self.model, inputs) if inputs else []
        reference = self.logprobs(self.reference, inputs) if inputs and self.reference is not None else None
        for n, k in enumerate(todo):
            lp = policy[n]
            meta: dict[str, Any] = {"tokens": len(lp), "logprob": sum(lp), "logprob_per_token": sum(lp) / len(lp)}
            values = lp
            if reference is not None:
                meta["ref_logprob"] = sum(reference[n])
                values = [a - b for a, b in zip(lp, reference[n])]
                meta["log_ratio"] = sum(values)
            score = sum(values) if self.score_kind == "total" else sum(values) / len(values)
            verdicts[k] = Verdict(flat[k].id, self.name, score=score, metadata=meta)
        return unflatten(verdicts, candidates)  # type: ignore[arg-type]

    def close(self) -> None:
        """Free the models (and their GPU memory) so a sampler can use the device next."""
        from thresher.sampling.common import release_torch_memory

        self.model = None
        self.reference = None
        release_torch_memory()


def loglik_judge(
    model: str,
    reference: str | None = None,
    score: Literal["mean", "total"] | None = None,
    batch_size: PositiveInt = 16,
    max_length: PositiveInt = 2048,
    device: str | None = None,
    dtype: str | None = None,
    name: str = "loglik",
) -> LoglikJudge:
    """Log-likelihood of each candidate under the causal LM at `model`; with `reference`, DPO's implicit reward.

    `score`: `mean` (per answer token; the default without a reference) or
    `total` (the default with one: the summed log-ratio).
    """
    return LoglikJudge(model, reference, score, batch_size, max_length, device, dtype, name)
