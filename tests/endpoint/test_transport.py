"""EndpointClient against a real HTTP server on 127.0.0.1 serving recorded bodies byte for byte."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from cli.endpoint._errors import (
    AuthenticationError,
    ContextLengthExceeded,
    HTTPStatusError,
    InvalidEndpointURL,
    InvalidResponse,
    InvalidToken,
    UnexpectedEventStream,
)
from cli.endpoint._response import parse_chat_response
from cli.endpoint._transport import EndpointClient

from .conftest import fixture_bytes
from .server import Reply, ScriptedServer, split_at
from .test_fixtures import EXPECT

CHAT = "/v1/chat/completions"
PAYLOAD = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
SSE = "text/event-stream"


JSON_FIXTURES = sorted(n for n in EXPECT if n.endswith(".json") and n != "tgi_stream_tool_call_legacy_v2_0_chunk.json")


@pytest.mark.parametrize("name", JSON_FIXTURES)
def test_chat_gives_each_fixture_its_outcome(name: str, server: ScriptedServer, make_client: Any) -> None:
    body = fixture_bytes(name)
    if EXPECT[name][0] == "reject":
        server.add(CHAT, Reply(404, body))
        with pytest.raises(HTTPStatusError, match="does not exist"):
            make_client().chat(PAYLOAD)
        return
    server.add(CHAT, Reply(200, body, framing="chunked", pieces=split_at(body, [1, 17, len(body) // 2])))
    result = make_client().chat(PAYLOAD)
    expected = parse_chat_response(body)
    assert result.content == expected.content and result.body == expected.body


def test_request_shape_headers_and_no_token(server: ScriptedServer, make_client: Any) -> None:
    server.add(CHAT, Reply(200, fixture_bytes("vllm_basic_v0_6.json")))
    make_client().chat({**PAYLOAD, "stream": True, "temperature": 0})
    request = server.requests[0]
    assert (request.method, request.path) == ("POST", CHAT)
    assert json.loads(request.body) == {**PAYLOAD, "stream": False, "temperature": 0}
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("bai-chat/")
    assert "Authorization" not in request.headers


def test_bearer_token_only_when_set(server: ScriptedServer, make_client: Any) -> None:
    for _ in range(2):
        server.add(CHAT, Reply(200, fixture_bytes("vllm_basic_v0_6.json")))
    make_client(token="  tok-123 ").chat(PAYLOAD)
    make_client(token="").chat(PAYLOAD)
    assert server.requests[0].headers["Authorization"] == "Bearer tok-123"
    assert "Authorization" not in server.requests[1].headers


@pytest.mark.parametrize(("base", "path"), [
    ("{u}", CHAT), ("{u}/", CHAT), ("{u}/v1", CHAT), ("{u}/v1/", CHAT), ("{u}/v1/chat/completions", CHAT),
    ("{u}/v1/chat/completions/", CHAT), ("{u}/proxy/abc//", "/proxy/abc/v1/chat/completions"),
    ("{u}/proxy/abc/v1?api-version=2", "/proxy/abc/v1/chat/completions?api-version=2"),
])
def test_url_joining(base: str, path: str, server: ScriptedServer, make_client: Any) -> None:
    server.add(path, Reply(200, fixture_bytes("vllm_basic_v0_6.json")))
    assert make_client(base.format(u=server.url)).chat(PAYLOAD).text
    assert server.requests[0].path == path


@pytest.mark.parametrize("base", ["127.0.0.1:8000", "ftp://h/", "http://", "http://h:99999/"])
def test_invalid_base_url(base: str) -> None:
    with pytest.raises(InvalidEndpointURL):
        EndpointClient(base)


def test_invalid_token_is_refused_without_showing_it() -> None:
    with pytest.raises(InvalidToken) as caught:
        EndpointClient("http://127.0.0.1:1", token="abc\ndef", deployment="d1")
    assert "abc" not in str(caught.value) and "chat-config set d1 --token - (or BAI_TOKEN for one call)" in str(caught.value)


def test_models_with_max_model_len(server: ScriptedServer, make_client: Any) -> None:
    body = b'{"object":"list","data":[{"id":"meta-llama/Llama-3.1-8B","object":"model","max_model_len":8192}]}'
    server.add("/proxy/v1/models", Reply(200, body))
    models = make_client(server.url + "/proxy/v1/chat/completions").list_models()
    assert models.first_id == "meta-llama/Llama-3.1-8B" and models.max_model_len() == 8192
    assert server.requests[0].method == "GET"


def test_models_single_object_and_errors(server: ScriptedServer, make_client: Any) -> None:
    server.add("/v1/models", Reply(200, b'{"id": "tgi-model", "object": "model"}'),
               Reply(401, b'{"detail": "Not authenticated"}'), Reply(200, b'{"data": "nope"}'))
    client = make_client()
    assert client.list_models().first_id == "tgi-model"
    with pytest.raises(AuthenticationError):
        client.list_models()
    with pytest.raises(InvalidResponse, match="not a model list"):
        client.list_models()


def test_token_never_appears_even_when_echoed(server: ScriptedServer, make_client: Any) -> None:
    token = "sk-live-0123456789abcdef"
    server.add(CHAT, Reply(401, json.dumps({"error": {"message": f"Invalid key {token}"}}).encode()),
               Reply(500, (f"crash with {token} " * 40).encode(), content_type="text/plain"),
               Reply(200, f"<html>{token}</html>".encode(), content_type="text/html"))
    client = make_client(token=token, deployment="dep-9")
    with pytest.raises(AuthenticationError) as auth:
        client.chat(PAYLOAD)
    assert token not in str(auth.value) and "Invalid key ***" in str(auth.value)
    assert "bai deployment chat-config set dep-9 --token - (or BAI_TOKEN for one call)" in str(auth.value)
    with pytest.raises(HTTPStatusError) as crash:
        client.chat(PAYLOAD)
    assert token not in str(crash.value) and "crash with ***" in str(crash.value)
    with pytest.raises(InvalidResponse) as bad:
        client.chat(PAYLOAD)
    assert token not in str(bad.value) and token not in (bad.value.excerpt or "")


def test_token_cut_by_message_length_leaves_no_prefix(server: ScriptedServer, make_client: Any) -> None:
    token = "sk-live-0123456789abcdef"
    text = "x" * 290 + token  # the message is cut at 300 characters, inside the token
    server.add(CHAT, Reply(400, json.dumps({"error": {"message": text}}).encode()))
    with pytest.raises(HTTPStatusError) as caught:
        make_client(token=token).chat(PAYLOAD)
    assert "sk-live" not in str(caught.value)


def test_context_length_error_over_http(server: ScriptedServer, make_client: Any) -> None:
    body = (b'{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it",'
            b'"type":"exceed_context_size_error","n_prompt_tokens":2100,"n_ctx":2048}}')
    server.add(CHAT, Reply(400, body))
    with pytest.raises(ContextLengthExceeded) as caught:
        make_client().chat(PAYLOAD)
    assert (caught.value.prompt_tokens, caught.value.context_window) == (2100, 2048)


def test_non_json_200_and_sse_where_json_expected(server: ScriptedServer, make_client: Any) -> None:
    server.add(CHAT, Reply(200, b"OK", content_type="text/plain"),
               Reply(200, fixture_bytes("sse_openai_refusal.txt"), content_type=SSE))
    client = make_client()
    with pytest.raises(InvalidResponse, match=r"HTTP 200 but not JSON \(text/plain\): OK"):
        client.chat(PAYLOAD)
    with pytest.raises(UnexpectedEventStream):
        client.chat(PAYLOAD)


def test_redirect_is_not_followed(server: ScriptedServer, make_client: Any) -> None:
    server.add(CHAT, Reply(307, b"", headers={"Location": "https://user:pw@elsewhere/v1/chat/completions?k=1"}))
    with pytest.raises(HTTPStatusError) as caught:
        make_client().chat(PAYLOAD)
    assert "redirected to https://elsewhere/v1/chat/completions" in str(caught.value)
    assert "pw" not in str(caught.value) and len(server.requests) == 1


# Retries ----------------------------------------------------------------------------------------

OK = fixture_bytes("vllm_basic_v0_6.json")


def test_retries_429_and_503_with_backoff(server: ScriptedServer, make_client: Any, sleeps: list[float]) -> None:
    server.add(CHAT, Reply(429, b'{"error": {"message": "slow down"}}'), Reply(503, b"busy"), Reply(200, OK))
    assert make_client().chat(PAYLOAD).text
    assert sleeps == [0.5, 1.0] and len(server.requests) == 3


def test_retry_after_is_honoured(server: ScriptedServer, make_client: Any, sleeps: list[float]) -> None:
    server.add(CHAT, Reply(429, b"", headers={"Retry-After": "3"}), Reply(200, OK))
    assert make_client().chat(PAYLOAD).text and sleeps == [3.0]


def test_retries_are_bounded(server: ScriptedServer, make_client: Any, sleeps: list[float]) -> None:
    server.add(CHAT, *[Reply(503, b"Service Unavailable", content_type="text/plain")] * 5)
    with pytest.raises(HTTPStatusError, match="gave up after 3 attempts") as caught:
        make_client().chat(PAYLOAD)
    assert caught.value.status == 503 and len(server.requests) == 3 and len(sleeps) == 2


def test_long_retry_after_is_not_waited_for(server: ScriptedServer, make_client: Any, sleeps: list[float]) -> None:
    server.add(CHAT, Reply(429, b"", headers={"Retry-After": "120"}))
    with pytest.raises(HTTPStatusError, match="retry after 120 s"):
        make_client().chat(PAYLOAD)
    assert sleeps == [] and len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 404, 500, 502, 504])
def test_other_statuses_are_not_retried(status: int, server: ScriptedServer, make_client: Any,
                                        sleeps: list[float]) -> None:
    server.add(CHAT, Reply(status, b"no"), Reply(200, OK))
    with pytest.raises(HTTPStatusError):
        make_client().chat(PAYLOAD)
    assert len(server.requests) == 1 and sleeps == []


def test_real_sleep_is_used_by_default(server: ScriptedServer) -> None:
    server.add(CHAT, Reply(429, b"", headers={"Retry-After": "0.2"}), Reply(200, OK))
    with EndpointClient(server.url, timeout=5, connect_timeout=2) as client:
        started = time.monotonic()
        assert client.chat(PAYLOAD).text
        assert time.monotonic() - started >= 0.2


def test_body_size_limits(server: ScriptedServer, make_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import cli.endpoint._transport

    server.add(CHAT, Reply(500, b"E" * 200_000, content_type="text/plain", framing="chunked",
                           pieces=[b"E" * 100_000] * 2),
               Reply(200, OK))
    with pytest.raises(HTTPStatusError) as caught:
        make_client().chat(PAYLOAD)
    assert len(str(caught.value)) < 400
    monkeypatch.setattr(cli.endpoint._transport, "MAX_BODY", 100)
    with pytest.raises(InvalidResponse, match="the reply is larger than"):
        make_client().chat(PAYLOAD)
