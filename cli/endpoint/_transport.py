"""The HTTP side: the httpx client, retries, and httpx failures as `_errors`.

The only module that imports httpx. Commands import it when they are about to talk to an
endpoint, never at start-up, so `bai --help` does not pay for httpx.

    with EndpointClient("http://127.0.0.1:8000", token=None, timeout=300.0) as client:
        result = client.chat({"model": m, "messages": msgs})            # ChatResult
        result = client.stream_chat(payload, on_text=print_piece)        # StreamResult
        models = client.list_models()                                    # ModelList

What a hostile or broken server cannot do to bai here:
- keep it waiting: besides the read timeout (the longest silence), each call has a deadline for
  the whole exchange, retries included; a timer shuts the socket down when it passes, so even a
  read that is blocked returns at once (a server trickling a byte a second, or only keep-alive
  comments, never trips the read timeout);
- fill its memory: bodies are read raw and unpacked by `_decoding` in bounded steps; a whole
  reply is at most MAX_BODY, a streamed answer too, one event MAX_EVENT, an error body
  MAX_ERROR_BODY (see `_limits`);
- show the token: what a server sent is scrubbed of it (`_text.Redactor`) before any of it is
  cut to length; errors are scrubbed once more on the way out;
- leave a user guessing at an https:// URL served in plain HTTP (`_plain_http`).
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
from ._deadline import Deadline
from ._decoding import ACCEPT_ENCODING, BodyDecodingError, CompressionBomb, ContentDecoder
from ._error_body import http_error
from ._errors import (
    APIError,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    DeadlineExceeded,
    DNSError,
    EndpointError,
    EndpointTimeout,
    InvalidEndpointURL,
    InvalidResponse,
    InvalidToken,
    NotAnEventStream,
    PlainHTTPServer,
    ReadTimeout,
    ReplyTooLarge,
    StreamInterrupted,
    TLSError,
)
from ._failures import closed_unanswered, reason, root_cause
from ._limits import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DEADLINE,
    DEFAULT_READ_TIMEOUT,
    MAX_BODY,
    MAX_ERROR_BODY,
    MAX_EVENT,
    RETRY_STATUSES,
    RetryPolicy,
    parse_retry_after,
)
from ._plain_http import HandshakeWatch, answers_plain_http, probe_allowed
from ._response import error_in_body, parse_chat_response, parse_model_list
from ._results import ChatResult, StreamResult
from ._sse import SSEDecoder
from ._stream import StreamAccumulator
from ._text import Redactor, one_line
from ._urls import display_url, endpoint_urls, plain_http_url, props_url
from ._wire import ModelList, decode_json

__all__ = ["USER_AGENT", "EndpointClient"]

# A server may close an idle keep-alive connection just as the next request goes out on it
# (llama-server does so after every streamed reply, though it sends `Keep-Alive: timeout=5`):
# that request fails with no response at all. The server never answered it, so it is sent
# again, this many times, on a new connection.
STALE_CONNECTION_RETRIES = 1


USER_AGENT = f"bai-chat/{__version__} httpx/{httpx.__version__}"


class EndpointClient:
    """One endpoint. `timeout` is the read timeout: the longest wait for the next bytes, also
    between stream chunks; `deadline` the longest one call may take in all (retries included).
    `verify=False` turns TLS verification off (only when asked for). `deployment` only fills in
    the `chat-config` hint of 401/403 messages."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_READ_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        verify: bool = True,
        retry: RetryPolicy = RetryPolicy(),
        deployment: str | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        if not (0 < timeout < float("inf") and 0 < connect_timeout < float("inf") and 0 < deadline < float("inf")):
            raise ValueError("timeouts and the deadline must be positive, finite numbers of seconds")
        self.chat_url, self.models_url = endpoint_urls(base_url)
        token = (token or "").strip() or None
        if token is not None and not all("!" <= c <= "~" for c in token):
            raise InvalidToken(deployment)
        self._token = token
        self._redact = Redactor(token)
        self._deployment = deployment
        self._retry = retry
        self._timeout = httpx.Timeout(connect=connect_timeout, read=timeout, write=timeout, pool=connect_timeout)
        self._deadline_seconds = deadline
        self._deadline: Deadline | None = None
        self._tls = self.chat_url.lower().startswith("https://")
        self._probe = self._tls and probe_allowed(urlsplit(self.chat_url).hostname or "")
        self._stream_of_connection: Any = None  # httpcore's network stream of the newest connection
        self._handshake: HandshakeWatch | None = None
        self._tcp_connected = False  # this attempt's TCP connection was made (for a TLS failure)
        headers = {"User-Agent": user_agent, "Accept-Encoding": ACCEPT_ENCODING}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # One idle connection at most (bai sends one request at a time): once a stale one has
        # failed, none is left in the pool, so the retry is sure to connect anew; and a reused
        # connection is always the newest one (the deadline's timer finds its socket).
        # Building a verifying SSL context loads the CA bundle (about 15 ms); a plain http://
        # endpoint never does TLS (and redirects are not followed), so it gets none.
        verify = verify and self._tls
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
        with self._call():
            response = self._send("POST", self.chat_url, self._encode(payload, stream=False), "application/json")
            try:
                body = self._read(response, self.chat_url)
            finally:
                response.close()
            return parse_chat_response(body, response.headers.get("content-type"), url=display_url(self.chat_url),
                                       status=response.status_code, redact=self._redact)

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
        with self._call():
            response = self._send("POST", self.chat_url, self._encode(payload, stream=True), "text/event-stream")
            try:
                return self._read_stream(response, on_text, on_reasoning)
            finally:
                response.close()

    def list_models(self) -> ModelList:
        """`GET /v1/models`; `.first_id` and vLLM's `.max_model_len()` are what the cache keeps."""
        with self._call():
            response = self._send("GET", self.models_url, None, "application/json")
            try:
                body = self._read(response, self.models_url)
            finally:
                response.close()
            return parse_model_list(body, response.headers.get("content-type"), url=display_url(self.models_url),
                                    status=response.status_code, redact=self._redact)

    def context_size(self) -> int | None:
        """llama.cpp's context size (`n_ctx` of `GET /props`); None where a server has no such page,
        or an unreadable one (it is optional: bai goes on without it)."""
        url = props_url(self.models_url)
        with self._call():
            try:
                response = self._send("GET", url, None, "application/json")
                try:
                    body = self._read(response, url)
                finally:
                    response.close()
            except EndpointError:
                return None
        try:
            doc = decode_json(body)
        except msgspec.DecodeError:
            return None
        if not isinstance(doc, dict):
            return None
        settings = doc.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else doc.get("n_ctx")
        return n_ctx if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) and n_ctx > 0 else None

    @contextmanager
    def _call(self) -> Iterator[None]:
        """One public call: its deadline runs, and no error leaves with the token in it."""
        self._deadline = Deadline(self._deadline_seconds, self._shut_down_connection)
        try:
            yield
        except EndpointError as exc:
            exc.redact(self._redact)
            raise
        finally:
            self._deadline.cancel()

    def _shut_down_connection(self) -> None:
        """From the deadline's timer thread: a read blocked on the connection returns at once.
        socket.shutdown() on the socket itself, not SSLSocket.shutdown() (which would also
        drop the TLS object under the reading thread)."""
        stream = self._stream_of_connection
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def _timeouts(self) -> httpx.Timeout:
        """The configured timeouts, none longer than what is left of the deadline."""
        left = max(self._deadline.left(), 0.001) if self._deadline else None
        t = self._timeout

        def cap(value: float | None) -> float | None:
            return value if left is None or (value is not None and value <= left) else left

        return httpx.Timeout(connect=cap(t.connect), read=cap(t.read), write=cap(t.write), pool=cap(t.pool))

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
                if wait is not None and (self._deadline is None or wait < self._deadline.left()):
                    self._retry.sleep(wait)
                    continue
            raise http_error(
                display_url(url), status, self._redact.text(response.reason_phrase), raw,
                response.headers.get("content-type"), token_sent=self._token is not None,
                deployment=self._deployment, attempts=attempt, retry_after=retry_after,
                location=self._redact.text(display_url(response.headers.get("location", "")))
                if response.is_redirect else None,
            )

    def _open(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> httpx.Response:
        """The response head; sent again on a new connection when a pooled one turned out to be
        closed (STALE_CONNECTION_RETRIES). Not an `attempt`: the server never answered those."""
        for stale in range(STALE_CONNECTION_RETRIES + 1):
            self._check_deadline(url)
            trace = _ConnectionTrace(self)
            self._handshake = None
            request = self._client.build_request(method, url, content=body, headers=headers,
                                                 timeout=self._timeouts(), extensions={"trace": trace})
            self._tcp_connected = False
            try:
                return self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                if not (trace.reused and stale < STALE_CONNECTION_RETRIES and closed_unanswered(exc)):
                    raise self._network_error(exc, url) from exc
            finally:
                self._end_handshake()
        raise AssertionError("unreachable: the last pass returns or raises")

    # -- connections: httpcore's trace hook (see _ConnectionTrace) ----------------------------------

    def _connected(self, stream: Any) -> None:
        self._tcp_connected = True
        self._stream_of_connection = stream
        if self._probe and isinstance(sock := stream.get_extra_info("socket"), socket.socket):
            parts = urlsplit(self.chat_url)
            try:
                self._handshake = HandshakeWatch(sock, parts.hostname or "", parts.port or 443)
            except OSError:
                self._handshake = None

    def _handshake_started(self) -> None:
        if self._handshake is not None:
            self._handshake.start()

    def _handshake_done(self, stream: Any) -> None:
        self._stream_of_connection = stream
        self._end_handshake()

    def _end_handshake(self) -> None:
        if self._handshake is not None:
            self._handshake.end()

    # -- bodies ----------------------------------------------------------------------------------------

    def _chunks(self, response: httpx.Response, url: str, *, error_body: bool = False) -> Iterator[bytes]:
        """The body as it arrives, unpacked in bounded steps. A broken or unknown encoding raises
        InvalidResponse (for an error body it ends the body: its status says more)."""
        try:
            decoder = ContentDecoder(response.headers.get("content-encoding"))
            for raw in response.iter_raw():
                yield from decoder.feed(raw)
                self._check_deadline(url)
            yield from decoder.flush()
        except BodyDecodingError as exc:
            if error_body:
                return
            if isinstance(exc, CompressionBomb):
                raise ReplyTooLarge(display_url(url), "the reply", MAX_BODY, why=str(exc),
                                    status=response.status_code) from None
            raise InvalidResponse(display_url(url), f"the reply cannot be read: {exc}",
                                  status=response.status_code) from None

    def _read(self, response: httpx.Response, url: str, *, error_body: bool = False) -> bytes:
        """The whole body. An error body is cut at MAX_ERROR_BODY (scrubbed of the token first,
        reading the token's length more, so a token across the cut goes whole), and a failure
        while reading it keeps what arrived (its status says more); a reply over MAX_BODY or
        broken off raises."""
        limit = MAX_ERROR_BODY + self._redact.margin if error_body else MAX_BODY
        buf = bytearray()
        try:
            for chunk in self._chunks(response, url, error_body=error_body):
                buf += chunk
                if len(buf) > limit:
                    if error_body:
                        break
                    raise ReplyTooLarge(display_url(url), "the reply", MAX_BODY, status=response.status_code)
        except httpx.HTTPError as exc:
            if not error_body or self._deadline_passed():
                raise self._network_error(exc, url) from exc
        self._check_deadline(url)
        if error_body:
            return self._redact.bytes(bytes(buf[:limit]))[:MAX_ERROR_BODY]
        return bytes(buf)

    def _read_stream(
        self,
        response: httpx.Response,
        on_text: Callable[[str], object] | None,
        on_reasoning: Callable[[str], object] | None,
    ) -> StreamResult:
        url = display_url(self.chat_url)
        if "json" in (response.headers.get("content-type") or "").lower():  # LiteLLM answers errors so
            raise self._not_an_event_stream(response, self._read(response, self.chat_url))
        accumulator = StreamAccumulator(url, on_text, on_reasoning, max_kept=MAX_BODY, redact=self._redact)
        decoder = SSEDecoder()
        head = bytearray()  # kept until the first event, in case this is no event stream at all
        try:
            try:
                for chunk in self._chunks(response, self.chat_url):
                    if not accumulator.events and len(head) < MAX_ERROR_BODY:
                        head += chunk
                    for event in decoder.feed(chunk):
                        if accumulator.feed(event):
                            return accumulator.result("done")
                    if decoder.buffered > MAX_EVENT:
                        raise ReplyTooLarge(url, "one event of the stream", MAX_EVENT, status=response.status_code)
                for event in decoder.flush():
                    if accumulator.feed(event):
                        return accumulator.result("done")
            except httpx.HTTPError as exc:
                if self._deadline_passed():
                    raise DeadlineExceeded(url, self._deadline_seconds, received=accumulator.received) from exc
                if isinstance(exc, httpx.ReadTimeout):
                    raise ReadTimeout(url, self._timeout.read, received=accumulator.received) from exc
                raise StreamInterrupted(url, reason(exc, self._redact), received=accumulator.received) from exc
            if self._deadline_passed():  # the timer shut the connection: the body only seemed to end
                raise DeadlineExceeded(url, self._deadline_seconds, received=accumulator.received)
            if not accumulator.events:
                raise self._not_an_event_stream(response, bytes(head))
            return accumulator.end_of_body()
        except DeadlineExceeded as exc:  # said again with what had arrived
            error = DeadlineExceeded(url, self._deadline_seconds, received=accumulator.received)
            error.partial = accumulator.result("interrupted")
            raise error from exc.__cause__
        except EndpointError as exc:
            if exc.partial is None:
                exc.partial = accumulator.result("error" if isinstance(exc, APIError) else "interrupted")
            raise

    def _not_an_event_stream(self, response: httpx.Response, body: bytes) -> EndpointError:
        """A 2xx reply to a stream request that is no event stream: the error it reports, if any."""
        url = display_url(self.chat_url)
        body = self._redact.bytes(body)  # before the excerpt is cut
        try:
            error = error_in_body(decode_json(body), body, url=url, status=response.status_code)
        except msgspec.DecodeError:
            error = None
        return error or NotAnEventStream(url, status=response.status_code,
                                         content_type=response.headers.get("content-type"),
                                         excerpt=one_line(body[:400].decode("utf-8", "replace"), 120) or None)

    # -- the deadline ----------------------------------------------------------------------------------

    def _deadline_passed(self) -> bool:
        return self._deadline is not None and self._deadline.passed()

    def _check_deadline(self, url: str) -> None:
        if self._deadline_passed():
            raise DeadlineExceeded(display_url(url), self._deadline_seconds)

    # -- failures --------------------------------------------------------------------------------------

    def _network_error(self, exc: httpx.HTTPError, url: str) -> EndpointError:
        shown = display_url(url)
        if self._deadline_passed():
            return DeadlineExceeded(shown, self._deadline_seconds)
        handshake = self._handshake
        if handshake is not None and handshake.plain_http:
            return PlainHTTPServer(shown, plain_http_url(url))
        if isinstance(exc, httpx.ConnectTimeout):
            if self._tls and self._tcp_connected and self._plain_http_answers(url):  # the handshake timed out
                return PlainHTTPServer(shown, plain_http_url(url))
            return ConnectTimeout(shown, self._timeout.connect)
        if isinstance(exc, httpx.ReadTimeout):
            return ReadTimeout(shown, self._timeout.read)
        if isinstance(exc, httpx.TimeoutException):
            return EndpointTimeout(f"timed out sending the request to {shown}", url=shown, seconds=self._timeout.write)
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return InvalidEndpointURL(shown, str(exc))
        cause = root_cause(exc)
        if isinstance(exc, httpx.ConnectError):
            if isinstance(cause, socket.gaierror):
                return DNSError(shown, urlsplit(url).hostname or "")
            if isinstance(cause, ssl.SSLCertVerificationError):
                return TLSError(shown, reason(cause, self._redact), certificate=True)
            if self._tls and self._tcp_connected and self._plain_http_answers(url):
                return PlainHTTPServer(shown, plain_http_url(url))
            if isinstance(cause, ssl.SSLError):
                return TLSError(shown, reason(cause, self._redact))
            return ConnectError(shown, reason(cause or exc, self._redact))
        return ConnectionLost(shown, reason(cause or exc, self._redact))

    def _plain_http_answers(self, url: str) -> bool:
        if not self._probe or (self._handshake is not None and self._handshake.probed):
            return False  # (the watch asked already, and got no HTTP answer)
        parts = urlsplit(url)
        left = self._deadline.left() if self._deadline else None
        return answers_plain_http(parts.hostname or "", parts.port or 443, timeout=min(2.0, max(left or 2.0, 0.1)))


class _ConnectionTrace:
    """httpcore's `trace` hook for one request: did it open a connection or use a pooled one?
    It also hands the client the new connection's stream (for the deadline's timer) and the
    start and end of a TLS handshake (for the plain-HTTP watch)."""

    __slots__ = ("connected", "_client")

    def __init__(self, client: EndpointClient) -> None:
        self.connected = False
        self._client = client

    def __call__(self, name: str, info: Mapping[str, Any]) -> None:
        if name.startswith("connection.connect_"):  # connect_tcp / connect_unix_socket
            self.connected = True
            if name.endswith(".complete") and info.get("return_value") is not None:
                self._client._connected(info["return_value"])
        elif name == "connection.start_tls.started":
            self._client._handshake_started()
        elif name == "connection.start_tls.complete":
            self._client._handshake_done(info.get("return_value"))
        elif name == "connection.start_tls.failed":
            self._client._end_handshake()

    @property
    def reused(self) -> bool:
        return not self.connected
