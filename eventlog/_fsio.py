"""Durable file primitives: private files, full writes, fsync, atomic replace.

Every call goes through the `os` module at call time (os.write, os.fsync, os.replace,
os.ftruncate), so fault-injection tests can patch those functions.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as 0700; tighten it to 0700 if it exists."""
    try:
        if (os.stat(path).st_mode & 0o777) == DIR_MODE:
            return  # the common case: one stat
    except FileNotFoundError:
        pass
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)  # the umask may have cut bits off the mode given to mkdir
        fsync_dir(d.parent)  # the new entry is durable only once its parent is synced
    if (path.stat().st_mode & 0o777) != DIR_MODE:
        os.chmod(path, DIR_MODE)


def open_private(path: Path, flags: int) -> int:
    """Open (creating 0600 if asked) and force the mode to 0600 whatever the umask."""
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    try:
        if (os.fstat(fd).st_mode & 0o777) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written; a write of zero bytes is an error, not a loop."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(28, "short write: no progress")  # ENOSPC-like; never spin
        view = view[n:]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp.{os.getpid()}.{os.urandom(4).hex()}")


def is_tmp_name(name: str) -> bool:
    return name.startswith(".") and ".tmp." in name


class ReplacedNotDurable(OSError):
    """The replace happened (readers see the new file) but the directory fsync failed."""


def atomic_write(target: Path, data: bytes) -> None:
    """Replace `target` with `data`: a reader sees the old file or the new one, never a mix.

    tmp file (O_EXCL, 0600) in the same directory, fsync, os.replace, fsync the directory.
    Any failure removes the tmp file and re-raises; the old file is untouched, except when
    only the directory fsync failed: then ReplacedNotDurable, and the caller may undo.
    """
    tmp = tmp_name(target)
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        fsync_dir(target.parent)
    except OSError as e:
        raise ReplacedNotDurable(e.errno, e.strerror) from e


def undo_replace(target: Path, previous: bytes | None) -> bool:
    """Put back what `target` held before a replace that could not be made durable (None: it
    did not exist). Best effort, no directory fsync: only what readers see matters here, since
    the old state is what the disk already holds. Returns whether it worked."""
    try:
        if previous is None:
            os.unlink(target)
            return True
        tmp = tmp_name(target)
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            write_all(fd, previous)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        return True
    except OSError:
        return False


def read_bytes(path: Path) -> bytes | None:
    """The whole file, or None if it does not exist. Other failures: StoreReadError."""
    from ._errors import StoreReadError

    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreReadError(str(path), e) from e
