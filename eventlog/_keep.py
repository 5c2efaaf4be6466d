"""Kept-aside copies: the original bytes of a file the store had to repair or could not place.

They go to `bai/kept/<name>.<time>`, and stay bounded: at most KEEP_COUNT per file name, none
older than KEEP_DAYS. Nothing the user wrote is thrown away without a copy, and the copies
never pile up.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

from ._errors import StoreWriteError
from ._files import StorePaths
from ._fsio import atomic_write, ensure_private_dir

KEEP_COUNT = 5
KEEP_DAYS = 30


def keep_aside(paths: StorePaths, name: str, data: bytes) -> Path:
    """Write `data` as a new copy of `name` and prune the old ones; returns the copy's path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    target = paths.kept / f"{name}.{stamp}"
    try:
        ensure_private_dir(paths.kept)
        atomic_write(target, data)
    except OSError as e:
        raise StoreWriteError(f"a copy of {name}", e) from e
    prune(paths.kept, name)
    return target


def prune(folder: Path, name: str, *, now: float | None = None) -> None:
    """Remove copies of `name` beyond the newest KEEP_COUNT, and any older than KEEP_DAYS."""
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(name + ".") and e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return
    entries.sort(key=lambda e: e.name, reverse=True)  # the time stamp sorts as text
    oldest = (now if now is not None else time.time()) - KEEP_DAYS * 86400
    for i, e in enumerate(entries):
        if i >= KEEP_COUNT or e.stat(follow_symlinks=False).st_mtime < oldest:
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                pass
