"""Lock-free reading: the projection as checkpoint, each stream's log for what is newer.

Readers never write and never fail on bad files: a damaged or foreign file is a one-line
warning and the view goes on with what is valid.
"""

from __future__ import annotations

import msgspec
from typing import Callable

from ._events import RoundEvent
from ._files import StorePaths
from ._fsio import read_bytes
from ._projection import Message, Projection, Unreadable, decode_projection, rounds_of_messages
from ._scan import Scan, scan_stream
from ._state import Resolved, StreamState, resolve

Warn = Callable[[str], None]


def _no_warning(message: str) -> None:
    pass


class ProjectionRead(msgspec.Struct):
    projection: Projection | None  # None: missing or unusable
    raw: bytes | None  # the file's bytes as read (None: missing)
    problem: str | None = None  # why it is unusable, when it exists but cannot be used
    warn: Warn = _no_warning
    bad: set[str] = set()  # deployments whose entries turned out unreadable

    @property
    def ours(self) -> bool:
        return self.projection is not None and self.projection.version is not None

    @property
    def foreign(self) -> bool:
        """Backend.AI's own history.json (no version): to be imported, not trusted as a checkpoint."""
        return self.projection is not None and self.projection.version is None

    def messages(self, deployment: str) -> list[Message]:
        """The deployment's entry; an unreadable one is a warning (once) and counts as none."""
        if self.projection is None:
            return []
        messages = self.projection.messages(deployment)
        if messages is None:
            if deployment not in self.bad:
                self.bad.add(deployment)
                self.warn(f"history.json: ignoring the unreadable entry of {deployment}")
            return []
        return messages

    def checkpoint(self, deployment: str) -> StreamState | None:
        if not self.ours or deployment not in self.projection.last_seq:  # type: ignore[union-attr]
            return None
        p = self.projection
        assert p is not None
        messages = self.messages(deployment)
        if deployment in self.bad:
            return None
        rounds, skipped = rounds_of_messages(deployment, messages)
        if skipped or not _contiguous(rounds, p.last_seq[deployment]):
            return None  # an entry that does not describe a stream state is no checkpoint
        return StreamState(rounds, p.last_seq[deployment])


def _contiguous(rounds: list[RoundEvent], last_seq: int) -> bool:
    if not rounds:
        return True
    first = rounds[0].seq
    return first >= 1 and all(r.seq == first + i for i, r in enumerate(rounds)) and rounds[-1].seq == last_seq


def read_projection(paths: StorePaths, warn: Warn) -> ProjectionRead:
    raw = read_bytes(paths.projection)
    if raw is None:
        return ProjectionRead(None, None)
    try:
        projection = decode_projection(raw)
    except Unreadable as e:
        warn(f"ignoring {paths.projection}: {e}")
        return ProjectionRead(None, raw, str(e), warn)
    return ProjectionRead(projection, raw, warn=warn)


class StreamRead(msgspec.Struct, frozen=True):
    data: bytes | None  # None: no log file
    scan: Scan
    resolved: Resolved


def read_stream(paths: StorePaths, deployment: str, projection: ProjectionRead) -> StreamRead:
    data = read_bytes(paths.log(deployment))
    scan = scan_stream(data or b"", deployment)
    return StreamRead(data, scan, resolve(scan, projection.checkpoint(deployment)))


def foreign_rounds(projection: ProjectionRead, deployment: str) -> list[RoundEvent]:
    """Rounds of a deployment in a Backend.AI history.json, numbered from 1."""
    rounds, _ = rounds_of_messages(deployment, projection.messages(deployment))
    return [_renumber(r, i + 1) for i, r in enumerate(rounds)]


def _renumber(r: RoundEvent, seq: int) -> RoundEvent:
    import msgspec

    return msgspec.structs.replace(r, seq=seq)


def describe_damage(deployment: str, read: StreamRead) -> str | None:
    """One line about damage a crash cannot explain, or None."""
    scan = read.scan
    if scan.newer_version is not None:
        return f"history of {deployment} has records of a newer bai (format {scan.newer_version}); showing what this version can read"
    if not scan.damaged and not read.resolved.from_checkpoint:
        return None
    lost = read.resolved.dropped_after_gap
    how = "rebuilt from history.json" if read.resolved.from_checkpoint else "kept the intact part"
    extra = f"; {lost} later record(s) could not be placed" if lost else ""
    return f"history log of {deployment} is damaged; {how}{extra}"
