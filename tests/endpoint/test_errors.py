"""Error bodies of every shape, their one-line messages, and context-length errors."""

from __future__ import annotations

import json

import pytest

from cli.endpoint._error_body import detect_context_length, http_error, parse_error_body
from cli.endpoint._errors import (
    AuthenticationError,
    ContextLengthExceeded,
    EndpointError,
    HTTPStatusError,
    InvalidEndpointURL,
    InvalidResponse,
    InvalidToken,
    UnexpectedEventStream,
)
from cli.endpoint._response import parse_chat_response

URL = "http://127.0.0.1:8000/v1/chat/completions"


def j(obj: object) -> bytes:
    return json.dumps(obj).encode()


HTML_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
            b"</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n")


@pytest.mark.parametrize(("body", "content_type", "kind", "message"), [
    (j({"error": {"message": "Invalid API Key", "type": "authentication_error", "param": None, "code": None}}),
     "application/json", "openai", "Invalid API Key"),
    (j({"object": "error", "message": "bad\nrequest", "type": "BadRequestError", "param": None, "code": 400}),
     "application/json", "flat", "bad request"),
    (j({"error": "Input validation error: `temperature` must be strictly positive", "error_type": "validation"}),
     "application/json", "tgi", "Input validation error: `temperature` must be strictly positive"),
    (j({"detail": "Not authenticated"}), "application/json", "fastapi", "Not authenticated"),
    (j({"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]}),
     "application/json", "fastapi", "body.messages: Field required"),
    (b"Internal Server Error", "text/plain", "text", "Internal Server Error"),
    (HTML_502, "text/html", "html", "an HTML page (502 Bad Gateway), likely from a proxy or gateway in front of the"
     " model server"),
    (b"", None, "empty", "Bad Gateway"),
    (j([1, 2]), "application/json", "json", "[1, 2]"),
    (j({"error": {"type": "exceed_context_size_error", "code": 400}}), "application/json", "openai",
     "exceed_context_size_error"),
])
def test_error_body_shapes(body: bytes, content_type: str | None, kind: str, message: str) -> None:
    info = parse_error_body(body, content_type, status_phrase="Bad Gateway")
    assert (info.kind, info.message) == (kind, message)


def test_vllm_flat_integer_code_is_kept() -> None:
    info = parse_error_body(j({"object": "error", "message": "m", "type": "NotFoundError", "code": 404}))
    assert info.code == 404 and info.type == "NotFoundError"


def test_http_error_message_is_one_line_and_bounded() -> None:
    err = http_error(URL, 500, "Internal Server Error", b"Traceback (most recent call last):\n" + b"  x\n" * 500)
    assert type(err) is HTTPStatusError and "\n" not in str(err) and len(str(err)) < 400
    assert str(err).startswith(f"HTTP 500 Internal Server Error from {URL}: Traceback")


def test_html_502_message() -> None:
    err = http_error(URL, 502, None, HTML_502, "text/html")
    assert str(err) == (f"HTTP 502 Bad Gateway from {URL}: an HTML page (502 Bad Gateway), likely from a proxy or"
                        " gateway in front of the model server")


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_say_how_to_set_a_token(status: int) -> None:
    body = j({"error": {"message": "Invalid API Key", "type": "authentication_error"}})
    refused = http_error(URL, status, None, body, token_sent=True, deployment="dep-1")
    assert isinstance(refused, AuthenticationError)
    assert "the token was refused" in str(refused)
    assert str(refused).endswith("set one with: bai deployment chat-config set dep-1 --token - (or BAI_TOKEN for one call)")
    missing = http_error(URL, status, None, j({"detail": "Not authenticated"}))
    assert "the endpoint wants a token" in str(missing) and "chat-config set ID --token - (or BAI_TOKEN for one call)" in str(missing)


def test_retry_notes_and_redirects() -> None:
    assert "(gave up after 3 attempts)" in str(http_error(URL, 429, None, b"slow down", attempts=3))
    assert "retry after 60 s" in str(http_error(URL, 503, None, b"", retry_after=60.0))
    moved = http_error(URL, 308, None, b"", location="https://h/v1/chat/completions")
    assert "redirected to https://h/v1/chat/completions" in str(moved)


CONTEXT_CASES = [
    # (status, body, (window, prompt, completion, requested))
    (400, {"object": "error", "type": "BadRequestError", "code": 400, "message":
           "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the "
           "messages, 1000 in the completion). Please reduce the length of the messages or completion."},
     (4096, 4000, 1000, 5000)),
    (400, {"error": {"type": "BadRequestError", "code": 400, "message":
           "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096"
           " tokens and your request has 2778 input tokens (8000 > 4096 - 2778). None"}},
     (4096, 2778, 8000, None)),
    (400, {"object": "error", "code": 400, "message":
           "Requested token count exceeds the model's maximum context length of 32768 tokens. You requested a "
           "total of 34000 tokens: 30000 tokens from the input messages and 4000 tokens for the completion."},
     (32768, 30000, 4000, 34000)),
    (400, {"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it",
                     "type": "exceed_context_size_error", "n_prompt_tokens": 2100, "n_ctx": 2048}},
     (2048, 2100, None, None)),
    (400, {"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages "
                     "resulted in 9000 tokens. Please reduce the length of the messages.",
                     "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}},
     (8192, 9000, None, None)),
    (400, {"error": {"message": "litellm.ContextWindowExceededError: litellm.BadRequestError: This is a mock "
                     "context window exceeded error", "type": None, "param": None, "code": "400"}},
     (None, None, None, None)),
    (422, {"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 "
           "`inputs` tokens and 200 `max_new_tokens`", "error_type": "validation"},
     (4096, 4000, 200, None)),
    (422, {"error": "Input validation error: `inputs` must have less than 4096 tokens. Given: 5000",
           "error_type": "validation"},
     (4096, 5000, None, None)),
    (400, {"object": "error", "code": 400, "message": "The decoder prompt (length 5000) is longer than the maximum "
           "model length of 4096. Make sure that `max_model_len` is no smaller than the number of text tokens."},
     (4096, 5000, None, None)),
]


@pytest.mark.parametrize(("status", "body", "numbers"), CONTEXT_CASES)
def test_context_length_errors_with_their_numbers(status: int, body: dict, numbers: tuple) -> None:
    err = http_error(URL, status, None, j(body))
    assert isinstance(err, ContextLengthExceeded) and err.is_context_length
    c = err.context_length
    assert (c.context_window, c.prompt_tokens, c.completion_tokens, c.requested_tokens) == numbers
    assert (err.context_window, err.prompt_tokens, err.completion_tokens) == numbers[:3]
    assert "does not fit the model's context window" in str(err)


def test_context_length_excess() -> None:
    vllm = http_error(URL, 400, None, j(CONTEXT_CASES[0][1])).context_length
    llama = http_error(URL, 400, None, j(CONTEXT_CASES[3][1])).context_length
    assert vllm.excess == 904 and llama.excess == 52
    assert http_error(URL, 400, None, j(CONTEXT_CASES[5][1])).context_length.excess is None


@pytest.mark.parametrize("body", [
    {"error": "Input validation error: `temperature` must be strictly positive", "error_type": "validation"},
    {"object": "error", "message": "max_tokens must be at least 1, got 0.", "code": 400},
    {"error": {"message": "Invalid API Key", "type": "authentication_error"}},
    {"detail": "Model not found"},
])
def test_other_errors_are_not_context_length(body: dict) -> None:
    err = http_error(URL, 400, None, j(body))
    assert not isinstance(err, ContextLengthExceeded) and err.context_length is None
    assert detect_context_length(parse_error_body(j(body))) is None


def test_non_json_200_and_event_stream_where_json_expected() -> None:
    with pytest.raises(InvalidResponse, match=r"HTTP 200 but not JSON \(text/html\): an HTML page \(Login\)"):
        parse_chat_response(b"<html><title>Login</title></html>", "text/html", url=URL)
    with pytest.raises(InvalidResponse, match="an empty body"):
        parse_chat_response(b"", None, url=URL)
    with pytest.raises(UnexpectedEventStream, match="try --stream"):
        parse_chat_response(b'data: {"choices": []}\n\n', "text/event-stream", url=URL)
    with pytest.raises(UnexpectedEventStream):  # a mislabelled stream is still caught
        parse_chat_response(b'data: {"choices": []}\n\n', "application/json", url=URL)


def test_redact_removes_the_token_everywhere() -> None:
    token = "sk-secret-123456"
    err = http_error(URL, 400, None, j({"error": {"message": f"bad key {token} given"}}))
    err.redact(token)
    assert token not in str(err) and token not in repr(err) and token not in err.info.message
    assert "bad key *** given" in str(err)
    invalid = InvalidResponse(URL, f"odd {token}", excerpt=f"x {token}")
    invalid.redact(token)
    assert token not in str(invalid) and token not in invalid.excerpt


def test_usage_errors_have_exit_code_2() -> None:
    assert InvalidEndpointURL("x", "y").exit_code == 2 and InvalidToken().exit_code == 2
    assert EndpointError("x").exit_code == 1 and http_error(URL, 500, None, b"").exit_code == 1
