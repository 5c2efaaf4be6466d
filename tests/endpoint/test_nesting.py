"""Deeply nested JSON from a server (issue 9, item 2): 100,000 levels in /props, /v1/models, an
error body, a reply, a stream chunk or a stream error event is a one-line endpoint error (or,
for the optional /props, no answer), never RecursionError."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from cli.endpoint._errors import EndpointError, HTTPStatusError, InvalidResponse, StreamErrorEvent
from cli.endpoint._wire import MAX_DEPTH, decode_json

from .server import Reply, ScriptedServer
from .test_transport import CHAT, PAYLOAD, SSE

DEEP = 100_000


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _one_line(error: EndpointError) -> str:
    text = str(error)
    assert "\n" not in text and len(text) < 1000 and "Recursion" not in text, text
    return text


@pytest.mark.parametrize("body", [nested(DEEP), deep_object(DEEP), b'{"default_generation_settings":' + nested(DEEP) + b"}"])
def test_props(server: ScriptedServer, make_client: Any, body: bytes) -> None:
    server.add("/props", Reply(200, body))
    assert make_client().context_size() is None  # optional: bai goes on without it


def test_models(server: ScriptedServer, make_client: Any) -> None:
    server.add("/v1/models", Reply(200, b'{"data":' + nested(DEEP) + b"}"))
    with pytest.raises(InvalidResponse) as caught:
        make_client().list_models()
    assert "nested too deeply" in _one_line(caught.value)


@pytest.mark.parametrize("body", [
    b'{"error":{"message":' + nested(DEEP) + b"}}",
    b'{"error":' + deep_object(DEEP) + b"}",
    nested(DEEP),
])
def test_error_body(server: ScriptedServer, make_client: Any, body: bytes) -> None:
    server.add(CHAT, Reply(400, body))
    with pytest.raises(HTTPStatusError) as caught:
        make_client().chat(PAYLOAD)
    assert _one_line(caught.value).startswith("HTTP 400")


@pytest.mark.parametrize("body", [
    nested(DEEP),
    b'{"choices":[{"index":0,"message":{"content":"hi","tool_calls":[{"function":{"name":"f","arguments":'
    + deep_object(DEEP) + b"}}]}}]}",
    b'{"choices":[{"index":0,"message":{"content":"hi"}}],"usage":' + deep_object(500) + b"}",
])
def test_reply(server: ScriptedServer, make_client: Any, body: bytes) -> None:
    server.add(CHAT, Reply(200, body))
    with pytest.raises(InvalidResponse) as caught:
        make_client().chat(PAYLOAD)
    assert "nested too deeply" in _one_line(caught.value)


@pytest.mark.parametrize("event", [
    b"data: " + nested(DEEP) + b"\n\n",
    b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":' + deep_object(DEEP) + b"}\n\n",
    b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"timings":' + nested(500) + b"}\n\n",
])
def test_stream_chunk(server: ScriptedServer, make_client: Any, event: bytes) -> None:
    server.add(CHAT, Reply(200, event + b"data: [DONE]\n\n", content_type=SSE))
    with pytest.raises(InvalidResponse) as caught:
        make_client().stream_chat(PAYLOAD)
    assert "nested too deeply" in _one_line(caught.value)


def test_stream_error_event(server: ScriptedServer, make_client: Any) -> None:
    event = b'data: {"error":{"message":' + nested(DEEP) + b"}}\n\n"
    server.add(CHAT, Reply(200, event, content_type=SSE))
    with pytest.raises((StreamErrorEvent, InvalidResponse)) as caught:
        make_client().stream_chat(PAYLOAD)
    _one_line(caught.value)


def test_the_depth_bound() -> None:
    assert decode_json(nested(MAX_DEPTH - 1)) is not None
    assert decode_json(b'["' + b"[" * 1000 + b'"]') == ["[" * 1000]  # brackets in strings do not count
    assert decode_json(b'["\\"[[[' + b"[" * 1000 + b'"]')[0].startswith('"[')
    for body in (nested(MAX_DEPTH + 1), deep_object(MAX_DEPTH + 1), nested(DEEP)):
        with pytest.raises(msgspec.DecodeError, match="nested too deeply"):
            decode_json(body)
