"""`https://` against a plain-HTTP server (issue 12, item 10): said at once, not after the
connect timeout as "timed out connecting".

The connect timeouts here are 30 s: a test that got the old behaviour would wait that long and
fail on the kind of error, or on what the server saw."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cli.endpoint._errors import ConnectTimeout, PlainHTTPServer, TLSError
from cli.endpoint._plain_http import probe_allowed
from cli.endpoint._transport import EndpointClient
from tests.echo_server import EchoServer

from .test_transport import PAYLOAD

LONG = dict(timeout=30.0, connect_timeout=30.0)


def _https(url: str) -> str:
    return url.replace("http://", "https://")


def test_a_real_plain_http_server(make_client: Any) -> None:
    # tests/echo_server.py is Python's http.server. (It answers a ClientHello with a 400: the
    # ClientHello holds a newline byte, so it reads a "request line" and refuses it.)
    with EchoServer() as echo:
        with pytest.raises(PlainHTTPServer) as caught:
            make_client(_https(echo.root_url), **LONG).chat(PAYLOAD)
    error = caught.value
    assert isinstance(error, TLSError)  # still a TLS failure, for whoever catches those
    assert str(error) == (f"the server at {_https(echo.root_url)}/v1/chat/completions answers in plain HTTP, "
                          f"not TLS: use {echo.root_url} (http://, not https://)")


@pytest.fixture
def answers_at_once() -> Iterator[str]:
    """A plain-HTTP server that answers bytes it cannot parse with a 400 at once (as uvicorn
    with httptools and nginx do)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture
def waits_for_a_whole_head() -> Iterator[tuple[str, list[str]]]:
    """A plain-HTTP server that answers only a complete request head (up to the blank line),
    and waits for the rest of anything else: a ClientHello gets no answer at all. Each
    connection's end is recorded: "answered", or for the others whether bai hung up while the
    server was still waiting ("hung up") or the server gave up after 10 s ("gave up")."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    ends: list[str] = []

    def one(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        ends.append("hung up")
                        return
                    head += data
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
                ends.append("answered")
            except TimeoutError:
                ends.append("gave up")
            except OSError:
                ends.append("hung up")

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", ends
    listener.close()


def test_a_server_that_never_answers_the_client_hello(waits_for_a_whole_head: tuple[str, list[str]],
                                                     make_client: Any) -> None:
    # As llama.cpp's server does: bai probes while the handshake waits, and ends it at once.
    url, ends = waits_for_a_whole_head
    with pytest.raises(PlainHTTPServer, match=f"use {url} "):
        make_client(_https(url), **LONG).chat(PAYLOAD)
    for _ in range(100):  # the server threads record the two connections' ends
        if len(ends) == 2:
            break
        threading.Event().wait(0.1)
    assert sorted(ends) == ["answered", "hung up"], ends  # the probe; the handshake, cut short by bai


@pytest.mark.parametrize("mode", ["chat", "stream", "models"])
def test_a_server_that_answers_the_client_hello(answers_at_once: str, make_client: Any, mode: str) -> None:
    client = make_client(_https(answers_at_once) + "/v1", **LONG)
    with pytest.raises(PlainHTTPServer, match=f"use {answers_at_once}/? "):
        client.list_models() if mode == "models" else getattr(client, "chat" if mode == "chat" else "stream_chat")(PAYLOAD)


def test_a_silent_server_is_no_plain_http_server(make_client: Any) -> None:
    # Nothing answers, TLS or HTTP: the connect timeout, and no claim about plain HTTP.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        with pytest.raises(ConnectTimeout, match="timed out connecting"):
            make_client(f"https://127.0.0.1:{listener.getsockname()[1]}", timeout=5, connect_timeout=1.5).chat(PAYLOAD)
    finally:
        listener.close()


def test_no_probe_around_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert not probe_allowed("llm.example.com")
    assert probe_allowed("localhost")
    monkeypatch.delenv("HTTPS_PROXY")
    assert probe_allowed("llm.example.com")


def test_a_plain_http_url_is_never_probed() -> None:
    assert not EndpointClient("http://127.0.0.1:9")._probe
