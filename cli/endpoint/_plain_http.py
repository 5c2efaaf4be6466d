"""Is the server behind an https:// URL really speaking plain HTTP?

A plain-HTTP server that gets a TLS ClientHello either answers at once with an HTTP error
(uvicorn with httptools, nginx), which fails the handshake, or waits for the end of a request
line that never comes (llama.cpp's server, Python's http.server), which would leave bai waiting
for the connect timeout. Either way a second, plain connection asking `HEAD / HTTP/1.0` gets an
answer starting with `HTTP/`: that is the proof, and bai says so at once.

`HandshakeWatch` does this while a handshake is slow: after PROBE_AFTER seconds without the
server's reply, it probes from a timer thread and, on proof, shuts the handshake's socket down
(through its own duplicate of the descriptor, so a closed and reused descriptor is never hit).
Only for direct connections: through a proxy the probe would bypass it, so none is made.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.request

__all__ = ["HandshakeWatch", "PROBE_AFTER", "answers_plain_http", "probe_allowed"]

PROBE_AFTER = 1.0  # a TLS server answers a ClientHello within a round trip or two
PROBE_TIMEOUT = 2.0


def probe_allowed(host: str) -> bool:
    """No proxy is set for this host (the probe would go around it)."""
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get("https") or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass_environment(host, proxies))


def answers_plain_http(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """A new plain connection to host:port is answered with an HTTP status line."""
    name = f"[{host}]" if ":" in host else host
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(f"HEAD / HTTP/1.0\r\nHost: {name}:{port}\r\nUser-Agent: bai\r\n\r\n".encode("ascii", "replace"))
            head = b""
            while len(head) < 5:
                chunk = sock.recv(64)
                if not chunk:
                    break
                head += chunk
    except (OSError, ValueError):
        return False
    return head.startswith(b"HTTP/")


class HandshakeWatch:
    """Watches one TLS handshake on a connected socket (see the module's docstring)."""

    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.plain_http = False
        self.probed = False  # the probe ran (and plain_http says what it found)
        self._lock = threading.Lock()
        self._dup: socket.socket | None = socket.socket(fileno=os.dup(sock.fileno()))
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        self._timer = threading.Timer(PROBE_AFTER, self._check)
        self._timer.daemon = True
        self._timer.start()

    def _check(self) -> None:
        if self._dup is None:
            return
        found = answers_plain_http(self.host, self.port)
        self.probed = True
        if not found:
            return
        with self._lock:
            if self._dup is None:  # the handshake ended meanwhile
                return
            self.plain_http = True
            try:
                self._dup.shutdown(socket.SHUT_RDWR)  # the handshake's read returns at once
            except OSError:
                pass

    def end(self) -> None:
        """The handshake is over (done or failed): nothing more may touch the socket."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            if self._dup is not None:
                self._dup.close()
                self._dup = None
