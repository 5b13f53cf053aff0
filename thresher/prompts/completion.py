"""Raw text completion on a chat sampler's own model: what Magpie needs and `Sampler.sample` cannot do.

`Sampler.sample` always wraps messages in the chat template and opens an
assistant turn. Magpie instead feeds the model a template cut off where the
*user's* text would begin, so the model writes a user request. `complete`
runs that raw continuation on the model an existing sampler already holds —
the transformers model, the vLLM engine, or an OpenAI-compatible server's
`/v1/completions` endpoint — so no second copy of the weights is loaded.

The text is encoded without extra special tokens: a rendered template already
carries its BOS, and a second one changes what the model writes.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thresher.errors import UserError
from thresher.sampling.common import cut_at_stop, derive_seed, draws_per_prompt, is_greedy
from thresher.sampling.params import Sampler, SamplingParams


@dataclass(slots=True)
class Completion:
    text: str
    num_tokens: int | None
    finish_reason: str | None
    """"stop" (end of turn, EOS or a stop string) or "length" (cut by max_tokens)."""


def complete(sampler: Sampler, texts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
    """`params.n` continuations of each raw text, in input order, with the sampler's model."""
    if not texts:
        return []
    kind = type(sampler).__name__
    if kind == "HFSampler":
        return _complete_hf(sampler, texts, params)
    if kind == "VLLMSampler":
        return _complete_vllm(sampler, texts, params)
    if kind == "OpenAISampler":
        return _complete_openai(sampler, texts, params)
    raise UserError(f"sampler {sampler.name!r} ({kind}) cannot complete raw text; Magpie needs backend hf, "
                    "vllm, or openai pointed at a server with a /v1/completions endpoint")


def _copies(rows: list[Completion], params: SamplingParams) -> list[Completion]:
    return rows * params.n if is_greedy(params) and len(rows) == 1 else rows


def _complete_hf(sampler: Any, texts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
    import torch

    tokenizer, model = sampler.tokenizer, sampler.model
    config = sampler._generation_config(params)
    if params.seed is not None:
        torch.manual_seed(params.seed)
    draws = draws_per_prompt(params)
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    per_batch = max(1, sampler.batch_size // draws)
    results: list[list[Completion]] = [[] for _ in texts]
    for start in range(0, len(texts), per_batch):
        batch = list(range(start, min(start + per_batch, len(texts))))
        inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
        inputs = {k: v.to(sampler.device) for k, v in inputs.items()}
        with torch.inference_mode():
            out = model.generate(**inputs, generation_config=config, tokenizer=tokenizer if params.stop else None)
        for row, ids in enumerate(out[:, inputs["input_ids"].shape[1] :].tolist()):
            results[batch[row // draws]].append(_hf_completion(sampler, ids, params))
    return [_copies(r, params) for r in results]


def _hf_completion(sampler: Any, ids: list[int], params: SamplingParams) -> Completion:
    end = next((k + 1 for k, t in enumerate(ids) if t in sampler.eos_ids), None)
    if end is None:
        end = len(ids)
        while end > 0 and ids[end - 1] == sampler.pad_id:
            end -= 1
    ids = ids[:end]
    text, stopped = cut_at_stop(sampler.tokenizer.decode(ids, skip_special_tokens=True), params.stop)
    hit_eos = bool(ids) and ids[-1] in sampler.eos_ids
    finish = "stop" if hit_eos or stopped or len(ids) < params.max_tokens else "length"
    return Completion(text, len(ids), finish)


def _complete_vllm(sampler: Any, texts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
    from vllm import SamplingParams as VLLMParams
    from vllm.inputs import TokensPrompt

    requests = [TokensPrompt(prompt_token_ids=sampler.tokenizer(t, add_special_tokens=False)["input_ids"])
                for t in texts]
    request_params = [
        VLLMParams(n=draws_per_prompt(params), temperature=params.temperature, top_p=params.top_p,
                   max_tokens=params.max_tokens, stop=list(params.stop) or None,
                   seed=derive_seed(params.seed, "complete", i))
        for i in range(len(texts))
    ]
    outputs = sampler.llm.generate(requests, request_params, use_tqdm=False)
    return [
        _copies([Completion(o.text, len(o.token_ids), o.finish_reason)
                 for o in sorted(out.outputs, key=lambda o: o.index)], params)
        for out in outputs
    ]


def _complete_openai(sampler: Any, texts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
    import openai

    client = openai.OpenAI(base_url=sampler.base_url, api_key=os.environ.get(sampler.api_key_env) or "EMPTY",
                           max_retries=sampler.max_retries, timeout=sampler.timeout)
    draws = draws_per_prompt(params)

    def one(i: int, j: int) -> Completion:
        kwargs: dict[str, Any] = {
            "model": sampler.model, "prompt": texts[i], "n": 1, "temperature": params.temperature,
            "top_p": params.top_p, "max_tokens": params.max_tokens, "extra_body": {"add_special_tokens": False},
        }
        if params.stop:
            kwargs["stop"] = list(params.stop)
        seed = derive_seed(params.seed, "complete", i, j)
        if seed is not None:
            kwargs["seed"] = seed
        try:
            r = client.completions.create(**kwargs)
        except openai.APIError as e:
            raise UserError(f"OpenAI-compatible server {sampler.base_url}: raw completion for model "
                            f"{sampler.model!r} failed ({e.__class__.__name__}: {e}); Magpie needs a "
                            "/v1/completions endpoint, which vllm serve provides") from None
        usage = r.usage.completion_tokens if r.usage else None
        return Completion(r.choices[0].text, usage, r.choices[0].finish_reason)

    with concurrent.futures.ThreadPoolExecutor(sampler.max_concurrency) as pool:
        futures = [[pool.submit(one, i, j) for j in range(draws)] for i in range(len(texts))]
        try:
            return [_copies([f.result() for f in row], params) for row in futures]
        finally:
            for row in futures:
                for f in row:
                    f.cancel()
            client.close()
