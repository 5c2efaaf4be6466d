"""stream_chat against a real HTTP server: awkward byte boundaries, slow, stalled and broken streams."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from cli.endpoint._content import NoText
from cli.endpoint._errors import (
    APIError,
    HTTPStatusError,
    NotAnEventStream,
    ReadTimeout,
    StreamErrorEvent,
    StreamInterrupted,
)

from .conftest import fixture_bytes
from .server import Reply, ScriptedServer, split_at
from .test_fixtures import EXPECT, run_stream
from .test_transport import CHAT, PAYLOAD, SSE

SSE_FIXTURES = sorted(n for n in EXPECT if n.startswith("sse_") and EXPECT[n][0] != "reject")


def awkward_cuts(body: bytes) -> list[int]:
    """Inside `data:`, right after `data:`, between the two newlines, and every 97 bytes."""
    cuts = list(range(0, len(body), 97))
    for marker in (b"data: ", b"\n\n"):
        at = body.find(marker, 10)
        cuts += [at + 1, at + 2, at + len(marker)]
    return cuts


@pytest.mark.parametrize("framing", ["chunked", "close"])
@pytest.mark.parametrize("name", SSE_FIXTURES)
def test_fixture_streams_split_at_awkward_boundaries(name: str, framing: str, server: ScriptedServer,
                                                      make_client: Any) -> None:
    body = fixture_bytes(name)
    server.add(CHAT, Reply(200, body, content_type=SSE, framing=framing, pieces=split_at(body, awkward_cuts(body))))
    pieces: list[str] = []
    result = make_client().stream_chat(PAYLOAD, on_text=pieces.append)
    expected = run_stream(body)
    assert result.ended == "done" and result.content == expected.content and result.usage == expected.usage
    assert "".join(pieces) == (expected.text or "")
    request = server.requests[0]
    assert json.loads(request.body)["stream"] is True and request.headers["Accept"] == SSE


UNICODE_TEXT = "h\u00e9llo \u65e5\u672c\u8a9e \U0001F389!"


def unicode_stream() -> bytes:
    pieces = [UNICODE_TEXT[:3], UNICODE_TEXT[3:9], UNICODE_TEXT[9:]]
    body = b": connected\r\n\r\n"
    for piece in pieces:
        chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        body += b"data:" + json.dumps(chunk, ensure_ascii=False).encode() + b"\r\n\r\n"
    body += b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\n\r\ndata: [DONE]\r\n\r\n'
    return body


def test_split_inside_utf8_characters_and_crlf(server: ScriptedServer, make_client: Any) -> None:
    body = unicode_stream()
    multibyte = [i for i in range(len(body)) if body[i] >= 0x80 and body[i - 1] >= 0x80]  # inside a character
    crlf = [i + 1 for i in range(len(body) - 1) if body[i:i + 2] == b"\r\n"]  # between CR and LF
    server.add(CHAT, Reply(200, body, content_type=SSE, framing="chunked", delay=0.002,
                           pieces=split_at(body, multibyte + crlf)))
    pieces: list[str] = []
    result = make_client().stream_chat(PAYLOAD, on_text=pieces.append)
    assert result.text == UNICODE_TEXT and "".join(pieces) == UNICODE_TEXT


def test_text_is_handed_on_before_the_stream_ends(server: ScriptedServer, make_client: Any) -> None:
    body = fixture_bytes("sse_vllm_continuous_usage.txt")
    gate = threading.Event()
    reply = Reply(200, body, content_type=SSE, framing="chunked", pieces=split_at(body, [body.find(b"\n\n", 400) + 2]),
                  gate=gate, gate_after=1)
    server.add(CHAT, reply)

    def on_text(piece: str) -> None:
        gate.set()  # the server sends the rest only once the first text reached us

    assert make_client().stream_chat(PAYLOAD, on_text=on_text).ok
    assert reply.gate_opened == [True]


def test_slow_stream_within_the_read_timeout(server: ScriptedServer, make_client: Any) -> None:
    body = fixture_bytes("sse_openai_refusal.txt")
    pieces = split_at(body, [m + 2 for m in range(len(body)) if body[m:m + 2] == b"\n\n"])
    server.add(CHAT, Reply(200, body, content_type=SSE, framing="chunked", pieces=pieces, delay=0.08))
    started = time.monotonic()
    result = make_client(timeout=0.5).stream_chat(PAYLOAD)
    assert time.monotonic() - started > 0.5  # longer in all than the read timeout, never idle that long
    assert result.content.no_text is NoText.REFUSAL


def test_stall_past_the_read_timeout(server: ScriptedServer, make_client: Any) -> None:
    body = fixture_bytes("sse_openai_basic_usage.txt")
    cut = body.find(b"\n\n", 600) + 2
    server.add(CHAT, Reply(200, body, content_type=SSE, framing="chunked", pieces=split_at(body, [cut]),
                           stall_after=1))
    pieces: list[str] = []
    started = time.monotonic()
    with pytest.raises(ReadTimeout, match="stalled") as caught:
        make_client(timeout=0.3).stream_chat(PAYLOAD, on_text=pieces.append)
    assert time.monotonic() - started < 3
    partial = caught.value.partial
    assert partial.ended == "interrupted" and not partial.ok and partial.text == "".join(pieces) != ""
    assert f"after {len(partial.text)} characters" in str(caught.value)


def test_no_reply_within_the_read_timeout(server: ScriptedServer, make_client: Any) -> None:
    server.add(CHAT, Reply(200, b"{}", pieces=[b"", b"{}"], stall_after=0))
    with pytest.raises(ReadTimeout, match="no reply within 0.3 s"):
        make_client(timeout=0.3).chat(PAYLOAD)


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_connection_dropped_mid_stream(framing: str, server: ScriptedServer, make_client: Any) -> None:
    body = fixture_bytes("sse_openai_basic_usage.txt")
    server.add(CHAT, Reply(200, body, content_type=SSE, framing=framing,
                           pieces=split_at(body, [900, 1500]), drop_after=2))
    with pytest.raises(StreamInterrupted) as caught:
        make_client().stream_chat(PAYLOAD)
    assert caught.value.partial.ended == "interrupted" and caught.value.partial.text


def test_close_without_done(server: ScriptedServer, make_client: Any) -> None:
    body = fixture_bytes("sse_openai_basic_usage.txt")
    finished = body[: body.index(b"data: [DONE]")]  # transformers serve: closes after the last chunk
    before_finish = body[: body.index(b'"finish_reason":"stop"')]
    before_finish = before_finish[: before_finish.rindex(b"data:")]
    server.add(CHAT, Reply(200, finished, content_type=SSE, framing="close"),
               Reply(200, before_finish, content_type=SSE, framing="close"))
    client = make_client()
    result = client.stream_chat(PAYLOAD)
    assert result.ended == "closed" and result.ok and result.usage.total_tokens == 44
    with pytest.raises(StreamInterrupted, match="without \\[DONE\\] or a finish_reason"):
        client.stream_chat(PAYLOAD)


def test_error_events_mid_stream(server: ScriptedServer, make_client: Any) -> None:
    first = b'data: {"choices":[{"index":0,"delta":{"content":"Par"},"finish_reason":null}]}\n\n'
    vllm = first + b'data: {"error": {"object": "error", "message": "boom", "type": "X", "code": 500}}\n\ndata: [DONE]\n\n'
    llama = first + b'error: {"code":500,"message":"slot gone","type":"server_error"}\n\n'
    tgi = fixture_bytes("sse_tgi_error_midstream_v2_1.txt")
    for body in (vllm, llama, tgi):
        server.add(CHAT, Reply(200, body, content_type=SSE, framing="chunked", pieces=split_at(body, [len(first)])))
    client = make_client()
    for message in ("boom", "slot gone", "Input validation error"):
        with pytest.raises(StreamErrorEvent, match=message) as caught:
            client.stream_chat(PAYLOAD)
        assert caught.value.partial.ended == "error" and caught.value.partial.text in ("Par", "Both")


def test_json_where_a_stream_was_expected(server: ScriptedServer, make_client: Any) -> None:
    server.add(
        CHAT,
        Reply(429, b'{"error": {"message": "litellm.RateLimitError: mock", "code": "429"}}'),
        Reply(429, b'{"error": {"message": "litellm.RateLimitError: mock", "code": "429"}}'),
        Reply(429, b'{"error": {"message": "litellm.RateLimitError: mock", "code": "429"}}'),
        Reply(200, b'{"error": {"message": "upstream failed"}}'),
        Reply(200, fixture_bytes("openai_basic.json")),
        Reply(200, b"<html><title>Sign in</title></html>", content_type="text/html"),
        Reply(200, b"", content_type=SSE),
        Reply(200, b'{"error": {"message": "mislabelled"}}', content_type=SSE),
    )
    client = make_client()
    with pytest.raises(HTTPStatusError, match="RateLimitError"):
        client.stream_chat(PAYLOAD)
    with pytest.raises(APIError, match="upstream failed"):
        client.stream_chat(PAYLOAD)
    with pytest.raises(NotAnEventStream, match="application/json.*try --no-stream"):
        client.stream_chat(PAYLOAD)
    with pytest.raises(NotAnEventStream, match="text/html: <html><title>Sign in"):
        client.stream_chat(PAYLOAD)
    with pytest.raises(NotAnEventStream):
        client.stream_chat(PAYLOAD)
    with pytest.raises(APIError, match="mislabelled"):  # an error body labelled as a stream
        client.stream_chat(PAYLOAD)


def test_stream_retries_before_the_body(server: ScriptedServer, make_client: Any, sleeps: list[float]) -> None:
    body = fixture_bytes("sse_openai_refusal.txt")
    server.add(CHAT, Reply(503, b""), Reply(200, body, content_type=SSE))
    assert make_client().stream_chat(PAYLOAD).ok and sleeps == [0.5]
