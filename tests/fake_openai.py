"""A fake OpenAI-compatible server for tests: it stands in for a hosted model, whose answers a test must know.

`FakeOpenAIServer(reply)` serves `/v1/chat/completions` and `/v1/completions`
on 127.0.0.1; `reply(text, body)` returns `(status, answer)` for the last user
message (chat) or the raw prompt (completions). Every request body is kept in
`bodies`. Use it as a context manager.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import Self

Reply = Callable[[str, dict], "tuple[int, str]"]


class FakeOpenAIServer:
    def __init__(self, reply: Reply):
        self.bodies: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.bodies.append(body)
                raw = "prompt" in body
                status, answer = reply(body["prompt"] if raw else body["messages"][-1]["content"], body)
                if status != 200:
                    payload: dict[str, Any] = {"error": {"message": answer, "type": "BadRequestError"}}
                elif raw:
                    payload = {"id": "c", "object": "text_completion", "created": 0, "model": body["model"],
                               "choices": [{"index": 0, "text": answer, "finish_reason": "stop"}]}
                else:
                    payload = {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": answer}}],
                               "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
