"""The OpenAI-compatible backend against a real local HTTP server that answers 429, 500 and stalls.

The server is `http.server` in a thread, scripted by the test: which status
each request gets, and how long it waits. It speaks just enough of
`/v1/chat/completions` for the openai client.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typing_extensions import Self

from thresher.errors import UserError
from thresher.records import Prompt
from thresher.sampling import SamplingParams
from thresher.sampling.openai_backend import OpenAISampler


class ScriptedServer:
    """Answers request k with `script[k]` = (status, delay seconds, headers); later requests get 200."""

    def __init__(self, script: list[tuple[int, float, dict[str, str]]]):
        self.script = script
        self.requests: list[dict] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    k = len(owner.requests)
                    owner.requests.append(body)
                    owner.auth.append(self.headers.get("Authorization"))
                status, delay, headers = owner.script[k] if k < len(owner.script) else (200, 0.0, {})
                time.sleep(delay)
                if status == 200:
                    question = body["messages"][-1]["content"]
                    payload = {
                        "id": f"cmpl-{k}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": f"answer to {question}"},
                            }
                        ],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 3 + k, "total_tokens": 14 + k},
                    }
                else:
                    payload = {"error": {"message": f"scripted {status}", "type": "server_error"}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def prompt() -> Iterator[Prompt]:
    yield Prompt.create("arith", [{"role": "user", "content": "What is 2 + 2?"}])


def test_retries_429_then_500_then_succeeds(prompt: Prompt):
    script = [(429, 0.0, {"retry-after-ms": "20"}), (500, 0.0, {})]
    with ScriptedServer(script) as server:
        sampler = OpenAISampler(server.url, "tiny", max_retries=3, timeout=10)
        out = sampler.sample([prompt], SamplingParams(n=1, max_tokens=8, seed=5))
    assert len(server.requests) == 3
    (cand,) = out[0]
    assert (cand.prompt_id, cand.model, cand.index) == (prompt.id, "tiny", 0)
    assert cand.text == "answer to What is 2 + 2?"
    assert cand.num_tokens == 5  # the third request's usage
    assert cand.metadata["usage"] == {"prompt_tokens": 11, "completion_tokens": 5}
    sent = server.requests[-1]
    assert sent["messages"] == prompt.messages and sent["max_tokens"] == 8 and sent["n"] == 1
    assert isinstance(sent["seed"], int)


def test_retries_a_request_that_times_out(prompt: Prompt):
    with ScriptedServer([(200, 3.0, {})]) as server:
        sampler = OpenAISampler(server.url, "tiny", max_retries=2, timeout=0.5)
        start = time.perf_counter()
        out = sampler.sample([prompt], SamplingParams(n=1, max_tokens=8))
        took = time.perf_counter() - start
    assert out[0][0].text == "answer to What is 2 + 2?"
    assert len(server.requests) == 2
    assert took < 3.0  # did not wait for the stalled answer


def test_gives_up_after_max_retries_with_a_user_error(prompt: Prompt):
    with ScriptedServer([(503, 0.0, {"retry-after-ms": "10"})] * 10) as server:
        sampler = OpenAISampler(server.url, "tiny", max_retries=2, timeout=10)
        with pytest.raises(UserError, match=r"answered HTTP 503 for model 'tiny'.*run again to resume"):
            sampler.sample([prompt], SamplingParams(n=1, max_tokens=8))
    assert len(server.requests) == 3  # one try and two retries


def test_n_requests_per_prompt_in_input_order_with_concurrency():
    prompts = [Prompt.create("arith", [{"role": "user", "content": f"What is {i} + {i}?"}]) for i in range(7)]
    with ScriptedServer([]) as server:
        sampler = OpenAISampler(server.url, "served/model", max_concurrency=3)
        out = sampler.sample(prompts, SamplingParams(n=3, temperature=0.7, max_tokens=4, seed=1))
    assert len(server.requests) == 21
    assert sampler.name == "served_model"
    for p, row in zip(prompts, out, strict=True):
        assert [c.index for c in row] == [0, 1, 2]
        assert {c.text for c in row} == {f"answer to {p.question}"}
    seeds = [r["seed"] for r in server.requests]
    assert len(set(seeds)) == 21  # each candidate its own seed


def test_greedy_sends_one_request_and_copies_it(prompt: Prompt):
    with ScriptedServer([]) as server:
        out = OpenAISampler(server.url, "tiny").sample([prompt], SamplingParams(n=4, temperature=0, max_tokens=4))
    assert len(server.requests) == 1
    assert [c.index for c in out[0]] == [0, 1, 2, 3]
    assert len({c.text for c in out[0]}) == 1


def test_api_key_comes_from_the_named_environment_variable(prompt: Prompt, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-test-123")
    with ScriptedServer([]) as server:
        OpenAISampler(server.url, "tiny", api_key_env="MY_TEACHER_KEY").sample([prompt], SamplingParams(n=1))
    assert server.auth == ["Bearer sk-test-123"]
