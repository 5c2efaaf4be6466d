"""A real HTTP server on 127.0.0.1 that plays scripted replies byte for byte.

Each reply can be cut into pieces sent one by one (flushed, with a delay), framed by
Content-Length, chunked transfer encoding or connection close; it can stall after some pieces
(until the test ends) or drop the connection. A reply can also be no reply: the connection
closed on the request (a keep-alive connection the server closed as the request went out).
Every request is recorded for assertions.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import sys
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GATE_TIMEOUT = 5.0


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    pieces: list[bytes] | None = None  # default: the body in one piece
    framing: str = "length"  # length | chunked | close
    delay: float = 0.0  # seconds between pieces
    stall_after: int | None = None  # stop sending after this many pieces, until the server stops
    drop_after: int | None = None  # close the socket after this many pieces, mid-body
    gate: threading.Event | None = None  # wait for it after `gate_after` pieces
    gate_after: int = 1
    gate_opened: list[bool] = field(default_factory=list)  # filled in: was the gate opened in time?
    hang_up: str | None = None  # "close" (FIN) | "reset" (RST): no response, the connection closed
    sent: list[int] = field(default_factory=list)  # filled in: pieces written before the end or a hang-up
    finished: threading.Event = field(default_factory=threading.Event)  # set when the handler is done with it

    def parts(self) -> list[bytes]:
        if self.pieces is None:
            return [self.body]
        assert b"".join(self.pieces) == self.body, "pieces must add up to the body"
        return self.pieces


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    port: int = 0  # the client's port: tells its connections apart


def split_at(body: bytes, cuts: list[int]) -> list[bytes]:
    """The body cut at these byte offsets."""
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(body))), len(body)]
    return [body[a:b] for a, b in zip(bounds, bounds[1:])]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    errors: list[BaseException]

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up and refused TLS handshakes are part of the tests; anything else is
        # a bug in the test server, kept for the fixture to report.
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, ConnectionError | ssl.SSLError):
            self.errors.append(error)


class ScriptedServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.replies: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        handler = type("Handler", (_Handler,), {"script": self})
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.httpd.errors = self.errors = []
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.httpd.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, *replies: Reply) -> None:
        self.replies[path].extend(replies)

    def stop(self) -> None:
        self.stopping.set()  # releases stalled handlers
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: ScriptedServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.script.requests.append(Request(self.command, self.path, dict(self.headers.items()), body,
                                            self.client_address[1]))
        queue = self.script.replies.get(self.path)
        reply = queue.popleft() if queue else Reply(404, b'{"detail":"no scripted reply"}')
        if reply.hang_up == "reset":
            self._reset()
            return
        if reply.hang_up is not None:
            self._drop()
            return
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.framing == "length":
            self.send_header("Content-Length", str(len(reply.body)))
        elif reply.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        try:
            self._write_body(reply)
        finally:
            reply.finished.set()

    def _write_body(self, reply: Reply) -> None:
        reply.sent.append(0)
        for n, piece in enumerate(reply.parts()):
            if n == reply.drop_after:
                self._drop()
                return
            if n == reply.stall_after:
                self.script.stopping.wait(GATE_TIMEOUT * 2)
                self.close_connection = True
                return
            if reply.gate is not None and n == reply.gate_after:
                reply.gate_opened.append(reply.gate.wait(GATE_TIMEOUT))
            if n and reply.delay:
                self.script.stopping.wait(reply.delay)
            if reply.framing == "chunked":
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                self.wfile.write(piece)
            self.wfile.flush()
            reply.sent[-1] = n + 1
        if reply.drop_after is not None:  # after the last piece, before the end of the framing
            self._drop()
            return
        if reply.framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST; detach so the handler's own files cannot keep the
        # descriptor open (socketserver's later shutdown/close of it then fail quietly).
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
