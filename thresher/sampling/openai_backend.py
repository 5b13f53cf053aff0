"""The OpenAI-compatible backend: any chat-completions server (a hosted teacher, or `vllm serve`).

Requests run concurrently on asyncio with at most `max_concurrency` in
flight. Retries with exponential backoff (honouring `Retry-After`) on 429,
5xx, connection errors and timeouts are the `openai` client's own; thresher
sets how many. When they run out the call fails with a UserError naming the
server and the status: the stage stops, and running it again resumes. A
request the server refuses on its own merits (400, 413, 422: a prompt longer
than the model's context) is that item's error candidate instead.

Each candidate is its own request with `n=1`. That costs the prompt once per
candidate, but every server speaks it (many compatible servers reject n > 1),
and each answer gets its exact token usage, recorded in `metadata["usage"]`
and as `num_tokens`. The server applies the chat template; thresher sends the
messages as they are. The API key is read from the environment variable
`api_key_env`; a local server needs none. `complete` sends raw text to the
`/v1/completions` endpoint for methods that write their own template.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Sequence
from typing import Any

from thresher.errors import UserError
from thresher.records import Candidate, Prompt
from thresher.sampling.common import derive_seed, draws_per_prompt, expand_greedy
from thresher.sampling.params import SamplingParams, failed


class OpenAISampler:
    """Samples from an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        name: str | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 16,
        max_retries: int = 5,
        timeout: float = 600.0,
    ):
        if max_concurrency < 1:
            raise UserError(f"max_concurrency: must be at least 1, got {max_concurrency}")
        self.base_url = base_url
        self.model = model
        self.name = name or model.replace("/", "_")
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout = timeout

    def sample(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Candidate]]:
        if not prompts:
            return []
        return _run_sync(self._all(len(prompts), params, lambda c, i, j: self._chat(c, prompts[i], j, params)))

    def complete(self, texts: Sequence[str], params: SamplingParams) -> list[list[Candidate]]:
        """Raw continuations from the server's `/v1/completions` endpoint (`vllm serve` has one)."""
        if not texts:
            return []
        return _run_sync(self._all(len(texts), params, lambda c, i, j: self._completion(c, texts[i], i, j, params)))

    async def _all(self, count: int, params: SamplingParams, one: Any) -> list[list[Candidate]]:
        """`one(client, i, j)` for every item i and draw j, at most `max_concurrency` in flight; rows in input order."""
        import openai

        client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=os.environ.get(self.api_key_env) or "EMPTY",
            max_retries=self.max_retries,
            timeout=self.timeout,
        )
        limit = asyncio.Semaphore(self.max_concurrency)
        draws = draws_per_prompt(params)

        async def limited(i: int, j: int) -> Candidate:
            async with limit:
                return await one(client, i, j)

        try:
            tasks = [[asyncio.ensure_future(limited(i, j)) for j in range(draws)] for i in range(count)]
            try:
                flat = await asyncio.gather(*(t for row in tasks for t in row))
            except BaseException:
                for row in tasks:
                    for t in row:
                        t.cancel()
                raise
        finally:
            await client.close()
        rows = [list(flat[i * draws : (i + 1) * draws]) for i in range(count)]
        return [expand_greedy(r, params) for r in rows]

    def _request_args(self, params: SamplingParams, seed: int | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "n": 1,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.stop:
            kwargs["stop"] = list(params.stop)
        if seed is not None:
            kwargs["seed"] = seed
        return kwargs

    async def _chat(self, client: Any, prompt: Prompt, index: int, params: SamplingParams) -> Candidate:
        kwargs = self._request_args(params, derive_seed(params.seed, prompt.id, index))
        response = await self._call(client.chat.completions.create, {**kwargs, "messages": prompt.messages},
                                    prompt.id, index)
        if isinstance(response, Candidate):
            return response
        choice = response.choices[0]
        return self._candidate(prompt.id, index, choice.message.content or "", choice.finish_reason, response.usage)

    async def _completion(self, client: Any, text: str, i: int, index: int, params: SamplingParams) -> Candidate:
        kwargs = self._request_args(params, derive_seed(params.seed, "complete", i, index))
        kwargs.update(prompt=text, extra_body={"add_special_tokens": False})
        response = await self._call(client.completions.create, kwargs, "", index, raw=True)
        if isinstance(response, Candidate):
            return response
        choice = response.choices[0]
        return self._candidate("", index, choice.text, choice.finish_reason, response.usage)

    async def _call(self, create: Any, kwargs: dict[str, Any], prompt_id: str, index: int, raw: bool = False) -> Any:
        """One request; a request the server refuses (400, 413, 422) is that item's error, anything else stops."""
        import openai

        try:
            return await create(**kwargs)
        except openai.APITimeoutError:
            raise UserError(
                f"OpenAI-compatible server {self.base_url}: request timed out after {self.timeout}s "
                f"({self.max_retries} retries); run again to resume"
            ) from None
        except openai.APIConnectionError as e:
            raise UserError(
                f"cannot reach the OpenAI-compatible server at {self.base_url} "
                f"({e.__cause__ or e}; {self.max_retries} retries)"
            ) from None
        except openai.APIStatusError as e:
            if e.status_code in (400, 413, 422):
                why = _short(str(e.message).removeprefix(f"Error code: {e.status_code} - "))
                return failed(prompt_id, self.name, index, f"HTTP {e.status_code}: {why}")
            hint = {
                401: f"; is ${self.api_key_env} set to a valid key?",
                404: "; raw completion needs a /v1/completions endpoint, which vllm serve provides" if raw
                else f"; does it serve a model named {self.model!r}?",
            }.get(e.status_code, "; run again to resume" if e.status_code == 429 or e.status_code >= 500 else "")
            raise UserError(
                f"OpenAI-compatible server {self.base_url} answered HTTP {e.status_code} "
                f"for model {self.model!r}: {_short(e.message)}{hint}"
            ) from None

    def _candidate(self, prompt_id: str, index: int, text: str, finish_reason: Any, usage: Any) -> Candidate:
        usage_dict = (
            {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens} if usage else {}
        )
        return Candidate(
            prompt_id,
            self.name,
            index,
            text,
            num_tokens=usage.completion_tokens if usage else None,
            finish_reason=finish_reason,
            metadata={"usage": usage_dict} if usage_dict else {},
        )

    def close(self) -> None:
        """Nothing to free: each `sample` call opens and closes its own HTTP client."""


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run_sync(coro: Any) -> Any:
    """Run a coroutine to completion, also from code already inside an event loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
