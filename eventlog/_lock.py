"""The writers' lock: flock(LOCK_EX) on `.lock`, polled so a stuck holder becomes a clear error.

`.lock` is opened like every file bai writes (_fsio.open_private): never through a link (a
dangling link must not create its target), never a FIFO or a folder.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Callable

from ._errors import StoreBusy, StoreWriteError
from ._fsio import open_private

NOTE_AFTER = 3.0  # seconds of waiting before `on_wait` is told (a long wait should not look like a hang)


class WriterLock:
    """Context manager holding the store's exclusive lock. The lock file is never renamed or deleted.

    `on_wait`, if given, is called once when the wait passes NOTE_AFTER seconds."""

    def __init__(self, path: Path, timeout: float, *, on_wait: Callable[[], None] | None = None) -> None:
        self._path = path
        self._timeout = timeout
        self._on_wait = on_wait
        self._fd: int | None = None

    def __enter__(self) -> "WriterLock":
        try:
            fd = open_private(self._path, os.O_RDWR | os.O_CREAT)
        except OSError as e:
            raise StoreWriteError("anything (the store's lock file cannot be opened)", e) from e
        started = time.monotonic()
        deadline = started + self._timeout
        note_at = started + NOTE_AFTER if self._on_wait is not None else None
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    os.close(fd)
                    raise StoreBusy(str(self._path), self._timeout) from None
                if note_at is not None and now >= note_at:
                    note_at = None
                    self._on_wait()  # type: ignore[misc]
                time.sleep(min(delay, max(deadline - now, 0)))
                delay = min(delay * 2, 0.05)
            except BaseException:
                os.close(fd)
                raise
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock
