"""Every way talking to an endpoint can fail: one exception hierarchy, its messages in one place.

`str(error)` is one line for the user; the command prints it (never a traceback) and exits with
`error.exit_code`. A message never carries terminal control sequences (they are stripped from
whatever a server put in it), and never the token: the client scrubs it from what the server
sent before any of it is cut to length, and from every message again (`EndpointError.redact`).

    EndpointError                    .message .url .partial (the StreamResult of a broken stream)
    ├── InvalidEndpointURL           not an http(s) URL; exit code 2
    ├── InvalidToken                 a token no HTTP header can carry; exit code 2
    ├── NetworkError
    │   ├── ConnectError             connection refused, host unreachable
    │   ├── DNSError                 .host does not resolve
    │   ├── TLSError                 handshake or certificate failure
    │   │   └── PlainHTTPServer      an https:// URL whose server answers in plain HTTP
    │   ├── ConnectionLost           closed or reset before a whole reply
    │   └── EndpointTimeout          .seconds
    │       ├── ConnectTimeout       connect timeout (10 s by default)
    │       ├── ReadTimeout          nothing received for the read timeout (`--timeout`)
    │       └── DeadlineExceeded     the whole request took longer than its deadline (`--deadline`)
    ├── APIError                     the server reported an error: .status .info .context_length
    │   ├── HTTPStatusError          a non-2xx status: .reason .attempts .retry_after
    │   │   ├── AuthenticationError  401/403, says how to set a token
    │   │   └── ContextLengthExceeded  .prompt_tokens .context_window .completion_tokens
    │   └── StreamErrorEvent         an error event inside a stream
    ├── InvalidResponse              a reply bai cannot read: .status .content_type .excerpt
    │   ├── UnexpectedEventStream    an event stream where JSON was expected
    │   ├── NotAnEventStream         something else where an event stream was expected
    │   └── ReplyTooLarge            .limit: a reply, answer or event over its bound (32 MiB)
    └── StreamInterrupted            a stream that ended with neither [DONE] nor a finish_reason
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._text import Redactor, one_line, strip_controls

if TYPE_CHECKING:  # _results imports nothing of this module: no circle
    from ._results import StreamResult

__all__ = [
    "APIError", "AuthenticationError", "ConnectError", "ConnectTimeout", "ConnectionLost", "ContextLength",
    "ContextLengthExceeded", "DNSError", "DeadlineExceeded", "EndpointError", "EndpointTimeout", "ErrorInfo",
    "HTTPStatusError", "InvalidEndpointURL", "InvalidResponse", "InvalidToken", "NetworkError", "NotAnEventStream",
    "PlainHTTPServer", "ReadTimeout", "ReplyTooLarge", "StreamErrorEvent", "StreamInterrupted", "TLSError",
    "UnexpectedEventStream",
]

# `--token -` asks for it (no echo) or reads it from a pipe: a token typed on the command line
# would stay in the shell's history. BAI_TOKEN gives one for a single call.
TOKEN_HINT = "bai deployment chat-config set {deployment} --token - (or BAI_TOKEN for one call)"


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
    at_least: bool = False  # the token counts are lower bounds (vLLM stops counting at window + 1)

    @property
    def answer_alone_too_long(self) -> bool:
        """max_tokens alone is more than the window: leaving out history cannot help."""
        return (self.completion_tokens is not None and self.context_window is not None
                and self.prompt_tokens is None and self.requested_tokens is None
                and self.completion_tokens >= self.context_window)

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
        message = strip_controls(message)  # parts of it came from a server
        super().__init__(message)
        self.message = message
        self.url = url
        self.partial: StreamResult | None = None  # on errors that end a stream: what had arrived

    def __str__(self) -> str:
        return self.message

    def redact(self, secret: str | Redactor | None) -> None:
        """Replace the token, in any form a server may echo it, in what this error can show.

        The last line of defence: the client already scrubbed what the server sent, before any
        of it was cut to length (a cut token would not be found here)."""
        redactor = secret if isinstance(secret, Redactor) else Redactor(secret)
        if not redactor:
            return
        self.message = redactor.text(self.message)
        self.args = (self.message,)
        info = getattr(self, "info", None)
        if isinstance(info, ErrorInfo):
            self.info = dataclasses.replace(info, message=redactor.text(info.message))
        excerpt = getattr(self, "excerpt", None)
        if isinstance(excerpt, str):
            self.excerpt = redactor.text(excerpt)


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
    def __init__(self, url: str, reason: str, *, certificate: bool = False, message: str | None = None) -> None:
        what = "the server's TLS certificate could not be verified" if certificate else "TLS handshake failed"
        super().__init__(message or f"{what} for {url}: {reason}", url=url)


class PlainHTTPServer(TLSError):
    """An https:// URL whose server answered a plain-HTTP probe: it does not speak TLS there."""

    def __init__(self, url: str, plain_url: str) -> None:
        super().__init__(url, "plain HTTP", message=f"the server at {url} answers in plain HTTP, not TLS: "
                                                      f"use {plain_url} (http://, not https://)")
        self.plain_url = plain_url


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


