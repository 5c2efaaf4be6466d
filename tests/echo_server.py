"""An OpenAI-compatible test server on 127.0.0.1 (stdlib only) that answers from what it was sent.

The answer to a chat request is `echo: <the last user message> [<N> messages]`, streamed
(`"stream": true`, with a usage chunk when `stream_options.include_usage` asks) or whole, so a
test can tell from the answer alone what context reached the server; every request body is
recorded. Scripted replies queued with `fail_next(status, body)` come first (a context-length
400, a 401...), one per request.

    with EchoServer() as server:
        run bai with --endpoint server.root_url ...
        server.chat_requests()[-1]["messages"]
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "echo-model"


def answer_for(messages: list[dict]) -> str:
    last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    return f"echo: {last} [{len(messages)} messages]"


def _usage(messages: list[dict], answer: str) -> dict:
    prompt = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
    completion = len(answer) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    echo: "EchoServer"

    def handle_error(self, request, client_address):  # a client that hangs up is not news
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        echo = self.server.echo
        echo.record("GET", self.path, None, self.headers)
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode())
        else:
            self._send(404, b'{"detail": "Not Found"}')

    def do_POST(self):
        echo = self.server.echo
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        echo.record("POST", self.path, body, self.headers)
        scripted = echo.next_failure()
        if scripted is not None:
            self._send(*scripted)
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send(400, b'{"error": {"message": "messages is required", "type": "invalid_request_error"}}')
            return
        messages = body["messages"]
        answer = answer_for(messages)
        model = body.get("model") or MODEL
        if body.get("stream"):
            self._stream(model, answer, messages, bool((body.get("stream_options") or {}).get("include_usage")))
            return
        doc = {"id": "chatcmpl-echo", "object": "chat.completion", "created": 0, "model": model,
               "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
               "usage": _usage(messages, answer)}
        self._send(200, json.dumps(doc).encode())

    def _stream(self, model: str, answer: str, messages: list[dict], usage: bool) -> None:
        def event(choices: list, **extra) -> bytes:
            doc = {"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 0, "model": model,
                   "choices": choices, **extra}
            return b"data: " + json.dumps(doc).encode() + b"\n\n"

        pieces = [answer[i : i + 7] for i in range(0, len(answer), 7)]
        body = event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for p in pieces:
            body += event([{"index": 0, "delta": {"content": p}, "finish_reason": None}])
        body += event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        if usage:
            body += event([], usage=_usage(messages, answer))
        body += b"data: [DONE]\n\n"
        self._send(200, body, "text/event-stream")


class EchoServer:
    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.echo = self
        self.requests: list[tuple[str, str, dict | None, dict]] = []
        self._failures: deque[tuple[int, bytes]] = deque()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, method: str, path: str, body: dict | None, headers) -> None:
        with self._lock:
            self.requests.append((method, path, body, dict(headers)))

    def fail_next(self, status: int, body: dict | str) -> None:
        """The next POST gets this reply instead of an answer."""
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        with self._lock:
            self._failures.append((status, data))

    def next_failure(self) -> tuple[int, bytes] | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def chat_requests(self) -> list[dict]:
        with self._lock:
            return [b for m, p, b, _ in self.requests if m == "POST" and p.endswith("/chat/completions") and b]

    def __enter__(self) -> "EchoServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
