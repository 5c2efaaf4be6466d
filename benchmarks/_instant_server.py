"""A tiny OpenAI-compatible server on 127.0.0.1 that answers at once.

    with InstantServer() as server:          # an ephemeral port, a bounded pool of threads
        server.base_url                      # "http://127.0.0.1:PORT"  (clients add /v1/...)
        server.plan_stream(StreamPlan(chunks=10_000, interval_s=0.0003))   # the next stream request
        ...

`GET /v1/models` lists one model; `POST /v1/chat/completions` answers with JSON, or with
server-sent events when the request says `"stream": true`. A stream plan (for the streaming
measurement) makes the next streamed answer `chunks` pieces "000001\\n", "000002\\n", ...,
paced `interval_s` apart, and records `time.perf_counter_ns()` just before each is sent
(CLOCK_MONOTONIC on Linux: the same clock in every process of the machine).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

MODEL = "bench-model"
ANSWER = ("This is the instant server's answer, the same every time, about five hundred bytes long so that "
          "the stored rounds look like the steady state the store benchmark measures. ") * 3
ANSWER = ANSWER[:500]
MAX_WORKERS = 40
MAX_BODY = 16 * 1024 * 1024


@dataclass
class StreamPlan:
    chunks: int
    interval_s: float = 0.0  # 0: as fast as the socket takes them
    sent_ns: list[int] = field(default_factory=list)
    wire_bytes: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    @staticmethod
    def piece(i: int) -> str:
        return f"{i:06d}\n"


def _chunk(content: str | None, *, finish: str | None = None, usage: dict | None = None) -> bytes:
    """One `data:` event. With `usage`, the usage-only chunk (`"choices": []`) of stream_options."""
    delta = {} if content is None else {"content": content}
    choices = [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body: dict = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
                  "model": MODEL, "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection ends by itself
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _json(self, status: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 1700000000, "owned_by": "bench", "max_model_len": 8192}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._json(413, {"error": {"message": "too large"}})
            self.close_connection = True
            return
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})
            return
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "invalid JSON"}})
            return
        self.server.count_request()
        prompt_tokens = sum(len(str(m.get("content", ""))) // 4 for m in req.get("messages", []) if isinstance(m, dict))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 120, "total_tokens": prompt_tokens + 120}
        if req.get("stream"):
            self._stream(usage)
            return
        self._json(200, {
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": usage,
        })

    def _stream(self, usage: dict) -> None:
        plan = self.server.take_plan()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        out = self.wfile
        try:
            if plan is None:
                words = ANSWER.split(" ")
                for i, w in enumerate(words):
                    out.write(_chunk(w if i == 0 else " " + w))
            else:
                self._planned(plan)
            out.write(_chunk(None, finish="stop"))
            out.write(_chunk(None, usage=usage))
            out.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            if plan is not None:
                plan.done.set()

    def _planned(self, plan: StreamPlan) -> None:
        out = self.wfile
        payloads = [_chunk(StreamPlan.piece(i)) for i in range(1, plan.chunks + 1)]
        plan.wire_bytes = sum(map(len, payloads))
        sent = plan.sent_ns
        clock = time.perf_counter_ns
        step = int(plan.interval_s * 1e9)
        start = clock()
        for i, payload in enumerate(payloads):
            if step:
                target = start + i * step
                wait = target - clock()
                if wait > 0:
                    time.sleep(wait / 1e9)
            sent.append(clock())
            out.write(payload)


class _Server(HTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="instant")
        self._lock = threading.Lock()
        self._plans: list[StreamPlan] = []
        self._open: set[socket.socket] = set()
        self.requests = 0

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def take_plan(self) -> StreamPlan | None:
        with self._lock:
            return self._plans.pop(0) if self._plans else None

    def add_plan(self, plan: StreamPlan) -> None:
        with self._lock:
            self._plans.append(plan)

    def process_request(self, request, client_address) -> None:  # type: ignore[override]
        with self._lock:
            self._open.add(request)
        self._pool.submit(self._work, request, client_address)

    def _work(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            pass
        finally:
            with self._lock:
                self._open.discard(request)
            self.shutdown_request(request)

    def stop(self) -> None:
        self.shutdown()
        with self._lock:
            for s in list(self._open):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.server_close()


class InstantServer:
    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="instant-server", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> int:
        return self._server.requests

    def plan_stream(self, plan: StreamPlan) -> StreamPlan:
        self._server.add_plan(plan)
        return plan

    def __enter__(self) -> "InstantServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        self._thread.join(timeout=5)
