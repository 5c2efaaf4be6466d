"""Reading a whole (non-streamed) 2xx reply: bytes in, a `ChatResult` or `ModelList` out.

Pure, no I/O. The body is decoded once to builtins (kept whole as `ChatResult.body`) and that is
converted into the Struct, which validates it; every failure becomes one of `_errors`' classes.
What an error shows of the body is scrubbed of the token (`redact`) before it is cut to length.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._content import assistant_content
from ._error_body import detect_context_length, error_info_from_json, parse_error_body
from ._errors import APIError, ErrorInfo, InvalidResponse, UnexpectedEventStream
from ._results import ChatResult
from ._text import NO_REDACTION, Redactor, one_line
from ._wire import ChatCompletionResponse, ModelList, NestedTooDeeply, decode_json

__all__ = ["error_in_body", "looks_like_event_stream", "parse_chat_response", "parse_model_list"]


def looks_like_event_stream(body: bytes, content_type: str | None) -> bool:
    if "text/event-stream" in (content_type or "").lower():
        return True
    return body.lstrip()[:6].startswith((b"data:", b"event:", b":"))


def _excerpt(body: bytes) -> str:
    return one_line(body[:400].decode("utf-8", "replace"), 120)


def _decode(body: bytes, content_type: str | None, url: str, status: int, redact: Redactor) -> Any:
    if looks_like_event_stream(body, content_type):
        raise UnexpectedEventStream(url, status=status, content_type=content_type, excerpt=_excerpt(redact.bytes(body)))
    try:
        data = decode_json(body)
    except msgspec.DecodeError as exc:
        shown = redact.bytes(body)
        if isinstance(exc, NestedTooDeeply):
            what = str(exc)
        else:
            what = parse_error_body(shown, content_type).message if body.strip() else "an empty body"
        raise InvalidResponse(
            url, f"HTTP {status} but not JSON ({content_type or 'no content type'}): {one_line(what, 160)}",
            status=status, content_type=content_type, excerpt=_excerpt(shown),
        ) from exc
    error = error_in_body(data, body, url=url, status=status, redact=redact)
    if error is not None:
        raise error
    return data


def error_in_body(data: Any, body: bytes, *, url: str, status: int, redact: Redactor = NO_REDACTION) -> APIError | None:
    """The error a 2xx JSON body reports instead of an answer (some servers and proxies do)."""
    if not isinstance(data, dict) or "choices" in data:
        return None
    if not (data.get("error") or data.get("object") == "error"):  # vLLM's flat error shape
        return None
    if redact:  # read the error again from the scrubbed body, before its message is cut
        body = redact.bytes(body)
        data = decode_json(body)
    info = error_info_from_json(data) or ErrorInfo(_excerpt(body), "json", data=data)
    return APIError.in_body(url, status, info, detect_context_length(info))


def parse_chat_response(body: bytes, content_type: str | None = None, *, url: str = "the endpoint", status: int = 200,
                        redact: Redactor = NO_REDACTION) -> ChatResult:
    data = _decode(body, content_type, url, status, redact)
    try:
        response = msgspec.convert(data, ChatCompletionResponse)
    except msgspec.ValidationError as exc:
        raise InvalidResponse(url, f"not a chat completion: {exc}", status=status, content_type=content_type,
                              excerpt=_excerpt(redact.bytes(body))) from exc
    return ChatResult(response, data, assistant_content(response))


def parse_model_list(body: bytes, content_type: str | None = None, *, url: str = "the endpoint", status: int = 200,
                     redact: Redactor = NO_REDACTION) -> ModelList:
    data = _decode(body, content_type, url, status, redact)
    if isinstance(data, dict) and "data" not in data and isinstance(data.get("id"), str):
        data = {"data": [data]}  # TGI answers with one model object, not a list
    try:
        return msgspec.convert(data, ModelList)
    except msgspec.ValidationError as exc:
        raise InvalidResponse(url, f"not a model list: {exc}", status=status, content_type=content_type,
                              excerpt=_excerpt(redact.bytes(body))) from exc
