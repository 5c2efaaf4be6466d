"""Reading error bodies, whatever their shape, and spotting context-length errors.

Pure: bytes in, `ErrorInfo` and exceptions out. Never raises while parsing: a body that fits no
known shape still becomes a one-line message (its text, or the title of an HTML page).
"""

from __future__ import annotations

import http
import re
from typing import Any

import msgspec

from ._errors import (
    AuthenticationError,
    ContextLength,
    ContextLengthExceeded,
    ErrorInfo,
    HTTPStatusError,
)
from ._wire import ErrorBody, ErrorObject, decode_json

__all__ = ["detect_context_length", "error_info_from_json", "http_error", "parse_error_body", "reason_phrase"]

_MAX_MESSAGE = 4000  # enough for any real message, including LiteLLM's nested ones
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def reason_phrase(status: int, given: str | None = None) -> str:
    if given:
        return given
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _collapse(text: str) -> str:
    return " ".join(text.split())[:_MAX_MESSAGE]


def _text(value: Any) -> str | None:
    """A field as text: servers put strings, numbers or objects where a message is expected."""
    if value is None:
        return None
    if isinstance(value, str):
        return _collapse(value) or None
    if isinstance(value, bool | int | float):
        return str(value)
    try:
        return _collapse(msgspec.json.encode(value).decode())
    except (TypeError, ValueError):
        return None


def _code(value: Any) -> str | int | None:
    if isinstance(value, bool):
        return str(value)
    return value if isinstance(value, int | str) else None


def _fastapi_detail(detail: Any) -> str | None:
    """FastAPI: a string, or a list of validation errors `{"loc": [...], "msg": "..."}`."""
    if isinstance(detail, list):
        items = []
        for item in detail:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
                items.append(f"{where}: {item['msg']}" if where else item["msg"])
            else:
                items.append(_text(item) or "")
        return _collapse("; ".join(i for i in items if i)) or None
    return _text(detail)


def error_info_from_json(data: Any) -> ErrorInfo | None:
    """Normalise a decoded JSON error body; None when it is not an error object at all."""
    if not isinstance(data, dict):
        return None
    body = msgspec.convert(data, ErrorBody)  # every field is Any: this cannot fail for a dict
    if isinstance(body.error, dict):  # OpenAI, llama.cpp, LiteLLM, newer vLLM
        err = msgspec.convert(body.error, ErrorObject)
        message = _text(err.message) or _text(err.type) or _text(err.code) or "error"
        return ErrorInfo(message, "openai", type=_text(err.type), code=_code(err.code), param=_text(err.param),
                         data=data)
    if isinstance(body.error, str) and body.error.strip():  # TGI
        return ErrorInfo(_collapse(body.error), "tgi", type=_text(body.error_type), data=data)
    if body.message is not None and _text(body.message):  # vLLM flat; llama.cpp's bare error object
        return ErrorInfo(_text(body.message) or "error", "flat", type=_text(body.type), code=_code(body.code),
                         param=_text(body.param), data=data)
    if body.detail is not None and _fastapi_detail(body.detail):
        return ErrorInfo(_fastapi_detail(body.detail) or "error", "fastapi", data=data)
    if body.error is not None and _text(body.error):  # {"error": 42} and the like
        return ErrorInfo(_text(body.error) or "error", "json", data=data)
    return None


def parse_error_body(body: bytes, content_type: str | None = None, *, status_phrase: str = "") -> ErrorInfo:
    """Any error body as an `ErrorInfo` with a message that is never empty."""
    text = body.decode("utf-8", "replace")
    if not text.strip():
        return ErrorInfo(status_phrase or "no error message", "empty")
    try:
        data = decode_json(body)
    except msgspec.DecodeError:
        pass
    else:
        return error_info_from_json(data) or ErrorInfo(_collapse(text), "json", data=data)
    if "html" in (content_type or "").lower() or text.lstrip()[:1] == "<":
        match = _TITLE.search(text)
        title = _collapse(_TAGS.sub("", match.group(1))) if match else ""
        message = f"an HTML page ({title})" if title else "an HTML page"
        return ErrorInfo(message + ", likely from a proxy or gateway in front of the model server", "html")
    return ErrorInfo(_collapse(text), "text")


