"""An OpenAI-compatible test server on 127.0.0.1 (stdlib only) that answers from what it was sent.

The answer to a chat request is `echo: <the last user message> [<N> messages]`, streamed
(`"stream": true`, with a usage chunk when `stream_options.include_usage` asks) or whole, so a
test can tell from the answer alone what context reached the server; every request body is
recorded. Scripted replies come first, one per chat request, in the order queued:

- `fail_next(status, body)`: that status and JSON body instead of an answer (a context-length
  400, a 401, or a 200 whose body is any shape at all);
- `no_choices_next()`: a 200 answer with `choices: []` (whole, or a stream of such chunks);
- `tool_call_next(name, arguments)`: an answer that is only a tool call, no text;
- `stream_error_next(error, after=2)`: a stream that sends the first `after` pieces of the echo
  answer, then the error event `{"error": error}` and ends (no finish_reason, no [DONE]);
- `reasoning_next(text, answer=True)`: a reasoning model's answer: `text` first, as vLLM's and
  llama.cpp's `reasoning_content` (streamed in pieces, or in the whole message), then the echo
  answer (none with `answer=False`: the model only reasoned).

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


def _pieces(answer: str) -> list[str]:
    return [answer[i : i + 7] for i in range(0, len(answer), 7)]


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
        scripted = echo.next_scripted()
        if isinstance(scripted, _Reply):
            self._send(scripted.status, scripted.body)
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send(400, b'{"error": {"message": "messages is required", "type": "invalid_request_error"}}')
            return
        messages = body["messages"]
        answer = answer_for(messages)
        model = body.get("model") or MODEL
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._send(200, _stream_body(model, answer, messages, usage, scripted), "text/event-stream")
            return
        message, finish = {"role": "assistant", "content": answer}, "stop"
        if isinstance(scripted, _Shape) and scripted.kind == "reasoning":
            message = {"role": "assistant", "reasoning_content": scripted.reasoning,
                       "content": answer if scripted.answer else None}
        choices = [{"index": 0, "message": message, "finish_reason": finish}]
        if isinstance(scripted, _Shape) and scripted.kind == "no_choices":
            choices = []
        elif isinstance(scripted, _Shape) and scripted.kind == "tool_call":
            choices[0] = {"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None, "tool_calls": [scripted.tool_call()]}}
        doc = {"id": "chatcmpl-echo", "object": "chat.completion", "created": 0, "model": model,
               "choices": choices, "usage": _usage(messages, answer)}
        self._send(200, json.dumps(doc).encode())


def _stream_body(model: str, answer: str, messages: list[dict], usage: bool, shape: "_Shape | None") -> bytes:
    """The whole event stream of an answer (sent at once: bai reads it as it would a slow one)."""

    def event(choices: list, **extra) -> bytes:
        doc = {"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 0, "model": model,
               "choices": choices, **extra}
        return b"data: " + json.dumps(doc).encode() + b"\n\n"

    def delta(d: dict, finish: str | None = None) -> bytes:
        return event([{"index": 0, "delta": d, "finish_reason": finish}])

    kind = shape.kind if shape is not None else "echo"
    if kind == "no_choices":
        return event([]) + event([], usage=_usage(messages, "")) + b"data: [DONE]\n\n"
    body = delta({"role": "assistant", "content": ""})
    if kind == "tool_call":
        call = {"index": 0, **shape.tool_call()}
        return body + delta({"tool_calls": [call]}) + delta({}, "tool_calls") + b"data: [DONE]\n\n"
    pieces = _pieces(answer)
    if kind == "reasoning":
        for p in _pieces(shape.reasoning):
            body += delta({"reasoning_content": p})
        pieces = pieces if shape.answer else []
    if kind == "stream_error":
        for p in pieces[: shape.after]:
            body += delta({"content": p})
        return body + b"data: " + json.dumps({"error": shape.error}).encode() + b"\n\n"
    for p in pieces:
        body += delta({"content": p})
    body += delta({}, "stop")
    if usage:
        body += event([], usage=_usage(messages, answer))
    return body + b"data: [DONE]\n\n"


class _Reply:
    """A scripted reply: this status and body instead of an answer."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body


class _Shape:
    """A scripted answer of another shape than the echo (see the module's doc)."""

    def __init__(self, kind: str, *, name: str = "", arguments: str = "", error: object = None, after: int = 0,
                 reasoning: str = "", answer: bool = True) -> None:
        self.kind, self.name, self.arguments, self.error, self.after = kind, name, arguments, error, after
        self.reasoning, self.answer = reasoning, answer

    def tool_call(self) -> dict:
        return {"id": "call-echo-1", "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


class EchoServer:
    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.echo = self
        self.requests: list[tuple[str, str, dict | None, dict]] = []
        self._scripted: deque[_Reply | _Shape] = deque()
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
        self._queue(_Reply(status, data))

    def no_choices_next(self) -> None:
        """The next answer has `choices: []` (streamed or whole, as asked)."""
        self._queue(_Shape("no_choices"))

    def tool_call_next(self, name: str, arguments: str = "{}") -> None:
        """The next answer is only a call of tool `name`, with no text (streamed or whole)."""
        self._queue(_Shape("tool_call", name=name, arguments=arguments))

    def stream_error_next(self, error: object, after: int = 2) -> None:
        """The next streamed answer sends `after` pieces of text, then the error event {"error": error}."""
        self._queue(_Shape("stream_error", error=error, after=after))

    def reasoning_next(self, text: str, answer: bool = True) -> None:
        """The next answer comes after the reasoning `text` (streamed or whole); `answer=False`: only the reasoning."""
        self._queue(_Shape("reasoning", reasoning=text, answer=answer))

    def _queue(self, item: "_Reply | _Shape") -> None:
        with self._lock:
            self._scripted.append(item)

    def next_scripted(self) -> "_Reply | _Shape | None":
        with self._lock:
            return self._scripted.popleft() if self._scripted else None

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
