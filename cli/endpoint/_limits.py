"""How long bai waits for an endpoint, how often it asks again, and how much it reads.

Timeouts are always explicit (DESIGN.md: connect 10 s, read `--timeout`, default 300 s). A request
is tried again on 429 and 503 (the server said "not now"), a bounded number of times; and once,
on a fresh connection, when a reused keep-alive connection turned out closed before any answer
(see `_transport.STALE_CONNECTION_RETRIES`).
A deadline bounds a whole request (`DEFAULT_DEADLINE`): a server that trickles a byte now and
then, or sends only keep-alive comments, never trips the read timeout.
What a reply may hold in memory is bounded too, streamed or not, counted after decompression.
No httpx here, so the CLI can show these defaults in `--help` without loading the client.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_DEADLINE", "DEFAULT_READ_TIMEOUT", "MAX_BODY", "MAX_DEADLINE", "MAX_ERROR_BODY",
    "MAX_EVENT", "RETRY_STATUSES", "RetryPolicy", "parse_retry_after",
]

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0
# 15 minutes: a long answer from a slow server fits (4,000 tokens at 5 tokens/s take 13), and
# a hung one is given up on in a time a user may still be waiting for.
DEFAULT_DEADLINE = 900.0
MAX_DEADLINE = 7 * 24 * 3600.0  # any longer is no deadline (and no timer takes 1e308 s)
RETRY_STATUSES = frozenset({429, 503})

MAX_BODY = 32 * 1024 * 1024  # a whole reply, or a streamed answer's text; beyond this it is no chat answer
MAX_ERROR_BODY = 64 * 1024  # an error body: only its message is shown
# One event of a stream. Far above any real chunk (a token or a few), yet small enough that
# decoding it stays cheap: JSON of many tiny objects takes up to ~25x its size in memory.
MAX_EVENT = 4 * 1024 * 1024


def parse_retry_after(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = (when - (now or datetime.datetime.now(datetime.timezone.utc))).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class RetryPolicy:
    """Every failure but 429/503 is final. Waits `backoff`, doubling, or what Retry-After asks;
    a Retry-After above `max_wait` is not waited for: the error says when to come back instead."""

    attempts: int = 3  # in all, the first included
    backoff: float = 0.5
    max_wait: float = 20.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait after failed attempt number `attempt`, or None to give up."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_wait else None
        return min(self.backoff * 2 ** (attempt - 1), self.max_wait)
