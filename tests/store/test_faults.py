"""I/O faults at every call of a short workload (P3, P4, P7, P11).

os.write, os.fsync, os.replace and os.ftruncate fail with ENOSPC or EIO at their N-th call, for
every N: once (only that call) or persistently (every call from it on); os.write also writes short
(1 byte at a time, half) or makes no progress. Each operation must either succeed or raise
StoreWriteError with a one-line message, never anything else; a failed operation must leave
nothing visible, a succeeding one that hit a fault must say so in a warning, and once the fault
is gone, the next writer repairs everything (valid chain, history.json matching, within caps).

The store starts with a torn tail in two logs, so recovery's truncation (os.ftruncate) is hit too.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from eventlog import Recorded, SharedHistoryStale, StoreWriteError

from .checks import log_path
from .crashload import (
    A, B, C, DEPLOYMENTS, WORKLOAD, Z, Expected, Warned, apply, check_after_writer, check_visible, make_store, seed_store,
)
from .crashsim import REAL as _REAL
from .crashsim import fsync_without_disk

SOAK = max(1, int(os.environ.get("BAI_SOAK", "1")))

# These tests are about error handling, not durability (test_powerloss covers that): the real
# fsync, which costs a millisecond a call on a real disk, is skipped.
REAL = {**_REAL, "fsync": fsync_without_disk}


@pytest.fixture(autouse=True)
def _no_disk_flush(monkeypatch):
    monkeypatch.setattr(os, "fsync", fsync_without_disk)


REASON = {errno.ENOSPC: "the disk is full", errno.EIO: "an I/O error occurred", errno.EROFS: "the file system is read-only"}
TORN = b'{"v":1,"seq":99,"type":"round","deploy'  # an interrupted append: no newline


def _target(name: str, args: tuple) -> str:
    """The file a call acts on, for messages and for telling a log from history.json."""
    if name == "replace":
        return Path(args[1]).name
    if name == "open":
        return Path(args[0]).name
    try:
        return Path(os.readlink(f"/proc/self/fd/{args[0]}")).name
    except OSError:
        return f"fd {args[0]}"


class Faults:
    """Patches the os functions `funcs`: their `nth` call (counted per function, or over all of
    them with global_count) raises OSError(err), and with persistent=True every later call too.
    With `short`, the due os.write calls write short instead of failing. `only` limits the
    counting (and failing) to calls acting on the files it accepts."""

    def __init__(self, funcs, err: int = errno.EIO, nth: int | None = None, persistent: bool = False,
                 global_count: bool = False, short=None, only=None) -> None:
        self.funcs = tuple(funcs)
        self.only = only  # a predicate on the call's target: other calls neither count nor fail
        self.err = err
        self.nth = nth
        self.persistent = persistent
        self.global_count = global_count  # count all patched calls together, not per function
        self.short = short  # os.write: how many of len bytes to write (0: no progress)
        self.counts: dict[str, int] = {}
        self.total = 0
        self.fired: list[tuple[str, str]] = []  # (function, target) of every failed or short call

    def _due(self, name: str) -> bool:
        self.counts[name] = self.counts.get(name, 0) + 1
        self.total += 1
        n = self.total if self.global_count else self.counts[name]
        return self.nth is not None and (n == self.nth or (self.persistent and n > self.nth))

    def _wrap(self, name: str):
        real = REAL[name]

        def call(*args, **kw):
            if (self.only is None or self.only(_target(name, args))) and self._due(name):
                self.fired.append((name, _target(name, args)))
                if self.short is None:
                    raise OSError(self.err, os.strerror(self.err))
                fd, data = args
                n = self.short(len(data))
                return real(fd, bytes(data[:n])) if n else 0
            return real(*args, **kw)

        return call

    @contextmanager
    def armed(self) -> Iterator["Faults"]:
        saved = {name: getattr(os, name) for name in self.funcs}
        for name in self.funcs:
            setattr(os, name, self._wrap(name))
        try:
            yield self
        finally:
            for name, fn in saved.items():
                setattr(os, name, fn)


@pytest.fixture
def template(tmp_path):
    """a: 2 rounds, b: 1, each log ending in a torn append (a crash before this test began)."""
    src = tmp_path / "template"
    exp = seed_store(src)
    for dep in (A, B):
        with open(log_path(src, dep), "ab") as f:
            f.write(TORN)
    return src, exp


def _fresh(template, root: Path) -> Expected:
    src, exp = template
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(src, root)
    return Expected({k: list(v) for k, v in exp.acked.items()}, dict(exp.seq_of))


def run_with_faults(root: Path, exp: Expected, faults: Faults, where: str, ops=WORKLOAD) -> list:
    """Run the workload under `faults`, checking each operation's outcome; returns the failures.

    Each operation gets its own Store, as each `bai` command is its own process (a Store warns
    only once per message)."""
    failures = []
    for op in ops:
        warned = Warned()
        store = make_store(root, warned)
        fired = len(faults.fired)
        here = f"{where}, {op}"
        with faults.armed():
            try:
                result = apply(store, op)
                error = None
            except StoreWriteError as e:
                error = e
            except BaseException as e:  # P11: nothing but a StoreWriteError may come out
                pytest.fail(f"{here}: raised {type(e).__name__}: {e} (faults {faults.fired[fired:]})")
        hit = faults.fired[fired:]
        if isinstance(error, SharedHistoryStale):
            # The clear is committed; only Backend.AI's view lags, and the error says exactly that.
            assert op[0] == "clear" and "\n" not in str(error) and str(error).startswith("cleared, but history.json"), here
            assert hit, f"{here}: failed without any injected fault: {error}"
            exp.ack(op, None)
        elif error is None:
            exp.ack(op, result)
            if hit and faults.short is None:  # an I/O error swallowed silently would be a lie
                assert warned, f"{here}: {hit} failed, yet no error and no warning"
        else:
            msg = str(error)
            assert "\n" not in msg and msg.startswith("could not save "), f"{here}: {msg!r}"
            assert error.uncertain or msg.endswith("nothing was changed"), f"{here}: {msg!r}"
            reason = REASON[faults.err] if faults.short is None else REASON[errno.ENOSPC]
            assert reason in msg, f"{here}: {msg!r}"
            assert hit, f"{here}: failed without any injected fault: {msg}"
            failures.append((op, hit, msg))
            if error.uncertain:
                # The disk failed even at undoing the write, and the store says so: the effect
                # may be visible after all; then go on as if it had been acknowledged.
                assert "may or may not have been kept" in msg, f"{here}: {msg!r}"
                got = make_store(root, warned).rounds(op[1])
                if op[0] == "round" and got and (got[-1].user, got[-1].assistant) == (op[2], op[3]):
                    exp.ack(op, Recorded(got[-1].seq, True, 0))
                elif op[0] == "clear" and not got:
                    exp.ack(op, None)
        # a failed operation shows nothing of itself; a succeeding one shows all of itself
        check_visible(root, exp, None, warned, f"{here} -> {'ok' if error is None else 'failed'} ({hit})")
    return failures


def _repaired(root: Path, exp: Expected, where: str) -> None:
    """The fault is gone: what was acknowledged is there, and the next writer repairs the rest."""
    seen = check_visible(root, exp, None, Warned(), f"{where}, fault removed")
    make_store(root, Warned()).compact()
    check_after_writer(root, seen, DEPLOYMENTS, f"{where}, after compact")


def _calls(template, tmp_path, funcs) -> dict[str, int]:
    """How many times the fault-free workload calls each function."""
    root = tmp_path / "store"
    exp = _fresh(template, root)
    faults = Faults(funcs)
    assert run_with_faults(root, exp, faults, "no fault") == []
    return faults.counts


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
@pytest.mark.parametrize("func", ["write", "fsync", "replace", "ftruncate"])
def test_fault_at_every_call(template, tmp_path, func, err, persistent):
    total = _calls(template, tmp_path, [func])[func]
    assert total >= 2, total  # ftruncate: the two torn tails
    root = tmp_path / "store"
    failed_ops = 0
    for n in range(1, total + 1):
        exp = _fresh(template, root)
        faults = Faults([func], err, n, persistent)
        where = f"{func} {errno.errorcode[err]} at call {n}{' on' if persistent else ''}"
        failures = run_with_faults(root, exp, faults, where)
        assert faults.fired, f"{where}: the fault never fired"
        failed_ops += len(failures)
        _repaired(root, exp, where)
    assert failed_ops > 0


@pytest.mark.parametrize("short", [lambda n: 1, lambda n: max(1, n // 2)], ids=["1-byte", "half"])
def test_short_writes_are_completed(template, tmp_path, short):
    """A write that writes fewer bytes than asked is continued, not an error: every operation succeeds."""
    root = tmp_path / "store"
    exp = _fresh(template, root)
    faults = Faults(["write"], nth=0, persistent=True, short=short)  # every write is short
    assert run_with_faults(root, exp, faults, "short writes") == []
    assert len(faults.fired) > 100
    _repaired(root, exp, "short writes")


@pytest.mark.parametrize("trickle", [False, True], ids=["full-writes", "1-byte-writes"])
def test_write_making_no_progress_fails_cleanly(template, tmp_path, trickle):
    """os.write returning 0 at the N-th call: the operation fails with a clear message (the store
    must not spin), and what was written before is cut back (P11)."""
    calls = _calls(template, tmp_path, ["write"])["write"]
    root = tmp_path / "store"
    if trickle:
        # count the 1-byte writes, then sample N along them (all of them would be thousands)
        exp = _fresh(template, root)
        counter = Faults(["write"], nth=0, persistent=True, short=lambda n: 1)
        run_with_faults(root, exp, counter, "count")
        calls = len(counter.fired)
        points = range(1, calls + 1, max(1, calls // (40 * SOAK)))
    else:
        points = range(1, calls + 1)
    failed_ops = missed = 0
    for n in points:
        exp = _fresh(template, root)
        faults = StallAt(n, trickle)
        where = f"write stalls at call {n}{' (1-byte writes)' if trickle else ''}"
        failures = run_with_faults(root, exp, faults, where)
        assert len(faults.fired) <= 1 and len(failures) <= 1, (where, failures)  # history.json: a warning
        # The count of writes can differ by a few between runs (a log written in the same clock
        # tick as history.json is copied again): a point past this run's last write never fires.
        missed += not faults.fired
        failed_ops += len(failures)
        _repaired(root, exp, where)
    assert failed_ops > 0
    assert missed <= max(1, len(points) // 10), f"the stall fired at only {len(points) - missed} of {len(points)} points"


class StallAt(Faults):
    """os.write writes 1 byte (trickle) or everything, except the n-th call, which writes nothing."""

    def __init__(self, n: int, trickle: bool) -> None:
        super().__init__(["write"], errno.ENOSPC)
        self.n = n
        self.trickle = trickle

    def _wrap(self, name: str):
        real = REAL[name]

        def write(fd, data):
            self.counts["write"] = self.counts.get("write", 0) + 1
            if self.counts["write"] == self.n:
                self.fired.append(("write", _target("write", (fd,))))
                return 0
            return real(fd, bytes(data[:1]) if self.trickle else data)

        return write


def _is_projection(target: str) -> bool:
    return target == "history.json" or target.startswith(".history.json.tmp.")


@pytest.mark.parametrize("func", ["write", "fsync", "replace"])
def test_failed_history_json_refresh_is_a_warning_and_the_round_is_saved(template, tmp_path, func):
    """The log write is the commit point: if only history.json cannot be refreshed afterwards, the
    round is saved and reported saved, with a one-line warning; the next writer rebuilds history.json."""
    root = tmp_path / "store"
    exp = _fresh(template, root)
    warned = Warned()
    faults = Faults([func], errno.EIO, 1, persistent=True, only=_is_projection)
    with faults.armed():
        rec = make_store(root, warned).record_round(A, "saved?", "yes")
    assert faults.fired, "the fault must have hit history.json"
    assert len(warned) == 1 and "could not be refreshed" in warned[0], warned
    assert rec.seq == exp.acked[A][-1][0] + 1 and rec.kept
    exp.ack(("round", A, "saved?", "yes"), rec)
    check_visible(root, exp, None, Warned(), "refresh failed")  # readers see it from the log
    doc = (root / "history.json").read_bytes()
    assert b"saved?" not in doc  # history.json is the old one, whole (P7: never torn)
    make_store(root, Warned()).record_round(Z, "next", "writer")  # any writer rebuilds it
    seen = check_visible(root, exp, ("round", Z, "next", "writer"), Warned(), "after the next writer")
    check_after_writer(root, seen, [A, Z], "after the next writer")


@pytest.mark.parametrize("dep", [A, C], ids=["compacting-append", "first-round-of-a-deployment"])
def test_failed_directory_fsync_leaves_nothing_visible(template, tmp_path, dep):
    """P11: a record_round that fails must leave the previous state. Two kinds of round rewrite
    the log (atomic replace, then fsync of logs/): an append that compacts (a is at its cap) and
    the first round of a deployment (a new file)."""
    root = tmp_path / "store"
    _fresh(template, root)
    make_store(root).record_round(A, "fill", "up")  # a: 3 rounds, at its cap
    before = make_store(root).rounds(dep)
    faults = Faults(["fsync"], errno.EIO, 1, persistent=True, only=lambda t: t == "logs")
    with faults.armed(), pytest.raises(StoreWriteError):
        make_store(root, Warned()).record_round(dep, "failed", "round")
    assert faults.fired
    assert make_store(root).rounds(dep) == before


def test_failing_disk(template, tmp_path):
    """The disk dies: from the N-th call on, every write, fsync, replace and ftruncate fails with
    EIO (so a failed fsync is followed by a failed ftruncate). P11 for everything else."""
    funcs = ["write", "fsync", "replace", "ftruncate"]
    total = sum(_calls(template, tmp_path, funcs).values())
    root = tmp_path / "store"
    for n in range(1, total + 1):
        exp = _fresh(template, root)
        faults = Faults(funcs, errno.EIO, n, persistent=True, global_count=True)
        where = f"disk fails from call {n} on"
        run_with_faults(root, exp, faults, where)
        _repaired(root, exp, where)


@pytest.mark.parametrize("op", [("round", A, "failed", "round"), ("clear", A)], ids=["round", "clear"])
def test_failed_fsync_and_truncate_leave_nothing_visible(template, tmp_path, op):
    root = tmp_path / "store"
    _fresh(template, root)
    make_store(root).compact()  # cut the torn tail first: the next write is a plain append
    before = make_store(root).rounds(A)
    assert before
    faults = Faults(["fsync", "ftruncate"], errno.EIO, 1, persistent=True, only=lambda t: t == f"{A}.jsonl")
    with faults.armed(), pytest.raises(StoreWriteError):
        apply(make_store(root, Warned()), op)
    assert faults.fired == [("fsync", f"{A}.jsonl"), ("ftruncate", f"{A}.jsonl")]
    assert make_store(root).rounds(A) == before, "the failed operation is visible"


def _tmp_or_dir(target: str) -> bool:
    return ".tmp." in target or "." not in target  # tmp files; the directories (store, logs)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS], ids=["ENOSPC", "EROFS"])
def test_open_failure_is_a_store_write_error(template, tmp_path, err):
    """Beyond write/fsync/replace/ftruncate: os.open failing (no inode left, a dead disk, a file
    system remounted read-only) at each open of a tmp file or a directory."""
    total = _calls(template, tmp_path, ["open"])["open"]
    root = tmp_path / "store"
    for n in range(1, total + 1):
        exp = _fresh(template, root)
        faults = Faults(["open"], err, n, only=_tmp_or_dir)
        where = f"open {errno.errorcode[err]} at call {n}"
        run_with_faults(root, exp, faults, where)
        _repaired(root, exp, where)


@pytest.mark.parametrize("target", [".lock", f"{A}.jsonl"])
def test_open_failure_of_lock_or_log_is_a_store_write_error(template, tmp_path, target):
    """The same for the opens outside any tmp file: the lock file, the log an append goes to."""
    root = tmp_path / "store"
    _fresh(template, root)
    make_store(root).compact()  # no torn tail: the log is opened by the append itself
    faults = Faults(["open"], errno.EROFS, 1, only=lambda t: t == target)
    with faults.armed(), pytest.raises(StoreWriteError, match="read-only"):
        make_store(root, Warned()).record_round(A, "q", "a")
    assert faults.fired
