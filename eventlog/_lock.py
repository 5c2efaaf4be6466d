"""The writers' lock: flock(LOCK_EX) on `.lock`, polled so a stuck holder becomes a clear error."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from ._errors import StoreBusy, StoreWriteError
from ._fsio import open_private


class WriterLock:
    """Context manager holding the store's exclusive lock. The lock file is never renamed or deleted."""

    def __init__(self, path: Path, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> "WriterLock":
        try:
            fd = open_private(self._path, os.O_RDWR | os.O_CREAT)
        except OSError as e:
            raise StoreWriteError("anything (the store's lock file cannot be opened)", e) from e
        deadline = time.monotonic() + self._timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreBusy(str(self._path), self._timeout) from None
                time.sleep(delay)
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
