"""A tiny scripted OpenAI-compatible server on 127.0.0.1 (stdlib only), for the stream endings
no real server produces on demand: a stream the server cuts off, one that waits for the test,
one that trickles until the client goes away.

    with StubServer("cut-eof") as stub:
        configure(home, "d", stub.root_url)

Modes of POST /v1/chat/completions (always an event stream; the model is "stub"):
- "cut-eof":     a few chunks, then the connection closes (body read to EOF) with no
                 finish_reason and no [DONE]
- "cut-chunked": the same, but chunked, dropped without the terminating chunk
- "gated":       "Hel", then waits for `release` (bounded), then "lo world", finish_reason, [DONE]
- "slow":        "tick " every 0.1 s until the client disconnects or 30 s have passed
- "tool":        a complete stream whose answer is only a tool call (no text)
- "empty":       a complete stream with no text at all
GET /v1/models lists "stub".
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

from tests.realservers.proxy import QuietHTTPServer

GATE_TIMEOUT = 30.0
SLOW_TICKS = 300  # x 0.1 s: bounded even if nobody stops it


def chunk(content: str | None = None, *, role: str | None = None, finish: str | None = None) -> bytes:
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    doc = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002 - keep test output clean
        pass

    def do_GET(self):
        self.server.stub.requests.append(("GET", self.path, None))
        body = json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        stub.requests.append(("POST", self.path, json.loads(body or b"null")))
        mode = stub.mode
        chunked = mode != "cut-eof"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")  # the body is whatever comes before EOF
        self.end_headers()
        self.close_connection = True

        def send(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            self.wfile.flush()

        try:
            send(chunk(role="assistant"))
            if mode in ("cut-eof", "cut-chunked"):
                send(chunk("Hel"))
                send(chunk("lo, wor"))
                return  # closed here: no finish_reason, no [DONE], no terminating chunk
            if mode == "gated":
                send(chunk("Hel"))
                stub.first_sent.set()
                stub.release.wait(GATE_TIMEOUT)
                send(chunk("lo world"))
                send(chunk(finish="stop"))
                send(b"data: [DONE]\n\n")
            elif mode in ("tool", "empty"):
                if mode == "tool":
                    call = {"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
                    doc = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub",
                           "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
                    send(b"data: " + json.dumps(doc).encode() + b"\n\n")
                send(chunk(finish="tool_calls" if mode == "tool" else "stop"))
                send(b"data: [DONE]\n\n")
            elif mode == "slow":
                for _ in range(SLOW_TICKS):
                    if stub.stopping.is_set():
                        break
                    send(chunk("tick "))
                    stub.first_sent.set()
                    stub.stopping.wait(0.1)
                send(chunk(finish="stop"))
                send(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            stub.client_went_away.set()


class _Server(QuietHTTPServer):
    stub: "StubServer"


class StubServer:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests: list[tuple[str, str, object]] = []
        self.release = threading.Event()
        self.first_sent = threading.Event()
        self.stopping = threading.Event()
        self.client_went_away = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"bai-e2e-stub-{self.port}", daemon=True)
        self._thread.start()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stopping.set()
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "StubServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
