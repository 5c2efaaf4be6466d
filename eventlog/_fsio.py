"""Durable file primitives: private files, full writes, fsync, atomic replace; and the one rule
that keeps bai's writes inside its store.

bai writes only regular files, never through a symbolic link, and never blocks on open: every
open passes O_NOFOLLOW (writes) and O_NONBLOCK, and is checked with fstat before anything is
read or written. A link, a folder, a FIFO, a socket or a device where bai expects a file (or a
link or file where it expects a folder) is an OddPath: refused, and left exactly as it is (the
link's target included). Reads follow links, to regular files only: reading harms nothing, and
a settings file linked from a dotfiles folder stays readable; only writing through one is
refused.

Every call that writes goes through the `os` module at call time (os.open, os.write,
os.fsync, os.replace, os.ftruncate), so fault-injection and crash tests can patch those
functions. Reads open through `_open_to_read`, bound once: they are not part of the fault
model (a read-only or full disk fails writes, not reads), as they were not when reads used
the built-in open().
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Callable

FILE_MODE = 0o600
DIR_MODE = 0o700
_NOBLOCK = os.O_CLOEXEC | os.O_NONBLOCK
_open_to_read = os.open


def describe_mode(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


class OddPath(OSError):
    """A path of the store holding something bai neither reads nor writes: a symbolic link, a
    FIFO, a device, a folder where a file belongs, a file where a folder belongs."""

    def __init__(self, path: os.PathLike[str] | str, kind: str, *, wanted: str = "a regular file") -> None:
        super().__init__(errno.ELOOP if kind == "a symbolic link" else errno.EINVAL,
                         f"{path} is {kind}, not {wanted}", str(path))
        self.kind = kind
        self.wanted = wanted
        self.path = str(path)

    def __str__(self) -> str:
        return self.strerror

    @property
    def advice(self) -> str:
        if self.kind == "a symbolic link":
            return f"bai never writes through a link, which could lead out of its store: replace it with {self.wanted}"
        return "move it away"


def _odd_from_errno(e: OSError, path: os.PathLike[str] | str) -> OddPath | None:
    """The OddPath an open's error stands for, if it is one (O_NOFOLLOW on a link: ELOOP; a write
    open of a folder: EISDIR; of a FIFO with no reader, or a socket: ENXIO)."""
    kind = {errno.ELOOP: "a symbolic link", errno.EISDIR: "a folder", errno.ENXIO: "a FIFO or a socket"}.get(e.errno or 0)
    return OddPath(path, kind) if kind else None


def _check_regular(fd: int, path: os.PathLike[str] | str) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OddPath(path, describe_mode(st.st_mode))
    return st


def ensure_private_dir(path: Path, *, follow: bool = False) -> int | None:
    """Create `path` (and missing parents) as 0700, or tighten an existing folder to 0700.

    Returns the mode it had when the call changed it (None when it was already 0700 or was
    created). A link (unless `follow`: the store's root may be one) or anything not a folder
    is an OddPath; the chmod of an existing folder goes through a descriptor opened with
    O_NOFOLLOW, so it never lands on a link's target."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise OddPath(path, describe_mode(st.st_mode), wanted="a folder")
        if (st.st_mode & 0o777) == DIR_MODE:
            return None  # the common case: one stat
        _chmod_dir(path, follow)
        return st.st_mode & 0o777
    missing = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            st = os.lstat(d)
            if not stat.S_ISDIR(st.st_mode):
                raise OddPath(d, describe_mode(st.st_mode), wanted="a folder") from None
            continue
        _chmod_dir(d, False)  # the umask may have cut bits off the mode given to mkdir
        fsync_dir(d.parent)  # the new entry is durable only once its parent is synced
    return None


def _chmod_dir(path: Path, follow: bool) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OddPath(path, "a symbolic link", wanted="a folder") from None
        if e.errno == errno.ENOTDIR:
            raise OddPath(path, describe_mode(os.lstat(path).st_mode), wanted="a folder") from None
        raise
    try:
        os.fchmod(fd, DIR_MODE)
    finally:
        os.close(fd)


def open_private(path: Path, flags: int) -> int:
    """Open a regular file for writing (creating it 0600 if asked), never through a link and
    never blocking; force its mode to 0600 whatever the umask. Anything else: OddPath."""
    try:
        fd = os.open(path, flags | _NOBLOCK | os.O_NOFOLLOW, FILE_MODE)
    except OSError as e:
        odd = _odd_from_errno(e, path)
        if odd is not None:
            raise odd from None
        raise
    try:
        st = _check_regular(fd, path)
        if (st.st_mode & 0o777) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except OddPath:
        raise
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_mode(fd: int, st: os.stat_result) -> None:
    """Tighten an open file of the store to 0600 if it is looser (a file made by hand, by a
    tool with another umask). Best effort: a file of another user stays as it is."""
    if st.st_mode & 0o077:
        try:
            os.fchmod(fd, FILE_MODE)
        except OSError:
            pass


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


def check_replaceable(target: Path) -> None:
    """A file bai replaces must be a regular file or absent. os.replace would replace a link
    itself (its target untouched), but bai refuses rather than silently cutting a link someone
    made on purpose (a dotfiles manager, a shared folder): they decide what it should be."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise OddPath(target, describe_mode(st.st_mode))


def atomic_write(target: Path, data: bytes) -> None:
    """Replace `target` with `data`: a reader sees the old file or the new one, never a mix.

    tmp file (O_EXCL, 0600) in the same directory, fsync, os.replace, fsync the directory.
    Any failure removes the tmp file and re-raises; the old file is untouched, except when
    only the directory fsync failed: then ReplacedNotDurable, and the caller may undo.
    A target that is not a regular file (a link, a FIFO...) is refused: OddPath.
    """
    check_replaceable(target)
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


def read_bytes(path: Path, *, limit: int | None = None) -> bytes | None:
    """The whole file (at most `limit` bytes if given), or None if it does not exist.

    A link is followed for reading, to a regular file only; anything that is not a regular
    file (a FIFO is never waited on), or a failure: StoreReadError. A file of the store read
    directly is tightened to 0600 if it is looser; a link's target never is."""
    from ._errors import StoreReadError

    try:
        try:
            fd = _open_to_read(path, os.O_RDONLY | _NOBLOCK | os.O_NOFOLLOW)
            linked = False
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            fd = _open_to_read(path, os.O_RDONLY | _NOBLOCK)
            linked = True
        st = _check_regular(fd, path)
        try:
            if not linked:
                private_mode(fd, st)
            return _read_all(fd, st.st_size, limit)
        finally:
            os.close(fd)
    except (FileNotFoundError, NotADirectoryError):
        return None  # NotADirectory: a folder on the way is a file; the writer reports it
    except OSError as e:
        raise StoreReadError(str(path), e) from e


def _read_all(fd: int, size: int, limit: int | None) -> bytes:
    parts = []
    total = 0
    want = size + 1  # one read in the common case, a second to see the end
    while limit is None or total < limit:
        chunk = os.read(fd, max(want, 65536) if limit is None else min(max(want, 65536), limit - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def tighten(folders: list[Path], *, only: Callable[[str], bool] | None = None) -> int:
    """Make each existing folder 0700 and each regular file directly in it 0600 (only those
    whose names `only` accepts, if given), never through a link (a link in the store is left
    alone, its target untouched). Returns how many it changed. A repair for a store someone
    loosened: the caller decides when it is worth a walk."""
    changed = 0
    for folder in folders:
        try:
            st = os.lstat(folder)
            if not stat.S_ISDIR(st.st_mode):
                continue
            if (st.st_mode & 0o777) != DIR_MODE:
                _chmod_dir(folder, False)
                changed += 1
            entries = list(os.scandir(folder))
        except OSError:
            continue  # gone, or not ours: the writes that need it report it
        for entry in entries:
            if only is not None and not only(entry.name):
                continue
            try:
                if not entry.is_file(follow_symlinks=False) or not entry.stat(follow_symlinks=False).st_mode & 0o077:
                    continue
                fd = _open_to_read(entry.path, os.O_RDONLY | _NOBLOCK | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.fchmod(fd, FILE_MODE)
                    changed += 1
            except OSError:
                pass
            finally:
                os.close(fd)
    return changed