_CONTEXT_TYPES = {"exceed_context_size_error", "context_length_exceeded"}
_CONTEXT_PHRASES = re.compile(
    r"maximum context length"  # OpenAI, vLLM, SGLang
    r"|context_length_exceeded|ContextWindowExceededError"  # OpenAI code, LiteLLM exception name
    r"|exceeds? the available context size"  # llama.cpp
    r"|longer than the (?:model's )?(?:context length|maximum model length)"  # SGLang, vLLM v1
    r"|`inputs` tokens \+ `max_new_tokens` must be"  # TGI
    r"|`inputs` must have less than \d+ tokens"  # TGI
    r"|max_(?:completion_|output_)?tokens=\d+ cannot be greater than",  # vLLM: max_tokens over the window
    re.IGNORECASE,
)
_NUMBERS: dict[str, tuple[re.Pattern[str], ...]] = {
    name: tuple(re.compile(p, re.IGNORECASE) for p in patterns)
    for name, patterns in {
        "context_window": (
            r"maximum context length (?:is|of) (\d+)",
            r"context length \((\d+) tokens\)",
            r"maximum model length of (\d+)",
            r"available context size \((\d+) tokens\)",
            r"must be <= (\d+)",
            r"must have less than (\d+) tokens",
            r"cannot be greater than (?:[a-z_]+=)+(\d+)",  # vLLM: max_model_len=2048 (=max_total_tokens=...)
        ),
        "prompt_tokens": (
            r"\((\d+) in the messages",
            r"you requested (\d+) tokens in the messages",
            r"your request has (\d+) input tokens",
            r"(\d+) tokens from the input messages",
            r"messages resulted in (\d+) tokens",
            r"Given: (\d+) `inputs` tokens",
            r"less than \d+ tokens\. Given: (\d+)",
            r"The input \((\d+) tokens\)",
            r"prompt \(length (\d+)\)",
            r"request \((\d+) tokens\) exceeds",
            r"your prompt contains (?:at least )?(\d+) input tokens",  # vLLM 0.25+
        ),
        "completion_tokens": (
            r"(\d+) in the completion",
            r"(\d+) tokens for the completion",
            r"and (\d+) `max_new_tokens`",
            r"'max_tokens' or 'max_completion_tokens' is too large: (\d+)",
            r"you requested (\d+) output tokens",  # vLLM 0.25+
            r"max_(?:completion_|output_)?tokens=(\d+) cannot be greater than",  # vLLM
        ),
        "requested_tokens": (
            r"you requested (\d+) tokens \(",
            r"requested a total of (\d+) tokens",
            r"for a total of (?:at least )?(\d+) tokens",  # vLLM 0.25+
        ),
    }.items()
}


# vLLM counts a prompt only up to the window + 1 ("at least 2049 input tokens"), and refuses a
# prompt by its length in characters before counting ("the upper bound for 8128 input tokens").
_AT_LEAST = re.compile(r"contains at least \d+ input tokens|for a total of at least", re.IGNORECASE)
_CHARACTER_BOUND = re.compile(r"characters, which is the upper bound for (\d+) input tokens", re.IGNORECASE)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def detect_context_length(info: ErrorInfo) -> ContextLength | None:
    """The numbers of a context-length error; None when `info` is some other error."""
    marked = (info.type in _CONTEXT_TYPES or info.code in _CONTEXT_TYPES
              or _CONTEXT_PHRASES.search(info.message) is not None)
    if not marked:
        return None
    found: dict[str, int | None] = {}
    for name, patterns in _NUMBERS.items():
        found[name] = next((int(m.group(1)) for p in patterns if (m := p.search(info.message))), None)
    err = info.data.get("error") if isinstance(info.data, dict) else None
    if isinstance(err, dict):  # llama.cpp gives the numbers as fields
        found["prompt_tokens"] = _int(err.get("n_prompt_tokens")) or found["prompt_tokens"]
        found["context_window"] = _int(err.get("n_ctx")) or found["context_window"]
    at_least = _AT_LEAST.search(info.message) is not None
    if found["prompt_tokens"] is None and (bound := _CHARACTER_BOUND.search(info.message)):
        found["prompt_tokens"], at_least = int(bound.group(1)) + 1, True
    return ContextLength(**found, at_least=at_least)


def http_error(
    url: str,
    status: int,
    reason: str | None,
    body: bytes,
    content_type: str | None = None,
    *,
    token_sent: bool = False,
    deployment: str | None = None,
    attempts: int = 1,
    retry_after: float | None = None,
    location: str | None = None,
) -> HTTPStatusError:
    """The exception for a non-2xx reply, its class chosen by status and body."""
    phrase = reason_phrase(status, reason)
    info = parse_error_body(body, content_type, status_phrase=phrase)
    extra: dict[str, Any] = dict(attempts=attempts, retry_after=retry_after, location=location)
    if status in (401, 403):
        return AuthenticationError(url, status, phrase, info, token_sent=token_sent, deployment=deployment, **extra)
    context_length = detect_context_length(info)
    if context_length is not None:
        return ContextLengthExceeded(url, status, phrase, info, context_length=context_length, **extra)
    return HTTPStatusError(url, status, phrase, info, **extra)
