"""The endpoint client: everything between `bai` and an OpenAI-compatible endpoint.

    from cli.endpoint import EndpointClient, EndpointError

    with EndpointClient("http://127.0.0.1:8000", token=None, timeout=300.0) as client:
        result = client.stream_chat(payload, on_text=print_piece)    # StreamResult
        result = client.chat(payload)                                 # ChatResult

It knows nothing of click, the store or the settings: the command line hands it a URL, a
token and timeouts, and gets back results or one of the errors of `_errors` (one line each).

Every name below is loaded on first use (PEP 562), so importing this package costs nothing:
the command modules import it at the top and `bai --help` stays fast; httpx is imported only
with `EndpointClient`. Inside, the modules form layers, each importing only those above it:

    _text _wire _sse _limits      leaves: text helpers, wire types, event-stream parser, limits
    _decoding _plain_http         leaves: bounded gzip/deflate; is an https:// server plain HTTP?
    _content                      the assistant text of a reply, or why there is none
    _results                      ChatResult, StreamResult
    _errors                       the exception hierarchy
    _urls _error_body             endpoint URLs; error bodies and context-length numbers
    _stream _response             a stream's events, a whole reply, into results or errors
    _transport                    httpx: the only module doing I/O
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._content import AssistantContent, NoText, ToolCallInfo
    from ._errors import (
        APIError,
        AuthenticationError,
        ConnectError,
        ConnectionLost,
        ConnectTimeout,
        ContextLength,
        ContextLengthExceeded,
        DeadlineExceeded,
        DNSError,
        EndpointError,
        EndpointTimeout,
        ErrorInfo,
        HTTPStatusError,
        InvalidEndpointURL,
        InvalidResponse,
        InvalidToken,
        NetworkError,
        NotAnEventStream,
        PlainHTTPServer,
        ReadTimeout,
        ReplyTooLarge,
        StreamErrorEvent,
        StreamInterrupted,
        TLSError,
        UnexpectedEventStream,
    )
    from ._limits import DEFAULT_CONNECT_TIMEOUT, DEFAULT_DEADLINE, DEFAULT_READ_TIMEOUT, MAX_DEADLINE, RetryPolicy
    from ._results import ChatResult, StreamResult
    from ._text import TerminalFilter, json_for_terminal, one_line, strip_controls
    from ._transport import USER_AGENT, EndpointClient
    from ._urls import display_url, endpoint_urls
    from ._wire import ModelList, Usage

_WHERE = {
    "_transport": ("EndpointClient", "USER_AGENT"),
    "_results": ("ChatResult", "StreamResult"),
    "_content": ("AssistantContent", "NoText", "ToolCallInfo"),
    "_wire": ("ModelList", "Usage"),
    "_errors": (
        "APIError", "AuthenticationError", "ConnectError", "ConnectTimeout", "ConnectionLost", "ContextLength",
        "ContextLengthExceeded", "DNSError", "DeadlineExceeded", "EndpointError", "EndpointTimeout", "ErrorInfo",
        "HTTPStatusError", "InvalidEndpointURL", "InvalidResponse", "InvalidToken", "NetworkError", "NotAnEventStream",
        "PlainHTTPServer", "ReadTimeout", "ReplyTooLarge", "StreamErrorEvent", "StreamInterrupted", "TLSError",
        "UnexpectedEventStream",
    ),
    "_urls": ("display_url", "endpoint_urls"),
    "_limits": ("DEFAULT_CONNECT_TIMEOUT", "DEFAULT_DEADLINE", "DEFAULT_READ_TIMEOUT", "MAX_DEADLINE", "RetryPolicy"),
    "_text": ("TerminalFilter", "json_for_terminal", "one_line", "strip_controls"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
