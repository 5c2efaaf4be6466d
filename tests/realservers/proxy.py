"""A recording HTTP proxy on 127.0.0.1 (stdlib only).

Point the client under test at `proxy.base_url` instead of the server's: every
request is recorded (method, path, headers, body) and forwarded to the real
server, and the response is passed back as it arrives, chunk by chunk, so a
streamed reply still streams. Tests then check what the client sent on the wire:

    with RecordingProxy(llama_server.base_url) as proxy:
        run_client(base_url=proxy.base_url)
        assert proxy.last().json["stream"] is True
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Per-connection headers (RFC 9110 7.6.1): never forwarded as they are.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]               # names lower-cased (a repeated header: last wins)
    raw_headers: list[tuple[str, str]]    # as sent, in order
    body: bytes
    status: int | None = None             # upstream's status (502 if upstream was unreachable)
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""            # everything passed back to the client
    complete: bool = False                # response fully passed back

    @property
    def json(self):
        """The body parsed as JSON, or None if it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked responses, as real servers do
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002 - keep test output clean
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:  # ends at the zero-size chunk (or EOF)
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after the chunk
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        raw = list(self.headers.items())
        rec = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in raw}, raw, body)
        proxy._record(rec)

        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                          timeout=proxy.upstream_timeout)
        try:
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", f"{proxy.upstream_host}:{proxy.upstream_port}")
                for name, value in raw:
                    if name.lower() not in HOP_BY_HOP | {"host", "content-length"}:
                        conn.putheader(name, value)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                resp = conn.getresponse()
            except OSError as exc:
                self._send_simple(rec, 502, {"error": {"message": f"recording proxy: upstream "
                                                       f"unreachable: {exc}", "type": "proxy_error"}})
                return
            self._relay(rec, resp)
        finally:
            conn.close()

    def _send_simple(self, rec: RecordedRequest, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        rec.status, rec.response_body = status, data
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        rec.complete = True

    def _relay(self, rec: RecordedRequest, resp: http.client.HTTPResponse) -> None:
        rec.status = resp.status
        rec.response_headers = {k.lower(): v for k, v in resp.getheaders()}
        length = resp.getheader("Content-Length")
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        chunked = length is None and not no_body
        self.send_response_only(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if resp.will_close and length is None and not chunked:
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        if no_body:
            rec.complete = True
            return
        try:
            while True:  # ends when upstream's body ends
                # read1: whatever has arrived (one SSE event, typically), not a full buffer.
                data = resp.read1(65536)
                if not data:
                    break
                rec.response_body += data
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(data)
                self.wfile.flush()
            rec.complete = True
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-stream

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded test server: daemon threads (a client's idle keep-alive connection must not
    block close()), and no traceback when a client drops its connection, which is normal here."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class _Server(QuietHTTPServer):
    proxy: "RecordingProxy"


class RecordingProxy:
    """Forwarding, recording proxy to `upstream` (a URL; its path is kept in base_url)."""

    def __init__(self, upstream: str, api_key: str | None = None, upstream_timeout: float = 120.0):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_timeout = upstream_timeout
        self._path = parts.path.rstrip("/")
        self.api_key = api_key
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"recording-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + self._path

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def last(self) -> RecordedRequest:
        reqs = self.requests
        if not reqs:
            raise AssertionError("the recording proxy has seen no request")
        return reqs[-1]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "RecordingProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
