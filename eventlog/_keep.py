"""Kept-aside copies: the original bytes of a file the store had to repair or could not place.

They go to `bai/kept/<name>.<time>`, and stay bounded: at most KEEP_COUNT per file name, none
older than KEEP_DAYS. Nothing the user wrote is thrown away without a copy, and the copies
never pile up. A clear removes the copies that may hold the cleared text (forget): a clear
leaves the text nowhere on disk.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from ._errors import StoreWriteError
from ._files import StorePaths
from ._fsio import atomic_write, ensure_private_dir
from ._ids import canonical_deployment_id, is_valid_deployment_id

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


_COPY = re.compile(r"(?P<name>.+)\.\d{8}T\d{6}\.\d{6}Z")  # as keep_aside names them
CHAT_COPIES = ("history.json",)  # copies of shared files that hold chat text of several deployments


def forget(paths: StorePaths, deployment: str | None) -> None:
    """Remove the kept copies that may hold `deployment`'s chat text (every deployment's, for
    None): copies of its log, and copies of history.json naming it. A history.json copy holds
    other deployments too; it goes whole, since a damaged file cannot be rewritten without the
    cleared text reliably."""
    try:
        entries = [e for e in os.scandir(paths.kept) if e.is_file(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return
    for e in entries:
        m = _COPY.fullmatch(e.name)
        if m is None:
            continue
        name = m["name"]
        if name in CHAT_COPIES:
            doomed = deployment is None or _names(e.path, deployment)
        else:
            doomed = name.endswith(".jsonl") and (deployment is None or _log_of(name) == deployment)
        if doomed:
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                pass
            except OSError as err:
                raise StoreWriteError(f"a kept copy ({e.name})", err) from err


def _log_of(name: str) -> str:
    """The stream a kept log copy is of: bai 0.1's copies keep the id as it was spelled
    (an upper-case UUID, `urn:uuid:`), so the id is brought to its canonical form."""
    base = name[: -len(".jsonl")]
    return canonical_deployment_id(base) if is_valid_deployment_id(base) else base


def _names(path: str, deployment: str) -> bool:
    """Whether a kept file mentions the deployment's id (a UUID in any case)."""
    try:
        with open(path, "rb") as f:  # bounded: kept copies are of files the store read whole
            data = f.read()
    except OSError:
        return True  # cannot tell: a clear errs on the side of forgetting
    return deployment.lower().encode() in data.lower()
