"""What an httpx failure was underneath: the OS, TLS or DNS error, and its reason in words."""

from __future__ import annotations

import socket
import ssl

import httpx

from ._text import Redactor, one_line


def closed_unanswered(exc: httpx.HTTPError) -> bool:
    """Closed (FIN, or RST when our request sat unread) before any response came back.

    Raised by `send`, so no response head had arrived. httpcore's message is the only mark of the
    FIN case; the stale-connection tests in tests/endpoint/test_real_servers.py fail if it changes."""
    if isinstance(exc, httpx.RemoteProtocolError):
        return "without sending a response" in str(exc)
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return isinstance(root_cause(exc), ConnectionResetError | BrokenPipeError)
    return False


def root_cause(exc: BaseException) -> BaseException | None:
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


def reason(exc: BaseException, redact: Redactor) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return exc.verify_message
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, ssl.SSLError):
        return exc.strerror
    return one_line(redact.text(str(exc)), 200) or type(exc).__name__  # it may quote the server
