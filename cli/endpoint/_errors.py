"""Every way talking to an endpoint can fail: one exception hierarchy, its messages in one place.

`str(error)` is one line for the user; the command prints it (never a traceback) and exits with
`error.exit_code`. The client scrubs its token from every message (`EndpointError.redact`), so a
server that echoes the key back cannot make bai print it.

    EndpointError                    .message .url .partial (the StreamResult of a broken stream)
    ├── InvalidEndpointURL           not an http(s) URL; exit code 2
    ├── InvalidToken                 a token no HTTP header can carry; exit code 2
    ├── NetworkError
    │   ├── ConnectError             connection refused, host unreachable
    │   ├── DNSError                 .host does not resolve
    │   ├── TLSError                 handshake or certificate failure
    │   ├── ConnectionLost           closed or reset before a whole reply
    │   └── EndpointTimeout          .seconds
    │       ├── ConnectTimeout       connect timeout (10 s by default)
    │       └── ReadTimeout          nothing received for the read timeout (`--timeout`)
    ├── APIError                     the server reported an error: .status .info .context_length
    │   ├── HTTPStatusError          a non-2xx status: .reason .attempts .retry_after
    │   │   ├── AuthenticationError  401/403, says how to set a token
    │   │   └── ContextLengthExceeded  .prompt_tokens .context_window .completion_tokens
    │   └── StreamErrorEvent         an error event inside a stream
    ├── InvalidResponse              a reply bai cannot read: .status .content_type .excerpt
    │   ├── UnexpectedEventStream    an event stream where JSON was expected
    │   └── NotAnEventStream         something else where an event stream was expected
    └── StreamInterrupted            a stream that ended with neither [DONE] nor a finish_reason
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._text import one_line

if TYPE_CHECKING:  # _results imports nothing of this module: no circle
    from ._results import StreamResult

__all__ = [
    "APIError", "AuthenticationError", "ConnectError", "ConnectTimeout", "ConnectionLost", "ContextLength",
    "ContextLengthExceeded", "DNSError", "EndpointError", "EndpointTimeout", "ErrorInfo", "HTTPStatusError",
    "InvalidEndpointURL", "InvalidResponse", "InvalidToken", "NetworkError", "NotAnEventStream", "ReadTimeout",
    "StreamErrorEvent", "StreamInterrupted", "TLSError", "UnexpectedEventStream",
]

TOKEN_HINT = "bai deployment chat-config set {deployment} --token T"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error body, whatever its shape, normalised (see `_error_body.parse_error_body`)."""

    message: str  # whitespace collapsed, never empty; messages shorten it with one_line()
    kind: str  # openai | flat | tgi | fastapi | json | text | html | empty
    type: str | None = None
    code: str | int | None = None
    param: str | None = None
    data: Any = None  # the decoded JSON body, when it was JSON


@dataclass(frozen=True, slots=True)
class ContextLength:
    """The numbers a context-length error gives, each None when the server does not say."""

    context_window: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None  # what the request asked for (max_tokens)
    requested_tokens: int | None = None  # prompt + completion, when given as one number

    @property
    def excess(self) -> int | None:
        """How many tokens too many the request was, when the numbers allow saying."""
        if self.context_window is None:
            return None
        total = self.requested_tokens
        if total is None and self.prompt_tokens is not None:
            total = self.prompt_tokens + (self.completion_tokens or 0)
        return None if total is None else max(total - self.context_window, 0)


class EndpointError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.partial: StreamResult | None = None  # on errors that end a stream: what had arrived

    def __str__(self) -> str:
        return self.message

    def redact(self, secret: str | None) -> None:
        """Replace every occurrence of `secret` in what this error can show."""
        if not secret:
            return
        self.message = self.message.replace(secret, "***")
        self.args = (self.message,)
        info = getattr(self, "info", None)
        if isinstance(info, ErrorInfo) and secret in info.message:
            self.info = dataclasses.replace(info, message=info.message.replace(secret, "***"))
        excerpt = getattr(self, "excerpt", None)
        if isinstance(excerpt, str):
            self.excerpt = excerpt.replace(secret, "***")


class InvalidEndpointURL(EndpointError):
    exit_code = 2

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"invalid endpoint URL {url!r}: {reason}", url=url)


class InvalidToken(EndpointError):
    exit_code = 2

    def __init__(self, deployment: str | None = None) -> None:
        how = TOKEN_HINT.format(deployment=deployment or "ID")
        super().__init__(f"the token has spaces, control or non-ASCII characters; set it again with: {how}")


class NetworkError(EndpointError):
    pass


