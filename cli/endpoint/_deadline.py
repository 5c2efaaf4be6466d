"""The deadline of one call, however the server trickles: a timer that shuts the connection."""

from __future__ import annotations

import threading
import time
from typing import Callable


class Deadline:
    """The deadline of one call: `passed()`, `left()`, and a timer that calls `on_expiry` (from
    its own thread) when it passes."""

    def __init__(self, seconds: float, on_expiry: Callable[[], None]) -> None:
        self.at = time.monotonic() + seconds
        self._expired = threading.Event()
        self._on_expiry = on_expiry
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self._expired.set()
        self._on_expiry()

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self._expired.is_set() or self.left() <= 0

    def cancel(self) -> None:
        self._timer.cancel()
