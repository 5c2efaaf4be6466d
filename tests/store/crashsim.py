"""A power-loss simulator for the store's I/O.

The store calls os.open/write/fsync/replace/ftruncate/unlink/close (and os.mkdir) through the
`os` module at call time; `Disk.armed()` patches them so every call still happens for real (the
real files are the page cache) while a model keeps what a power loss would leave on the disk:

- a file's data (and its size and mtime) is durable as of its last fsync;
- a directory's entries (name -> file identity: creations, replaces, unlinks, mkdirs) are
  durable as of the last fsync of that directory;
- everything that exists when the Disk is made is durable.

Files are tracked by identity, not by inode number: a freed inode number is reused by the next
file created, while a durable directory entry may still point at the old file.

`Disk(top, crash_at=N)` raises PowerLoss (a BaseException, so no `except OSError` or `except
Exception` in the store can swallow it) instead of making the N-th intercepted call; later
calls (made while the stack unwinds) change nothing. `rebuild(variant)` then replaces the tree
under `top` with what the disk would hold after power comes back:

    durable    unsynced data and directory changes dropped
    torn-1     like durable, but files grown since their last fsync keep 1 unsynced byte
    torn-half  ... half of their unsynced bytes
    torn-all   ... all of their unsynced bytes (the size update hit the disk with the data)
    zeros      ... the unsynced length, zero-filled (size durable, data not)
    meta       directory changes all durable (the OS may write them back at any time), data as durable
    current    everything as the process left it (what a SIGKILL leaves)

mtimes follow the model too, on a logical clock in the past: the store compares mtimes of
history.json and the logs to find logs written after its last refresh.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

INTERCEPTED = ("open", "write", "fsync", "replace", "ftruncate", "unlink", "close", "mkdir")
REAL = {name: getattr(os, name) for name in INTERCEPTED}

VARIANTS = ("durable", "torn-1", "torn-half", "torn-all", "zeros", "meta", "current")

FILE, DIR = "file", "dir"
_SHIFT_NS = 3600 * 10**9  # rebuilt mtimes are moved an hour back, so any real write later is newer
_TICK_NS = 1000  # the logical clock: every modification is 1 us after the previous one


_VARYING = re.compile(r"(?<=\.tmp\.)\d+\.[0-9a-f]+|(?<=\.)\d{8}T\d{6}\.\d{6}Z")  # tmp and kept-copy names


class PowerLoss(BaseException):
    """The machine lost power. Not an Exception: nothing in the store may catch it."""


def fsync_without_disk(fd: int) -> None:
    """For tests where durability is the model's business (or nobody's): checks the descriptor
    like the real fsync, but spares the disk flush (about a millisecond each)."""
    os.fstat(fd)


def _read_fd(fd: int) -> bytes:
    # /proc/self/fd reaches the inode even after it was unlinked or replaced
    with open(f"/proc/self/fd/{fd}", "rb") as f:
        return f.read()


def _read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class Disk:
    """The model of one directory tree's disk (see the module docstring); `calls` records every
    intercepted call, and `mtimes` the rebuilt files' mtimes after `after()`."""

    def __init__(self, top: Path | str, crash_at: int | None = None) -> None:
        self.top = Path(top)
        self.crash_at = crash_at
        self.calls: list[tuple[str, str]] = []  # (function, detail) of every intercepted call made
        self.crashed = False
        self._ids = itertools.count(1)
        self.kind: dict[int, str] = {}
        self._by_ino: dict[int, int] = {}
        self.durable_data: dict[int, bytes] = {}
        self.durable_mtime: dict[int, int] = {}
        self.cur_data: dict[int, bytes] = {}
        self.cur_mtime: dict[int, int] = {}
        self.durable_dir: dict[int, dict[str, int]] = {}
        self._cur_dir: dict[int, dict[str, int]] | None = None  # captured at the crash
        self._fds: dict[int, int] = {}
        self.top_id = self._new(DIR, os.stat(self.top).st_ino)
        self.durable_dir[self.top_id] = self._walk(self.top, initial=True)
        self._clock = max(self.cur_mtime.values(), default=0) + _TICK_NS

    # -- identities ------------------------------------------------------------------------

    def _new(self, kind: str, ino: int) -> int:
        i = next(self._ids)
        self.kind[i] = kind
        self._by_ino[ino] = i
        return i

    def _tick(self) -> int:
        self._clock += _TICK_NS
        return self._clock

    def _identify(self, path: Path, st: os.stat_result) -> int:
        """The identity of an existing file or directory (a new one if never seen)."""
        kind = DIR if stat.S_ISDIR(st.st_mode) else FILE
        i = self._by_ino.get(st.st_ino)
        if i is None or self.kind[i] != kind:
            i = self._new(kind, st.st_ino)
            if kind == FILE:
                self.cur_data[i] = _read(path)
                self.cur_mtime[i] = st.st_mtime_ns
        return i

    def _walk(self, path: Path, initial: bool) -> dict[str, int]:
        """The directory's entries as they are now; with initial=True they all become durable."""
        out: dict[str, int] = {}
        for name in sorted(os.listdir(path)):
            p = path / name
            st = os.lstat(p)
            i = self._identify(p, st)
            out[name] = i
            if self.kind[i] == DIR:
                listing = self._walk(p, initial)
                if initial:
                    self.durable_dir[i] = listing
                else:
                    assert self._cur_dir is not None
                    self._cur_dir[i] = listing
            else:
                self.cur_data[i] = _read(p)
                if initial:
                    self.cur_mtime[i] = st.st_mtime_ns
                    self.durable_data[i] = self.cur_data[i]
                    self.durable_mtime[i] = st.st_mtime_ns
        return out

    # -- the intercepted calls -------------------------------------------------------------

    def _enter(self, name: str, detail: str) -> None:
        detail = _VARYING.sub("*", detail)  # tmp and quarantine names differ from run to run
        if self.crashed:
            raise PowerLoss(f"after the power loss: {name} {detail}")
        self.calls.append((name, detail))
        if self.crash_at is not None and len(self.calls) == self.crash_at:
            self.crashed = True
            self._cur_dir = {}
            self._cur_dir[self.top_id] = self._walk(self.top, initial=False)
            raise PowerLoss(f"power lost before call {self.crash_at}: {name} {detail}")

    def _open(self, path, flags, mode=0o777, *, dir_fd=None):
        assert dir_fd is None, "the store opens by path"
        p = Path(os.fspath(path))
        self._enter("open", p.name)
        creating = bool(flags & os.O_CREAT) and not os.path.lexists(p)
        fd = REAL["open"](path, flags, mode)
        st = os.fstat(fd)
        if creating:
            i = self._new(FILE, st.st_ino)
            self.cur_data[i] = b""
            self.cur_mtime[i] = self._tick()
        else:
            i = self._identify(p, st)
        self._fds[fd] = i
        return fd

    def _write(self, fd, data):
        self._enter("write", self._name(fd))
        n = REAL["write"](fd, data)
        self._modified(fd)
        return n

    def _ftruncate(self, fd, length):
        self._enter("ftruncate", self._name(fd))
        REAL["ftruncate"](fd, length)
        self._modified(fd)

    def _fsync(self, fd):
        self._enter("fsync", self._name(fd))
        os.fstat(fd)  # EBADF as the real one would; the model, not the disk, keeps what is durable
        i = self._fds.get(fd)
        if i is None:
            return
        if self.kind[i] == DIR:
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            self.durable_dir[i] = {
                name: self._identify(path / name, os.lstat(path / name)) for name in sorted(os.listdir(path))
            }
        else:
            self.cur_data[i] = _read_fd(fd)
            self.durable_data[i] = self.cur_data[i]
            self.durable_mtime[i] = self.cur_mtime[i]

    def _replace(self, src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        assert src_dir_fd is None and dst_dir_fd is None
        self._enter("replace", f"{Path(src).name} -> {Path(dst).name}")
        REAL["replace"](src, dst)

    def _unlink(self, path, *, dir_fd=None):
        assert dir_fd is None
        self._enter("unlink", Path(path).name)
        REAL["unlink"](path)

    def _mkdir(self, path, mode=0o777, *, dir_fd=None):
        assert dir_fd is None
        self._enter("mkdir", Path(path).name)
        REAL["mkdir"](path, mode)
        i = self._new(DIR, os.stat(path).st_ino)
        self.durable_dir[i] = {}  # its entries are durable once it is fsynced

    def _close(self, fd):
        if self.crashed:  # unwinding after the power loss: only free the descriptor
            self._fds.pop(fd, None)
            return REAL["close"](fd)
        self._enter("close", self._name(fd))
        self._fds.pop(fd, None)
        REAL["close"](fd)

    def _name(self, fd: int) -> str:
        try:
            return Path(os.readlink(f"/proc/self/fd/{fd}")).name
        except OSError:
            return f"fd {fd}"

    def _modified(self, fd: int) -> None:
        i = self._fds.get(fd)
        if i is not None:
            self.cur_data[i] = _read_fd(fd)
            self.cur_mtime[i] = self._tick()

    @contextmanager
    def armed(self) -> Iterator["Disk"]:
        """Route the os functions through the model (restored on exit, even after PowerLoss)."""
        saved = {name: getattr(os, name) for name in INTERCEPTED}
        for name in INTERCEPTED:
            setattr(os, name, getattr(self, f"_{name}"))
        try:
            yield self
        finally:
            for name, fn in saved.items():
                setattr(os, name, fn)

    # -- after the power loss ----------------------------------------------------------------

    def _file_after(self, i: int, variant: str) -> tuple[bytes, int]:
        base = self.durable_data.get(i, b"")
        cur = self.cur_data.get(i, b"")
        base_mtime = self.durable_mtime.get(i, self.cur_mtime.get(i, 0))
        if variant == "current":
            return cur, self.cur_mtime.get(i, base_mtime)
        extra = len(cur) - len(base)
        if variant in ("durable", "meta") or extra <= 0 or not cur.startswith(base):
            return base, base_mtime
        if variant == "zeros":
            data = base + b"\0" * extra
        else:
            k = {"torn-1": 1, "torn-half": max(1, extra // 2), "torn-all": extra}[variant]
            data = base + cur[len(base) : len(base) + k]
        return data, self.cur_mtime[i]  # the size grew, so the inode (and its mtime) was written

    def after(self, variant: str) -> dict[str, bytes | None]:
        """What the disk holds after the power comes back: relative path -> bytes (None: a directory)."""
        assert variant in VARIANTS, variant
        self.mtimes: dict[str, int] = {}
        if self._cur_dir is None:  # no crash happened: the power goes now
            self._cur_dir = {}
            self._cur_dir[self.top_id] = self._walk(self.top, initial=False)
        dirs = self._cur_dir if variant in ("meta", "current") else self.durable_dir
        out: dict[str, bytes | None] = {}

        def visit(dir_id: int, prefix: str) -> None:
            for name, i in sorted(dirs.get(dir_id, {}).items()):
                rel = f"{prefix}{name}"
                if self.kind[i] == DIR:
                    out[rel] = None
                    visit(i, rel + "/")
                else:
                    out[rel], self.mtimes[rel] = self._file_after(i, variant)

        visit(self.top_id, "")
        return out

    def rebuild(self, variant: str) -> dict[str, bytes | None]:
        """Replace everything under `top` with what survives the power loss (see `after`)."""
        tree = self.after(variant)
        write_tree(self.top, tree, self.mtimes)
        return tree


def write_tree(top: Path, tree: dict[str, bytes | None], mtimes: dict[str, int]) -> None:
    """Empty `top` and recreate `tree` in it (directories 0700, files 0600, mtimes an hour back)."""
    assert os.open is REAL["open"], "rebuild with the real os functions"
    for name in os.listdir(top):
        p = top / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    for rel, data in sorted(tree.items()):
        p = top / rel
        if data is None:
            p.mkdir(mode=0o700)
            p.chmod(0o700)
        else:
            p.write_bytes(data)
            p.chmod(0o600)
            m = mtimes[rel] - _SHIFT_NS
            os.utime(p, ns=(m, m))
