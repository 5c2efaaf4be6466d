"""Everything between `bai` and an endpoint, in one import.

    from cli.endpoint import EndpointClient, EndpointError, NoText

`EndpointClient` (and the rest of `_transport`) is loaded on first use, so importing this module
does not import httpx: a command module can import it at the top and `bai --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._content import AssistantContent, NoText, ToolCallInfo, assistant_content
from ._error_body import detect_context_length, parse_error_body
from ._errors import (
    APIError,
    AuthenticationError,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    ContextLength,
    ContextLengthExceeded,
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
    ReadTimeout,
    StreamErrorEvent,
    StreamInterrupted,
    TLSError,
    UnexpectedEventStream,
)
from ._limits import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, RetryPolicy, parse_retry_after
from ._response import ChatResult, parse_chat_response, parse_model_list
from ._sse import SSEDecoder, ServerSentEvent
from ._stream import StreamAccumulator, StreamResult
from ._urls import display_url, endpoint_urls
from ._wire import ChatCompletionChunk, ChatCompletionResponse, ModelCard, ModelList, Usage

if TYPE_CHECKING:
    from ._transport import USER_AGENT, EndpointClient

_LAZY = {"EndpointClient", "USER_AGENT"}

__all__ = [
    "APIError", "AssistantContent", "AuthenticationError", "ChatCompletionChunk", "ChatCompletionResponse",
    "ChatResult", "ConnectError", "ConnectTimeout", "ConnectionLost", "ContextLength", "ContextLengthExceeded",
    "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_READ_TIMEOUT", "DNSError", "EndpointClient", "EndpointError",
    "EndpointTimeout", "ErrorInfo", "HTTPStatusError", "InvalidEndpointURL", "InvalidResponse", "InvalidToken",
    "ModelCard", "ModelList", "NetworkError", "NoText", "NotAnEventStream", "ReadTimeout", "RetryPolicy",
    "SSEDecoder", "ServerSentEvent", "StreamAccumulator", "StreamErrorEvent", "StreamInterrupted",
    "StreamResult", "TLSError", "ToolCallInfo", "USER_AGENT", "UnexpectedEventStream", "Usage",
    "assistant_content", "detect_context_length", "display_url", "endpoint_urls", "parse_chat_response",
    "parse_error_body", "parse_model_list", "parse_retry_after",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _transport

        return getattr(_transport, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
