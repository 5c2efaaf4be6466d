"""EndpointClient against real servers (llama-server with Gemma 3 270M, the LiteLLM proxy), and
the stale keep-alive connection llama-server leaves behind, reproduced on the local server.

Gemma 270M is a base model: assertions are on protocol shape, finish_reason and usage, never on
its text; every request to it carries a small max_tokens. LiteLLM's mock text is exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import cli.endpoint._transport as transport
from cli.endpoint._content import NoText
from cli.endpoint._errors import (
    APIError,
    AuthenticationError,
    ConnectionLost,
    ContextLengthExceeded,
    HTTPStatusError,
    PlainHTTPServer,
)
from cli.endpoint._limits import RetryPolicy
from cli.endpoint._transport import EndpointClient
from tests.realservers.fixtures import LLAMA_TEST_API_KEY
from tests.realservers.servers import LITELLM_MOCK_MODELS, MOCK_ECHO_TEXT

from .server import Reply, ScriptedServer
from .test_transport import CHAT, PAYLOAD, SSE

MODES = ["chat", "stream"]


def ask(srv: Any, content: str = "Say hello.", max_tokens: int = 8, **extra: Any) -> dict[str, Any]:
    return {"model": srv.model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
            **extra}


def call(client: EndpointClient, mode: str, payload: dict[str, Any]) -> Any:
    return client.chat(payload) if mode == "chat" else client.stream_chat(payload)


@pytest.fixture
def connect() -> Iterator[Callable[..., EndpointClient]]:
    """EndpointClient factory with timeouts a test can live with, all closed afterwards."""
    clients: list[EndpointClient] = []

    def make(base_url: str, token: str | None = None, **kwargs: Any) -> EndpointClient:
        kwargs.setdefault("timeout", 60.0)
        kwargs.setdefault("connect_timeout", 5.0)
        client = EndpointClient(base_url, token, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def assert_usage(usage: Any, max_completion: int) -> None:
    assert usage is not None
    assert usage.prompt_tokens and usage.prompt_tokens > 0
    assert usage.completion_tokens is not None and 0 < usage.completion_tokens <= max_completion
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def assert_text_or_reason(result: Any) -> None:
    """A base model may answer with whitespace only: then NoText must say so."""
    if result.text is None:
        assert isinstance(result.content.no_text, NoText) and result.content.explain()
    else:
        assert result.text.strip() and result.content.no_text is None


# llama-server -------------------------------------------------------------------------------


def test_llama_chat_parses_with_usage_and_extras(llama_server: Any, connect: Any) -> None:
    result = connect(llama_server.base_url).chat(ask(llama_server))
    assert result.finish_reason in ("length", "stop")
    assert_text_or_reason(result)
    assert_usage(result.usage, 8)
    assert result.model == "gemma-3-270m"
    # llama.cpp's own fields survive in .body for whoever wants them
    assert isinstance(result.body.get("timings"), dict) and "predicted_n" in result.body["timings"]
    assert result.body["object"] == "chat.completion"


def test_llama_stream_pieces_make_the_text_and_usage_comes_last(llama_server: Any, connect: Any) -> None:
    pieces: list[str] = []
    result = connect(llama_server.base_url).stream_chat(
        ask(llama_server, stream_options={"include_usage": True}), on_text=pieces.append)
    assert result.ended == "done" and result.ok
    assert result.finish_reason in ("length", "stop")
    assert "".join(pieces) == (result.content.content or "")
    assert_text_or_reason(result)
    assert_usage(result.usage, 8)
    assert result.chunks >= 2 and isinstance(result.body.get("timings"), dict)


def test_llama_list_models(llama_server: Any, connect: Any) -> None:
    models = connect(llama_server.base_url).list_models()
    assert models.first_id == "gemma-3-270m"
    assert [card.id for card in models.data] == ["gemma-3-270m"]


@pytest.mark.parametrize("mode", MODES)
def test_llama_without_a_token_says_how_to_set_one(mode: str, llama_server_with_key: Any, connect: Any) -> None:
    client = connect(llama_server_with_key.base_url, deployment="gemma-local")
    with pytest.raises(AuthenticationError) as caught:
        call(client, mode, ask(llama_server_with_key))
    error = caught.value
    message = str(error)
    assert error.status == 401 and not error.token_sent and error.attempts == 1
    assert "the endpoint wants a token" in message
    assert "bai deployment chat-config set gemma-local --token" in message
    assert LLAMA_TEST_API_KEY not in message and "Bearer" not in message and "\n" not in message


@pytest.mark.parametrize("mode", [*MODES, "models"])
def test_llama_wrong_token_is_refused_and_never_shown(mode: str, llama_server_with_key: Any, connect: Any) -> None:
    wrong = "sk-wrong-7f3a9c1e5b"
    client = connect(llama_server_with_key.base_url, wrong)
    with pytest.raises(AuthenticationError) as caught:
        client.list_models() if mode == "models" else call(client, mode, ask(llama_server_with_key))
    error = caught.value
    assert error.status == 401 and error.token_sent
    assert "the token was refused" in str(error) and "chat-config set ID --token" in str(error)
    for shown in (str(error), repr(error), error.message, error.info.message):
        assert wrong not in shown and LLAMA_TEST_API_KEY not in shown


def test_llama_right_token_is_accepted(llama_server_with_key: Any, connect: Any) -> None:
    client = connect(llama_server_with_key.base_url, llama_server_with_key.api_key)
    assert client.list_models().first_id == "gemma-3-270m"  # /v1/models needs the key too


def test_llama_over_https_is_said_to_be_plain_http(llama_server: Any, connect: Any) -> None:
    # Issue 12, item 10: llama-server waits on a ClientHello; bai used to time out connecting.
    url = llama_server.base_url.replace("http://", "https://")
    with pytest.raises(PlainHTTPServer, match="answers in plain HTTP, not TLS: use http://"):
        call(connect(url, connect_timeout=30.0), "chat", ask(llama_server))


def test_llama_context_overflow_streamed_or_not(llama_server_small_ctx: Any, connect: Any) -> None:
    client = connect(llama_server_small_ctx.base_url)
    errors = []
    for mode in MODES:
        with pytest.raises(ContextLengthExceeded) as caught:
            call(client, mode, ask(llama_server_small_ctx, "hello world " * 400))
        error = caught.value
        assert error.status == 400 and error.is_context_length and error.attempts == 1
        assert error.context_window == 512
        assert error.prompt_tokens is not None and error.prompt_tokens > 512
        assert "window 512" in str(error) and "\n" not in str(error)
        assert error.info.type == "exceed_context_size_error"
        errors.append(error)
    assert str(errors[0]) == str(errors[1])  # llama answers a stream request with plain JSON too


# LiteLLM ------------------------------------------------------------------------------------


def test_litellm_mock_echo_whole(litellm_server: Any, connect: Any) -> None:
    client = connect(litellm_server.base_url, litellm_server.api_key)
    result = client.chat({"model": "mock-echo", "messages": [{"role": "user", "content": "hi"}]})
    assert result.text == MOCK_ECHO_TEXT and result.finish_reason == "stop"
    assert result.usage is not None and result.usage.total_tokens


def test_litellm_mock_echo_streamed_in_three_character_deltas(litellm_server: Any, connect: Any) -> None:
    client = connect(litellm_server.base_url, litellm_server.api_key)
    pieces: list[str] = []
    result = client.stream_chat({"model": "mock-echo", "messages": [{"role": "user", "content": "hi"}],
                                 "stream_options": {"include_usage": True}}, on_text=pieces.append)
    assert result.ended == "done" and result.text == MOCK_ECHO_TEXT and result.finish_reason == "stop"
    assert "".join(pieces) == MOCK_ECHO_TEXT
    assert all(len(piece) == 3 for piece in pieces[:-1]) and 1 <= len(pieces[-1]) <= 3
    # LiteLLM's usage chunk has `choices: [{"index": 0, "delta": {}}]`: it must add no text
    assert result.usage is not None and result.usage.total_tokens


@pytest.mark.parametrize("mode", MODES)
def test_litellm_rate_limit_is_retried_then_reported(mode: str, litellm_server: Any, connect: Any,
                                                     recording_proxy: Any) -> None:
    proxy = recording_proxy(litellm_server)
    waits: list[float] = []
    retry = RetryPolicy(attempts=3, backoff=0.01, max_wait=0.05, sleep=waits.append)
    client = connect(proxy.base_url, litellm_server.api_key, retry=retry)
    with pytest.raises(HTTPStatusError) as caught:
        call(client, mode, {"model": "mock-ratelimit", "messages": [{"role": "user", "content": "hi"}]})
    error = caught.value
    assert error.status == 429 and error.attempts == 3 and "gave up after 3 attempts" in str(error)
    assert waits == [0.01, 0.02]
    assert [r.status for r in proxy.requests] == [429, 429, 429]
    assert "RateLimitError" in str(error) and "\n" not in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_litellm_internal_error_is_not_retried(mode: str, litellm_server: Any, connect: Any,
                                               recording_proxy: Any) -> None:
    proxy = recording_proxy(litellm_server)
    waits: list[float] = []
    client = connect(proxy.base_url, litellm_server.api_key, retry=RetryPolicy(backoff=0.01, sleep=waits.append))
    with pytest.raises(HTTPStatusError) as caught:
        call(client, mode, {"model": "mock-internal", "messages": [{"role": "user", "content": "hi"}]})
    error = caught.value
    assert type(error) is HTTPStatusError and error.status == 500 and error.attempts == 1
    assert waits == [] and len(proxy.requests) == 1
    assert "InternalServerError" in str(error) and "\n" not in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_litellm_context_window_error(mode: str, litellm_server: Any, connect: Any) -> None:
    client = connect(litellm_server.base_url, litellm_server.api_key)
    with pytest.raises(APIError) as caught:
        call(client, mode, {"model": "mock-context", "messages": [{"role": "user", "content": "hi"}]})
    error = caught.value
    assert error.status == 400 and error.is_context_length
    assert isinstance(error, ContextLengthExceeded)  # LiteLLM names no numbers: all None
    assert "does not fit the model's context window" in str(error) and "\n" not in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_litellm_unknown_model(mode: str, litellm_server: Any, connect: Any) -> None:
    client = connect(litellm_server.base_url, litellm_server.api_key)
    assert "no-such-model" not in LITELLM_MOCK_MODELS
    with pytest.raises(HTTPStatusError) as caught:
        call(client, mode, {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]})
    error = caught.value
    assert type(error) is HTTPStatusError and error.status == 400 and not error.is_context_length
    message = str(error)
    assert message.startswith(f"HTTP 400 Bad Request from {litellm_server.base_url}/chat/completions: ")
    assert "Invalid model name passed in model=no-such-model" in message
    assert "\n" not in message and len(message) <= 400


def test_litellm_errors_on_stream_requests_are_plain_json_and_map_alike(litellm_server: Any, connect: Any,
                                                                         recording_proxy: Any) -> None:
    proxy = recording_proxy(litellm_server)
    client = connect(proxy.base_url, litellm_server.api_key, retry=RetryPolicy(attempts=1))
    for model in ("mock-ratelimit", "mock-internal", "mock-context", "no-such-model"):
        seen = []
        for mode in MODES:
            with pytest.raises(APIError) as caught:
                call(client, mode, {"model": model, "messages": [{"role": "user", "content": "hi"}]})
            seen.append((type(caught.value), caught.value.status, str(caught.value)))
            record = proxy.last()
            assert record.json["stream"] is (mode == "stream")
            # the quirk this relies on: not an event stream, even though one was asked for
            assert record.response_headers.get("content-type", "").startswith("application/json")
        assert seen[0] == seen[1], model


# The stale keep-alive connection --------------------------------------------------------------
#
# llama-server closes the connection after every streamed reply although it sent
# `Keep-Alive: timeout=5`; a request sent on that pooled connection before the close arrives gets
# no response at all. The local server reproduces this deterministically: it reads the next
# request on the connection and hangs up without answering.

KEEP_ALIVE = {"Keep-Alive": "timeout=5, max=100"}
# Ends with a finish_reason and the end of the body, no [DONE]: read to the end, so the
# connection goes back to the pool (after [DONE] the client drops it unread).
STREAM = b"".join(
    b"data: " + json.dumps(chunk).encode() + b"\n\n"
    for chunk in (
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
    )
)
ANSWER = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "again"},
                                  "finish_reason": "stop"}]}).encode()


def streamed() -> Reply:
    return Reply(200, STREAM, content_type=SSE, framing="chunked", headers=KEEP_ALIVE)


def answered(mode: str) -> Reply:
    return streamed() if mode == "stream" else Reply(200, ANSWER, headers=KEEP_ALIVE)


@pytest.mark.parametrize("hang_up", ["close", "reset"])
@pytest.mark.parametrize("second", MODES)
def test_a_connection_closed_after_a_stream_is_retried_on_a_new_one(
        hang_up: str, second: str, server: ScriptedServer, make_client: Any) -> None:
    server.add(CHAT, streamed(), Reply(hang_up=hang_up), answered(second))
    client = make_client()
    first = client.stream_chat(PAYLOAD)
    assert first.ended == "closed" and first.text == "Hello"
    result = call(client, second, PAYLOAD)
    assert result.text == ("Hello" if second == "stream" else "again")
    stream, dropped, retried = server.requests
    assert dropped.port == stream.port  # the pooled connection was reused, and failed
    assert retried.port != stream.port  # the retry opened a new one
    assert retried.body == dropped.body


@pytest.mark.parametrize("hang_up", ["close", "reset"])
def test_without_the_retry_the_failure_reproduces(hang_up: str, server: ScriptedServer, make_client: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Shows the test above exercises the real failure, not a path that never breaks.
    monkeypatch.setattr(transport, "STALE_CONNECTION_RETRIES", 0)
    server.add(CHAT, streamed(), Reply(hang_up=hang_up))
    client = make_client()
    client.stream_chat(PAYLOAD)
    reason = "Server disconnected without sending a response" if hang_up == "close" else "reset by peer"
    with pytest.raises(ConnectionLost, match=reason):
        client.chat(PAYLOAD)


def test_an_idle_connection_closed_between_whole_replies_is_retried(server: ScriptedServer,
                                                                     make_client: Any) -> None:
    # The same race at the keep-alive timeout, between two non-streamed turns.
    server.add(CHAT, answered("chat"), Reply(hang_up="close"), answered("chat"))
    client = make_client()
    assert client.chat(PAYLOAD).text == client.chat(PAYLOAD).text == "again"
    assert len(server.requests) == 3 and len({r.port for r in server.requests}) == 2


def test_a_new_connection_closed_unanswered_is_not_retried(server: ScriptedServer, make_client: Any) -> None:
    # Nothing was pooled: the server itself hung up on this request, so that is the answer.
    server.add(CHAT, Reply(hang_up="close"), answered("chat"))
    with pytest.raises(ConnectionLost, match="without sending a response"):
        make_client().chat(PAYLOAD)
    assert len(server.requests) == 1


def test_the_retry_happens_once(server: ScriptedServer, make_client: Any, sleeps: list[float]) -> None:
    server.add(CHAT, streamed(), Reply(hang_up="close"), Reply(hang_up="close"), answered("chat"))
    client = make_client()
    client.stream_chat(PAYLOAD)
    with pytest.raises(ConnectionLost):
        client.chat(PAYLOAD)
    assert len(server.requests) == 3 and sleeps == []
    assert client.chat(PAYLOAD).text == "again"  # the client is still usable


def test_stale_retries_do_not_use_up_the_429_attempts(server: ScriptedServer, make_client: Any,
                                                       sleeps: list[float]) -> None:
    limited = Reply(429, b'{"error": {"message": "slow down"}}', headers=KEEP_ALIVE)
    server.add(CHAT, streamed(), Reply(hang_up="close"), limited, limited, answered("chat"))
    client = make_client()
    client.stream_chat(PAYLOAD)
    assert client.chat(PAYLOAD).text == "again"
    assert len(sleeps) == 2 and len(server.requests) == 5


def test_llama_twenty_streams_through_one_client(llama_server: Any, connect: Any) -> None:
    client = connect(llama_server.base_url, timeout=30.0)
    payload = ask(llama_server, max_tokens=4)
    results = [client.stream_chat(payload) for _ in range(20)]
    assert all(r.ended == "done" and r.finish_reason in ("length", "stop") for r in results)
    assert all(r.usage is None for r in results)  # llama sends usage only when asked to
    # whole replies between streams keep their connection: the mixed sequence must hold up too
    for _ in range(2):
        assert client.chat(payload).finish_reason in ("length", "stop")
        assert client.stream_chat(payload).ended == "done"


def test_llama_context_size_from_props(llama_server, llama_server_small_ctx, litellm_server):
    from cli.endpoint import EndpointClient

    with EndpointClient(llama_server.root_url, timeout=30) as client:
        assert client.context_size() == 2048
    with EndpointClient(llama_server_small_ctx.base_url, timeout=30) as client:  # given as .../v1
        assert client.context_size() == 512
    with EndpointClient(litellm_server.root_url, token=litellm_server.api_key, timeout=30) as client:
        assert client.context_size() is None  # no such page: no window, no error