class DeadlineExceeded(EndpointTimeout):
    """The whole request (retries and the answer included) took longer than its deadline: a
    server that trickles bytes or sends only keep-alives never trips the read timeout."""

    def __init__(self, url: str, seconds: float | None, *, received: int | None = None) -> None:
        got = "" if received is None else f" ({received} characters of answer had arrived)"
        super().__init__(f"gave up on {url} after {_secs(seconds)}, the deadline for a whole request{got}"
                         " (raise it with --deadline)", url=url, seconds=seconds)


def _secs(seconds: float | None) -> str:
    return "the timeout" if seconds is None else f"{seconds:g} s"


_MISSING_MODEL = re.compile(r"not found|does not exist|doesn't exist|no such model|unknown model|invalid model"
                            r"|model .{0,200} not (?:available|supported|loaded)", re.IGNORECASE)


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

    @property
    def is_model_not_found(self) -> bool:
        """Whether the server says the model asked for does not exist: a 400 or 404 whose
        message names a model as not found, as servers put it:
          vLLM     404 "The model `m` does not exist." (type NotFoundError)
          OpenAI   404 "The model `m` does not exist or you do not have access to it." (code model_not_found)
          LiteLLM  400 "Invalid model name passed in model=m. Call `/v1/models` to view available models ..."
          Ollama   404 'model "m" not found, try pulling it first'
        A context-length 400 (which says "model" too) is not this."""
        if self.status not in (400, 404) or self.is_context_length:
            return False
        if self.info.code == "model_not_found":
            return True
        return "model" in self.info.message.lower() and _MISSING_MODEL.search(self.info.message) is not None

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
        if context_length.answer_alone_too_long:
            detail = (f"max_tokens {context_length.completion_tokens} is more than the model's whole context window"
                      f" ({context_length.context_window} tokens); ask for fewer: {one_line(info.message)}")
        else:
            if context_length.at_least:
                numbers = numbers.replace("prompt tokens", "prompt tokens at least", 1)
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


class ReplyTooLarge(InvalidResponse):
    """A reply over what bai keeps in memory: a whole body, a streamed answer or one event.
    Decompressed sizes count (a small gzip body can unpack to gigabytes)."""

    def __init__(self, url: str, what: str, limit: int, *, status: int | None = None, why: str | None = None) -> None:
        super().__init__(url, f"{why or f'{what} is larger than {_size(limit)}'}; stopped reading", status=status)
        self.limit = limit


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n} bytes"


class StreamInterrupted(EndpointError):
    def __init__(self, url: str, reason: str, *, received: int) -> None:
        super().__init__(
            f"the stream from {url} ended before the answer was complete after {received} characters: {reason}",
            url=url,
        )
        self.reason = reason
