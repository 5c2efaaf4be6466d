"""The HTTP side: the httpx client, retries, and httpx failures as `_errors`.

The only module that imports httpx. Commands import it when they are about to talk to an
endpoint, never at start-up, so `bai --help` does not pay for httpx.

    with EndpointClient("http://127.0.0.1:8000", token=None, timeout=300.0) as client:
        result = client.chat({"model": m, "messages": msgs})            # ChatResult
        result = client.stream_chat(payload, on_text=print_piece)        # StreamResult
        models = client.list_models()                                    # ModelList
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from .. import __version__
from ._error_body import http_error
from ._errors import (
    APIError,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    DNSError,
    EndpointError,
    EndpointTimeout,
    InvalidEndpointURL,
    InvalidResponse,
    InvalidToken,
    NotAnEventStream,
    ReadTimeout,
    StreamInterrupted,
    TLSError,
)
from ._limits import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, RETRY_STATUSES, RetryPolicy, parse_retry_after
from ._response import error_in_body, parse_chat_response, parse_model_list
from ._results import ChatResult, StreamResult
from ._sse import SSEDecoder
from ._stream import StreamAccumulator
from ._text import one_line
from ._urls import display_url, endpoint_urls, props_url
from ._wire import ModelList, decode_json

__all__ = ["USER_AGENT", "EndpointClient"]

MAX_BODY = 32 * 1024 * 1024  # a whole reply; beyond this it is not a chat answer
MAX_ERROR_BODY = 64 * 1024
# A server may close an idle keep-alive connection just as the next request goes out on it
# (llama-server does so after every streamed reply, though it sends `Keep-Alive: timeout=5`):
# that request fails with no response at all. The server never answered it, so it is sent
# again, this many times, on a new connection.
STALE_CONNECTION_RETRIES = 1


USER_AGENT = f"bai-chat/{__version__} httpx/{httpx.__version__}"


class EndpointClient:
    """One endpoint. `timeout` is the read timeout: the longest wait for the next bytes, also
    between stream chunks. `verify=False` turns TLS verification off (only when asked for).
    `deployment` only fills in the `chat-config` hint of 401/403 messages."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_READ_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        verify: bool = True,
        retry: RetryPolicy = RetryPolicy(),
        deployment: str | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        if not (timeout > 0 and connect_timeout > 0):
            raise ValueError("timeouts must be positive numbers of seconds")
        self.chat_url, self.models_url = endpoint_urls(base_url)
        token = (token or "").strip() or None
        if token is not None and not all("!" <= c <= "~" for c in token):
            raise InvalidToken(deployment)
        self._token = token
        self._deployment = deployment
        self._retry = retry
        self._timeout = httpx.Timeout(connect=connect_timeout, read=timeout, write=timeout, pool=connect_timeout)
        headers = {"User-Agent": user_agent}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # One idle connection at most (bai sends one request at a time): once a stale one has
        # failed, none is left in the pool, so the retry is sure to connect anew.
        # Building a verifying SSL context loads the CA bundle (about 15 ms); a plain http://
        # endpoint never does TLS (and redirects are not followed), so it gets none.
        verify = verify and self.chat_url.lower().startswith("https://")
        self._client = httpx.Client(headers=headers, timeout=self._timeout, verify=verify, follow_redirects=False,
                                    limits=httpx.Limits(max_keepalive_connections=1))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def chat(self, payload: Mapping[str, Any]) -> ChatResult:
        """One whole reply (`stream` is set to false)."""
        with self._redacting():
            response = self._send("POST", self.chat_url, self._encode(payload, stream=False), "application/json")
            try:
                body = self._read(response, self.chat_url)
            finally:
                response.close()
            return parse_chat_response(body, response.headers.get("content-type"),
                                       url=display_url(self.chat_url), status=response.status_code)

    def stream_chat(
        self,
        payload: Mapping[str, Any],
        on_text: Callable[[str], object] | None = None,
        on_reasoning: Callable[[str], object] | None = None,
    ) -> StreamResult:
        """A streamed reply (`stream` is set to true): `on_text` gets each piece as it arrives.

        Returns only when the stream ended normally; otherwise raises, with what had arrived
        on the exception's `partial` (a StreamResult whose `ended` is "error" or "interrupted").
        """
        with self._redacting():
            response = self._send("POST", self.chat_url, self._encode(payload, stream=True), "text/event-stream")
            try:
                return self._read_stream(response, on_text, on_reasoning)
            finally:
                response.close()

    def list_models(self) -> ModelList:
        """`GET /v1/models`; `.first_id` and vLLM's `.max_model_len()` are what the cache keeps."""
        with self._redacting():
            response = self._send("GET", self.models_url, None, "application/json")
            try:
                body = self._read(response, self.models_url)
            finally:
                response.close()
            return parse_model_list(body, response.headers.get("content-type"),
                                    url=display_url(self.models_url), status=response.status_code)

    def context_size(self) -> int | None:
        """llama.cpp's context size (`n_ctx` of `GET /props`); None where a server has no such page."""
        url = props_url(self.models_url)
        with self._redacting():
            try:
                response = self._send("GET", url, None, "application/json")
                try:
                    body = self._read(response, url)
                finally:
                    response.close()
            except EndpointError:
                return None
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return None
        if not isinstance(doc, dict):
            return None
        settings = doc.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else doc.get("n_ctx")
        return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None

    @contextmanager
    def _redacting(self) -> Iterator[None]:
        try:
            yield
        except EndpointError as exc:
            exc.redact(self._token)
            raise

    @staticmethod
    def _encode(payload: Mapping[str, Any], *, stream: bool) -> bytes:
        return msgspec.json.encode({**payload, "stream": stream})

    def _send(self, method: str, url: str, body: bytes | None, accept: str) -> httpx.Response:
        """An open 2xx response, after retrying 429/503 and a stale pooled connection; any other
        status raises."""
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            response = self._open(method, url, body, headers)
            if response.is_success:
                return response
            try:
                raw = self._read(response, url, error_body=True)
            finally:
                response.close()
            status = response.status_code
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if status in RETRY_STATUSES:
                wait = self._retry.delay(attempt, retry_after)
                if wait is not None:
                    self._retry.sleep(wait)
                    continue
            if self._token:  # scrub before parsing, so no cut-off prefix of it survives either
                raw = raw.replace(self._token.encode(), b"***")
            raise http_error(
                display_url(url), status, response.reason_phrase, raw, response.headers.get("content-type"),
                token_sent=self._token is not None, deployment=self._deployment, attempts=attempt,
                retry_after=retry_after,
                location=display_url(response.headers.get("location", "")) if response.is_redirect else None,
            )

    def _open(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> httpx.Response:
        """The response head; sent again on a new connection when a pooled one turned out to be
        closed (STALE_CONNECTION_RETRIES). Not an `attempt`: the server never answered those."""
        for stale in range(STALE_CONNECTION_RETRIES + 1):
            trace = _ConnectionTrace()
            request = self._client.build_request(method, url, content=body, headers=headers,
                                                 extensions={"trace": trace})
            try:
                return self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                if not (trace.reused and stale < STALE_CONNECTION_RETRIES and _closed_unanswered(exc)):
                    raise self._network_error(exc, url) from exc
        raise AssertionError("unreachable: the last pass returns or raises")

    def _read(self, response: httpx.Response, url: str, *, error_body: bool = False) -> bytes:
        """The whole body. An error body is cut at MAX_ERROR_BODY, and a failure while reading it
        keeps what arrived (its status says more); a reply over MAX_BODY or broken off raises."""
        limit = MAX_ERROR_BODY if error_body else MAX_BODY
        buf = bytearray()
        try:
            for chunk in response.iter_bytes():
                buf += chunk
                if len(buf) > limit:
                    if error_body:
                        break
                    raise InvalidResponse(display_url(url), f"the reply is larger than {MAX_BODY >> 20} MiB",
                                          status=response.status_code)
        except httpx.HTTPError as exc:
            if not error_body:
                raise self._network_error(exc, url) from exc
        return bytes(buf[:limit])

    def _read_stream(
        self,
        response: httpx.Response,
        on_text: Callable[[str], object] | None,
        on_reasoning: Callable[[str], object] | None,
    ) -> StreamResult:
        url = display_url(self.chat_url)
        if "json" in (response.headers.get("content-type") or "").lower():  # LiteLLM answers errors so
            raise self._not_an_event_stream(response, self._read(response, self.chat_url))
        accumulator = StreamAccumulator(url, on_text, on_reasoning)
        decoder = SSEDecoder()
        head = bytearray()  # kept until the first event, in case this is no event stream at all
        try:
            try:
                for chunk in response.iter_bytes():
                    if not accumulator.events and len(head) < MAX_ERROR_BODY:
                        head += chunk
                    for event in decoder.feed(chunk):
                        if accumulator.feed(event):
                            return accumulator.result("done")
                for event in decoder.flush():
                    if accumulator.feed(event):
                        return accumulator.result("done")
            except httpx.ReadTimeout as exc:
                raise ReadTimeout(url, self._timeout.read, received=accumulator.received) from exc
            except httpx.HTTPError as exc:
                raise StreamInterrupted(url, _reason(exc), received=accumulator.received) from exc
            if not accumulator.events:
                raise self._not_an_event_stream(response, bytes(head))
            return accumulator.end_of_body()
        except EndpointError as exc:
            if exc.partial is None:
                exc.partial = accumulator.result("error" if isinstance(exc, APIError) else "interrupted")
            raise

    def _not_an_event_stream(self, response: httpx.Response, body: bytes) -> EndpointError:
        """A 2xx reply to a stream request that is no event stream: the error it reports, if any."""
        url = display_url(self.chat_url)
        try:
            error = error_in_body(decode_json(body), body, url=url, status=response.status_code)
        except msgspec.DecodeError:
            error = None
        return error or NotAnEventStream(url, status=response.status_code,
                                         content_type=response.headers.get("content-type"),
                                         excerpt=one_line(body[:400].decode("utf-8", "replace"), 120) or None)

    def _network_error(self, exc: httpx.HTTPError, url: str) -> EndpointError:
        shown = display_url(url)
        if isinstance(exc, httpx.ConnectTimeout):
            return ConnectTimeout(shown, self._timeout.connect)
        if isinstance(exc, httpx.ReadTimeout):
            return ReadTimeout(shown, self._timeout.read)
        if isinstance(exc, httpx.TimeoutException):
            return EndpointTimeout(f"timed out sending the request to {shown}", url=shown, seconds=self._timeout.write)
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return InvalidEndpointURL(shown, str(exc))
        cause = _root_cause(exc)
        if isinstance(exc, httpx.ConnectError):
            if isinstance(cause, socket.gaierror):
                return DNSError(shown, urlsplit(url).hostname or "")
            if isinstance(cause, ssl.SSLError):
                certificate = isinstance(cause, ssl.SSLCertVerificationError)
                return TLSError(shown, _reason(cause), certificate=certificate)
            return ConnectError(shown, _reason(cause or exc))
        return ConnectionLost(shown, _reason(cause or exc))


class _ConnectionTrace:
    """httpcore's `trace` hook for one request: did it open a connection or use a pooled one?"""

    __slots__ = ("connected",)

    def __init__(self) -> None:
        self.connected = False

    def __call__(self, name: str, info: Mapping[str, Any]) -> None:
        if name.startswith("connection.connect_"):  # connect_tcp / connect_unix_socket
            self.connected = True

    @property
    def reused(self) -> bool:
        return not self.connected


def _closed_unanswered(exc: httpx.HTTPError) -> bool:
    """Closed (FIN, or RST when our request sat unread) before any response came back.

    Raised by `send`, so no response head had arrived. httpcore's message is the only mark of the
    FIN case; the stale-connection tests in tests/endpoint/test_real_servers.py fail if it changes."""
    if isinstance(exc, httpx.RemoteProtocolError):
        return "without sending a response" in str(exc)
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return isinstance(_root_cause(exc), ConnectionResetError | BrokenPipeError)
    return False


def _root_cause(exc: BaseException) -> BaseException | None:
    """The OS-level error under httpx's and httpcore's wrappers (a TLS or DNS error first)."""
    found = None
    seen = 0
    current: BaseException | None = exc.__cause__ or exc.__context__
    while current is not None and seen < 10:
        if isinstance(current, ssl.SSLError | socket.gaierror):
            return current
        if isinstance(current, OSError):
            found = current
        current = current.__cause__ or current.__context__
        seen += 1
    return found


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return exc.verify_message
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, ssl.SSLError):
        return exc.strerror
    return one_line(str(exc), 200) or type(exc).__name__
