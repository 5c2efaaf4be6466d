"""How long bai waits for an endpoint, and how often it asks again.

Timeouts are always explicit (DESIGN.md: connect 10 s, read `--timeout`, default 300 s). A request
is tried again on 429 and 503 (the server said "not now"), a bounded number of times; and once,
on a fresh connection, when a reused keep-alive connection turned out closed before any answer
(see `_transport.STALE_CONNECTION_RETRIES`).
No httpx here, so the CLI can show these defaults in `--help` without loading the client.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_READ_TIMEOUT", "RETRY_STATUSES", "RetryPolicy", "parse_retry_after"]

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0
RETRY_STATUSES = frozenset({429, 503})


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
