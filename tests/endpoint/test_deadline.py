"""A deadline for a whole request, besides the read timeout (issue 9): a server that trickles
bytes, sends only keep-alive comments, or goes silent never keeps bai past it.

Read timeouts here are long (20 s) and the servers would go on for seconds: each test checks on
the server's side that bai hung up while the server was still sending (or waiting), long before
it would have finished. Any error after the deadline is reported as DeadlineExceeded, so the
kind of error alone would not tell a deadline kept from one overrun."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from cli.endpoint._errors import DeadlineExceeded, HTTPStatusError

from .server import Reply, ScriptedServer
from .test_transport import CHAT, PAYLOAD, SSE

SLOW = dict(timeout=20.0, connect_timeout=20.0)
CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'


def _trickle(pieces: list[bytes], delay: float = 0.05, content_type: str = SSE) -> Reply:
    return Reply(200, b"".join(pieces), content_type=content_type, pieces=pieces, delay=delay, framing="chunked")


def _hung_up_early(reply: Reply) -> bool:
    """bai closed the connection with most of the reply still to come."""
    assert reply.finished.wait(10), "the server is still sending"
    return reply.sent[0] < len(reply.parts()) // 4


def test_a_stream_trickling_an_event_at_a_time(server: ScriptedServer, make_client: Any) -> None:
    reply = _trickle([CHUNK] * 200 + [b"data: [DONE]\n\n"])
    server.add(CHAT, reply)
    with pytest.raises(DeadlineExceeded) as caught:
        make_client(deadline=0.5, **SLOW).stream_chat(PAYLOAD)
    error = caught.value
    assert "after 0.5 s, the deadline for a whole request" in str(error) and "--deadline" in str(error)
    assert 0 < len(error.partial.text) < 200 and not error.partial.ok
    assert f"({len(error.partial.text)} characters of answer had arrived)" in str(error)
    assert _hung_up_early(reply)


def test_a_stream_of_keep_alive_comments_only(server: ScriptedServer, make_client: Any) -> None:
    reply = _trickle([b": keep-alive\n\n"] * 400)
    server.add(CHAT, reply)
    with pytest.raises(DeadlineExceeded, match=r"\(0 characters of answer had arrived\)"):
        make_client(deadline=0.5, **SLOW).stream_chat(PAYLOAD)
    assert _hung_up_early(reply)


def test_a_byte_a_tick(server: ScriptedServer, make_client: Any) -> None:
    body = CHUNK * 4 + b"data: [DONE]\n\n"
    reply = _trickle([body[i : i + 1] for i in range(len(body))], delay=0.02)
    server.add(CHAT, reply)
    with pytest.raises(DeadlineExceeded):
        make_client(deadline=0.5, **SLOW).stream_chat(PAYLOAD)
    assert _hung_up_early(reply)


def test_a_stream_gone_silent_is_woken_at_the_deadline(server: ScriptedServer, make_client: Any) -> None:
    # One event, then nothing: the read blocks; the deadline's timer shuts the socket down.
    server.add(CHAT, Reply(200, CHUNK * 2, content_type=SSE, pieces=[CHUNK, CHUNK], stall_after=1, framing="chunked"))
    with pytest.raises(DeadlineExceeded) as caught:
        make_client(deadline=0.5, **SLOW).stream_chat(PAYLOAD)
    assert caught.value.partial.content.content == "a"


def test_a_whole_reply_trickling(server: ScriptedServer, make_client: Any) -> None:
    body = b'{"choices":[{"index":0,"message":{"content":"' + b"x" * 400 + b'"}}]}'
    reply = _trickle([body[i : i + 2] for i in range(0, len(body), 2)], content_type="application/json")
    server.add(CHAT, reply)
    with pytest.raises(DeadlineExceeded):
        make_client(deadline=0.5, **SLOW).chat(PAYLOAD)
    assert _hung_up_early(reply)


def test_a_server_that_never_answers(make_client: Any) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    closed_by_bai: list[bool] = []

    def serve() -> None:  # reads the request, answers nothing, waits (10 s at most) for bai to hang up
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            try:
                while conn.recv(65536):
                    pass
                closed_by_bai.append(True)
            except OSError:
                closed_by_bai.append(False)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(DeadlineExceeded):
            make_client(f"http://127.0.0.1:{listener.getsockname()[1]}", deadline=0.5, **SLOW).chat(PAYLOAD)
        thread.join(15)
        assert closed_by_bai == [True]
    finally:
        listener.close()


def test_a_server_trickling_its_headers(make_client: Any) -> None:
    # httpcore reads the head inside one call: only the timer shutting the socket down ends it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    sent: list[int] = [0]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            try:
                for _ in range(200):  # 10 s of it, then a whole (empty) reply
                    conn.sendall(b"z")
                    sent[0] += 1
                    threading.Event().wait(0.05)
                conn.sendall(b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(DeadlineExceeded):
            make_client(f"http://127.0.0.1:{listener.getsockname()[1]}", deadline=0.5, **SLOW).chat(PAYLOAD)
        thread.join(15)
        assert sent[0] < 50  # bai hung up mid-head
    finally:
        listener.close()


def test_no_retry_wait_past_the_deadline(server: ScriptedServer, make_client: Any, sleeps: list[float]) -> None:
    server.add(CHAT, Reply(429, b'{"error":{"message":"slow down"}}', headers={"Retry-After": "5"}))
    with pytest.raises(HTTPStatusError, match="HTTP 429"):
        make_client(deadline=2.0, **SLOW).chat(PAYLOAD)
    assert sleeps == []


def test_a_prompt_answer_is_untouched_and_leaves_no_timer(server: ScriptedServer, make_client: Any) -> None:
    server.add(CHAT, _trickle([CHUNK] * 3 + [b"data: [DONE]\n\n"], delay=0.01))
    client = make_client(deadline=5.0)
    result = client.stream_chat(PAYLOAD)
    assert result.text == "aaa" and result.ok
    timer = client._deadline._timer
    timer.join(2.0)
    assert not timer.is_alive()  # cancelled at the end of the call, not left to fire


@pytest.mark.parametrize("deadline", [0.0, -1.0, float("nan"), float("inf")])
def test_the_deadline_must_be_positive_and_finite(make_client: Any, deadline: float) -> None:
    with pytest.raises(ValueError, match="deadline"):
        make_client(deadline=deadline)
