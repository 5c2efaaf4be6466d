"""Keeping history.json, Backend.AI's view, up to date without paying for it on every turn.

history.json is one file for every deployment, so refreshing it costs the whole store; the
logs are the truth, so it can lag. bai refreshes it:

- at once, after a clear (a cleared round never stays visible to Backend.AI), after merging a
  Backend.AI write, after `compact`, and when bai finds it missing or damaged;
- after a save to a UUID deployment, unless the refresh would be too soon (RefreshPolicy): a
  process that refreshed less than SHARE times that refresh's duration ago waits (an
  interactive session, a program saving in a loop); and when history.json is larger than
  BUDGET_BYTES (a store with many full deployments), every process waits until SHARE times
  the last refresh's duration has passed since it ended, whoever made it. A round that waited
  reaches history.json with the next save after that. So with a few deployments every `bai`
  call shows Backend.AI its round at once, and a refresh never takes more than 1/SHARE of the
  time per save, whatever the store's size. The limit is by size, not by measured time: a
  small file's refresh measured slow on a busy machine must not hold back the next `bai`.

Two files of bai's own say what bai last wrote: `exported-stamp.json` (which file that was:
inode, size, times; read on every turn, a few dozen bytes) and `exported.json` (the rounds
in it, by fingerprint, per deployment; read only to merge or refresh). A history.json that no
longer matches the stamp was written by someone else (Backend.AI): see _merge.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Callable

import msgspec

from ._caps import Caps, within_caps
from ._fingerprint import round_fingerprint
from ._files import StorePaths
from ._errors import StoreReadError
from ._fsio import atomic_write, ensure_private_dir, read_bytes
from ._ids import is_uuid
from ._merge import RETIRED_KEPT, Exported, retire
from ._projection import PROJECTION_VERSION, Projection, Unreadable, decode_projection, encode_entry, encode_projection, messages_of_round
from ._state import StreamState

SHARE = 20  # after a save, refresh only if the last refresh ended this many times its duration ago...
BUDGET_BYTES = 1 << 20  # ... unless this process has not refreshed that recently and the file is smaller


class RefreshPolicy:
    """When a save refreshes history.json (see the module's doc). One per Store: it remembers
    the refreshes this process made."""

    def __init__(self, share: float = SHARE, budget_bytes: int = BUDGET_BYTES) -> None:
        self.share = share
        self.budget_bytes = budget_bytes
        self._ours: tuple[float, float] | None = None  # (monotonic end, duration) of our last refresh

    def due(self, stamp: "Stamp | None") -> bool:
        if stamp is None:
            return True
        if self._ours is not None and time.monotonic() - self._ours[0] < self.share * self._ours[1]:
            return False
        return stamp.size <= self.budget_bytes or stamp.due(self.share)

    def refreshed(self, seconds: float) -> None:
        self._ours = (time.monotonic(), seconds)


class Stamp(msgspec.Struct, frozen=True):
    """history.json as bai last left it, and when."""

    identity: tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns
    refreshed_at: float  # time.time() when that refresh ended
    refresh_seconds: float  # how long it took

    @property
    def size(self) -> int:
        return self.identity[1]

    @property
    def mtime_ns(self) -> int:
        return self.identity[2]

    def due(self, share: float = SHARE, now: float | None = None) -> bool:
        waited = (time.time() if now is None else now) - self.refreshed_at
        return waited >= share * self.refresh_seconds or waited < 0  # a clock set back: refresh


class ExportRecord(msgspec.Struct):
    version: int = 1
    deployments: dict[str, Exported] = {}


_stamp_decoder = msgspec.json.Decoder(Stamp)
_record_decoder = msgspec.json.Decoder(ExportRecord)
_encoder = msgspec.json.Encoder()


def identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_stamp(paths: StorePaths) -> Stamp | None:
    try:
        data = read_bytes(paths.stamp, limit=4096)  # a few dozen bytes
        return None if data is None else _stamp_decoder.decode(data)
    except (StoreReadError, msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None  # no stamp: history.json is treated as written by someone else


def read_record(paths: StorePaths) -> ExportRecord:
    try:
        data = read_bytes(paths.exported)
        return ExportRecord() if data is None else _record_decoder.decode(data)
    except (StoreReadError, msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return ExportRecord()  # nothing known: every round in history.json is compared with the logs


def changed_by_another(paths: StorePaths, stamp: Stamp | None) -> bool:
    """Whether history.json is not the file bai last wrote (one stat: every turn pays only this)."""
    now = identity(paths.shared_history)
    if stamp is None:
        return now is not None
    return now != stamp.identity


def forget_stamp(paths: StorePaths) -> None:
    """Make the next writer treat history.json as foreign, so it refreshes it (after a failed
    refresh). Only a regular file is removed: a link someone put there stays (and reads as no stamp)."""
    try:
        if stat.S_ISREG(os.lstat(paths.stamp).st_mode):
            os.unlink(paths.stamp)
    except FileNotFoundError:
        pass


StateOf = Callable[[str], "StreamState | None"]  # None: the log cannot be read; its entry stays as it was
CapsOf = Callable[[str], Caps]


def refresh(paths: StorePaths, state_of: StateOf, caps_of: CapsOf, *, stamp: Stamp | None, touched: set[str],
            full: bool) -> float:
    """Rewrite history.json from the logs: every UUID deployment's visible rounds within its caps.

    Incremental unless `full`: when history.json is still bai's own, entries of deployments
    whose logs have not changed since (by mtime; a tie counts as changed) are copied as they
    are. Order: history.json, then exported.json, then the stamp; a crash between them makes
    the next writer see a foreign file, whose rounds it already holds: nothing changes.
    `stamp`: the stamp as the session read it when it took the lock. Returns how long it took.
    Raises OSError."""
    started = time.monotonic()
    record = read_record(paths)
    current = None if full else _own_outline(paths, stamp)
    deployments = [d for d in paths.logged_deployments() if is_uuid(d)]
    entries: dict[str, msgspec.Raw] = {}
    last_seq: dict[str, int] = {}
    exported: dict[str, Exported] = {}
    as_it_was: list[Projection | None] = []  # history.json as it is, read only if a log cannot be
    for d in deployments:
        previous = record.deployments.get(d)
        if current is not None and stamp is not None and d not in touched and previous is not None \
                and not _log_changed_since(paths, d, stamp.mtime_ns):
            if d in current.deployments:
                entries[d] = current.deployments[d]
                last_seq[d] = current.last_seq.get(d, previous.last_seq)
            exported[d] = previous
            continue
        state = state_of(d)
        if state is None:  # damage in one deployment's slot stays there: its entry is copied as it is
            if not as_it_was:
                as_it_was.append(current if current is not None else _any_outline(paths))
            outline = as_it_was[0]
            if outline is not None and d in outline.deployments:
                entries[d] = outline.deployments[d]
                if d in outline.last_seq:
                    last_seq[d] = outline.last_seq[d]
            if previous is not None:
                exported[d] = previous
            continue
        kept = within_caps(state.rounds, caps_of(d))
        fingerprints = [round_fingerprint(r) for r in kept]
        if kept:
            entries[d] = encode_entry([m for r in kept for m in messages_of_round(r)])
            last_seq[d] = state.last_seq
        since = (previous.since if previous is not None and previous.rounds and previous.since else time.time()) \
            if fingerprints else 0.0
        exported[d] = Exported(state.last_seq, fingerprints, retire(previous, fingerprints), since)
    for d, previous in record.deployments.items():  # logs gone, or not in history.json: remember what was removed
        if d not in exported and (retired := retire(previous, [])):
            exported[d] = Exported(previous.last_seq, [], retired, 0.0)
    atomic_write(paths.shared_history, encode_projection(Projection(entries, PROJECTION_VERSION, last_seq)))
    atomic_write(paths.exported, _encoder.encode(ExportRecord(deployments=exported)))
    written = identity(paths.shared_history)
    assert written is not None
    stamp = Stamp(written, time.time(), time.monotonic() - started)
    atomic_write(paths.stamp, _encoder.encode(stamp))
    return stamp.refresh_seconds


def remember_removed(paths: StorePaths, removed: dict[str, list[str]]) -> None:
    """Add fingerprints of cleared rounds to the deployments' retired lists, so that a damaged
    log cannot show them again (see _reader), whether or not history.json ever held them.
    Raises OSError."""
    record = read_record(paths)
    for d, fingerprints in removed.items():
        previous = record.deployments.get(d) or Exported()
        retired = [f for f in previous.retired if f not in set(fingerprints)] + fingerprints
        record.deployments[d] = Exported(previous.last_seq, previous.rounds, retired[-RETIRED_KEPT:], previous.since)
    ensure_private_dir(paths.own)
    atomic_write(paths.exported, _encoder.encode(record))


def _own_outline(paths: StorePaths, stamp: Stamp | None) -> Projection | None:
    """history.json's outline if it is still the file bai last wrote, else None."""
    if stamp is None or changed_by_another(paths, stamp):
        return None
    try:
        projection = decode_projection(read_bytes(paths.shared_history) or b"")
    except (StoreReadError, Unreadable):
        return None
    return projection if projection.version is not None else None


def _any_outline(paths: StorePaths) -> Projection | None:
    """history.json's outline whoever wrote it (None: none, or unreadable)."""
    try:
        return decode_projection(read_bytes(paths.shared_history) or b"")
    except (StoreReadError, Unreadable):
        return None


def _log_changed_since(paths: StorePaths, deployment: str, mtime_ns: int) -> bool:
    try:
        return os.stat(paths.log(deployment)).st_mtime_ns >= mtime_ns
    except FileNotFoundError:
        return True