class ConnectError(NetworkError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot connect to {url}: {reason}", url=url)


class DNSError(NetworkError):
    def __init__(self, url: str, host: str) -> None:
        super().__init__(f"cannot resolve host {host!r} of {url} (DNS lookup failed)", url=url)
        self.host = host


class TLSError(NetworkError):
    def __init__(self, url: str, reason: str, *, certificate: bool = False) -> None:
        what = "the server's TLS certificate could not be verified" if certificate else "TLS handshake failed"
        super().__init__(f"{what} for {url}: {reason}", url=url)


class ConnectionLost(NetworkError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the connection to {url} broke before a complete reply: {reason}", url=url)


class EndpointTimeout(NetworkError):
    def __init__(self, message: str, *, url: str, seconds: float | None) -> None:
        super().__init__(message, url=url)
        self.seconds = seconds


class ConnectTimeout(EndpointTimeout):
    def __init__(self, url: str, seconds: float | None) -> None:
        super().__init__(f"timed out connecting to {url} after {_secs(seconds)}", url=url, seconds=seconds)


class ReadTimeout(EndpointTimeout):
    def __init__(self, url: str, seconds: float | None, *, received: int | None = None) -> None:
        if received is None:
            message = f"{url} sent no reply within {_secs(seconds)} (raise the read timeout with --timeout)"
        else:
            message = (
                f"the stream from {url} stalled: nothing for {_secs(seconds)} after {received} characters"
                " (raise the read timeout with --timeout)"
            )
        super().__init__(message, url=url, seconds=seconds)


def _secs(seconds: float | None) -> str:
    return "the timeout" if seconds is None else f"{seconds:g} s"


class APIError(EndpointError):
    """The server answered, with an error. `context_length` is set for context-length errors."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int,
        info: ErrorInfo,
        context_length: ContextLength | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.status = status
        self.info = info
        self.context_length = context_length

    @property
    def is_context_length(self) -> bool:
        return self.context_length is not None

    @classmethod
    def in_body(cls, url: str, status: int, info: ErrorInfo, context_length: ContextLength | None = None) -> APIError:
        """A 2xx reply whose body is an error object."""
        return cls(f"{url} answered with an error: {one_line(info.message)}", url=url, status=status, info=info,
                   context_length=context_length)


class HTTPStatusError(APIError):
    def __init__(
        self,
        url: str,
        status: int,
        reason: str,
        info: ErrorInfo,
        *,
        attempts: int = 1,
        retry_after: float | None = None,
        location: str | None = None,
        context_length: ContextLength | None = None,
        detail: str | None = None,
    ) -> None:
        head = f"HTTP {status}{' ' + reason if reason else ''} from {url}: {detail or one_line(info.message)}"
        if location:
            head += f" (redirected to {location}; set the endpoint to that URL)"
        if attempts > 1:
            head += f" (gave up after {attempts} attempts)"
        elif retry_after is not None and status in (429, 503):
            head += f" (the server asks to retry after {retry_after:g} s)"
        super().__init__(head, url=url, status=status, info=info, context_length=context_length)
        self.reason = reason
        self.attempts = attempts
        self.retry_after = retry_after


class AuthenticationError(HTTPStatusError):
    def __init__(self, url: str, status: int, reason: str, info: ErrorInfo, *, token_sent: bool,
                 deployment: str | None = None, **kwargs: Any) -> None:
        what = "the token was refused" if token_sent else "the endpoint wants a token"
        how = TOKEN_HINT.format(deployment=deployment or "ID")
        super().__init__(url, status, reason, info, detail=f"{one_line(info.message)}; {what}; set one with: {how}", **kwargs)
        self.token_sent = token_sent


class ContextLengthExceeded(HTTPStatusError):
    """The prompt (history + message + max_tokens) does not fit the model's context window."""

    def __init__(self, url: str, status: int, reason: str, info: ErrorInfo, *, context_length: ContextLength,
                 **kwargs: Any) -> None:
        numbers = ", ".join(
            f"{label} {value}"
            for label, value in (
                ("prompt tokens", context_length.prompt_tokens),
                ("max_tokens", context_length.completion_tokens),
                ("requested", context_length.requested_tokens),
                ("window", context_length.context_window),
            )
            if value is not None
        )
        detail = "the conversation does not fit the model's context window"
        detail += f" ({numbers}): {one_line(info.message)}" if numbers else f": {one_line(info.message)}"
        super().__init__(url, status, reason, info, context_length=context_length, detail=detail, **kwargs)

    @property
    def prompt_tokens(self) -> int | None:
        return self.context_length.prompt_tokens

    @property
    def context_window(self) -> int | None:
        return self.context_length.context_window

    @property
    def completion_tokens(self) -> int | None:
        return self.context_length.completion_tokens


class StreamErrorEvent(APIError):
    def __init__(self, url: str, info: ErrorInfo, *, received: int, status: int = 200,
                 context_length: ContextLength | None = None) -> None:
        super().__init__(
            f"the stream from {url} broke off with an error after {received} characters: {one_line(info.message)}",
            url=url, status=status, info=info, context_length=context_length,
        )


class InvalidResponse(EndpointError):
    def __init__(self, url: str, detail: str, *, status: int | None = None, content_type: str | None = None,
                 excerpt: str | None = None, message: str | None = None) -> None:
        super().__init__(message or f"unreadable reply from {url}: {detail}", url=url)
        self.status = status
        self.content_type = content_type
        self.excerpt = excerpt


class UnexpectedEventStream(InvalidResponse):
    def __init__(self, url: str, *, status: int | None = None, content_type: str | None = None,
                 excerpt: str | None = None) -> None:
        super().__init__(
            url, "an event stream", status=status, content_type=content_type, excerpt=excerpt,
            message=f"{url} sent an event stream where a JSON reply was expected; try --stream",
        )


class NotAnEventStream(InvalidResponse):
    def __init__(self, url: str, *, status: int | None = None, content_type: str | None = None,
                 excerpt: str | None = None) -> None:
        sent = content_type or "a body without a content type"
        tail = f": {excerpt}" if excerpt else ""
        super().__init__(
            url, "not an event stream", status=status, content_type=content_type, excerpt=excerpt,
            message=f"{url} was asked for a stream but sent {sent}{tail}; try --no-stream",
        )


class StreamInterrupted(EndpointError):
    def __init__(self, url: str, reason: str, *, received: int) -> None:
        super().__init__(
            f"the stream from {url} ended before the answer was complete after {received} characters: {reason}",
            url=url,
        )
        self.reason = reason
