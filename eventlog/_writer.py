"""Everything done under the writers' lock: recovery, append, compaction, the projection.

A WriterSession is opened by the Store for one operation: it takes the lock, cleans up,
imports a Backend.AI history.json if one is waiting, and recovers each stream it touches
before writing to it. Nothing here holds the lock across anything slow (no HTTP).
"""

from __future__ import annotations

import os
from typing import Callable

import msgspec

from ._caps import Caps, CapsPolicy, caps_for, within_caps
from ._errors import StoreVersionError, StoreWriteError
from ._events import BaseEvent, ClearEvent, Event, RoundEvent, encode_line, now_iso
from ._files import StorePaths
from ._ids import is_valid_deployment_id
from ._fsio import ReplacedNotDurable, atomic_write, ensure_private_dir, is_tmp_name, open_private, undo_replace, write_all
from ._projection import PROJECTION_VERSION, Message, Projection, encode_entry, encode_projection, messages_of_round
from ._reader import ProjectionRead, describe_damage, foreign_rounds, read_projection, read_stream
from ._state import StreamState, fold
from ._upcast import CURRENT_VERSION

Warn = Callable[[str], None]


class _Stream(msgspec.Struct):
    """A recovered stream, ready to be written: its state and where its file ends."""

    deployment: str
    state: StreamState
    data: bytes | None  # the clean file's bytes (None: no file), to undo a replace that cannot be made durable
    compact: bool  # the file holds records that are no longer visible (a clear, a stale base)

    @property
    def end(self) -> int:
        return len(self.data) if self.data else 0


class WriterSession:
    def __init__(self, paths: StorePaths, caps: CapsPolicy, warn: Warn) -> None:
        self.paths = paths
        self.caps = caps
        self.warn = warn
        self.projection = ProjectionRead(None, None)  # read by open()
        self.rebuild_projection = False  # rewrite history.json even if nothing changed
        self._changed: dict[str, StreamState] = {}

    # -- opening: clean up, import, recover -------------------------------------------

    def open(self) -> None:
        self._remove_leftover_tmp_files()
        self.projection = read_projection(self.paths, self.warn)
        if self.projection.foreign:
            self._import_backend_ai()
        elif self.projection.problem is not None:
            self._quarantine(self.paths.projection, self.projection.raw or b"", "history.json")
            self._changed.update({d: self.stream(d).state for d in self.paths.logged_deployments()})
        elif self.projection.projection is None and self.paths.logged_deployments():
            self._changed.update({d: self.stream(d).state for d in self.paths.logged_deployments()})
        else:
            for d in self._streams_newer_than_projection():
                self._changed[d] = self.stream(d).state

    def _remove_leftover_tmp_files(self) -> None:
        # We hold the lock, and only lock holders write tmp files: any present is a leftover.
        for d in (self.paths.root, self.paths.logs):
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in names:
                if is_tmp_name(n):
                    try:
                        os.unlink(d / n)
                    except FileNotFoundError:
                        pass

    def _streams_newer_than_projection(self) -> list[str]:
        """Logs that may hold more than history.json says: a writer died between the two (P7).

        A log written no earlier than history.json (by mtime; a tie counts, since clocks tick
        coarsely) is recovered, and kept only if its last seq differs from history.json's."""
        try:
            since = os.stat(self.paths.projection).st_mtime_ns
        except FileNotFoundError:
            return []
        try:
            entries = list(os.scandir(self.paths.logs))
        except FileNotFoundError:
            return []
        names = []
        last_seq = self.projection.projection.last_seq if self.projection.ours else {}  # type: ignore[union-attr]
        for e in entries:
            if e.name.endswith(".jsonl") and not e.name.startswith(".") and e.stat().st_mtime_ns >= since:
                name = e.name[: -len(".jsonl")]
                if self.stream(name).state.last_seq != last_seq.get(name):
                    names.append(name)
        return names

    def stream(self, deployment: str) -> _Stream:
        """Recover the deployment's log (truncate a torn tail, quarantine damage) and return it."""
        read = read_stream(self.paths, deployment, self.projection)
        scan = read.scan
        if scan.newer_version is not None:
            raise StoreVersionError(str(self.paths.log(deployment)), scan.newer_version)
        state = read.resolved.state
        damage = describe_damage(deployment, read)
        if damage is not None:
            self.warn(damage)
            if read.data:
                self._quarantine(self.paths.log(deployment), read.data, f"damaged history of {deployment}")
            data = self._rewrite(deployment, state)
            self._changed[deployment] = state
            return _Stream(deployment, state, data, False)
        data = read.data
        if scan.tail_start is not None:
            self._truncate(deployment, scan.good_end)
            data = data[: scan.good_end] if data else data
            self._changed[deployment] = state
        head_is_base = bool(scan.chain) and isinstance(scan.chain[0], BaseEvent)
        stale = any(isinstance(e, ClearEvent) for e in scan.chain) or (
            head_is_base and state.rounds and scan.chain[0].seq != state.rounds[0].seq - 1
        )
        return _Stream(deployment, state, data, stale)

    def _truncate(self, deployment: str, end: int) -> None:
        try:
            fd = open_private(self.paths.log(deployment), os.O_WRONLY)
        except OSError as e:
            raise StoreWriteError(f"the history of {deployment}", e) from e
        try:
            os.ftruncate(fd, end)
            os.fsync(fd)
        except OSError as e:
            raise StoreWriteError(f"the history of {deployment}", e) from e
        finally:
            os.close(fd)

    def _quarantine(self, original, data: bytes, what: str) -> None:
        if not data:
            return  # an empty file holds nothing to keep
        target = self.paths.quarantine(original)
        try:
            atomic_write(target, data)
        except OSError as e:
            raise StoreWriteError(f"a copy of the {what}", e) from e
        self.warn(f"the original bytes are kept in {target}")

    # -- writing ------------------------------------------------------------------------

    def append_round(self, s: _Stream, make: Callable[[int], RoundEvent]) -> tuple[RoundEvent, list[RoundEvent]] | None:
        """Append a round; compacts in the same write if the cap now drops something.
        None, writing nothing, when the round alone exceeds the caps: it could not be kept, and
        making room for it would only drop every older round."""
        event = make(s.state.last_seq + 1)
        if not within_caps([event], self._caps(s.deployment)):
            return None
        rounds = s.state.rounds + [event]
        new_state = StreamState(rounds, event.seq)
        kept = within_caps(rounds, self._caps(s.deployment))
        if len(kept) == len(rounds) and not s.compact and s.end > 0:
            self._append_line(s, encode_line(event))
        else:
            self._rewrite(s.deployment, new_state, undo=s.data)
        self._changed[s.deployment] = new_state
        return event, kept

    def clear(self, s: _Stream) -> int:
        """Tombstone, then compaction: the clear is committed once the tombstone is durable."""
        removed = 2 * len(within_caps(s.state.rounds, self._caps(s.deployment)))
        if s.state.last_seq == 0 and s.end == 0:
            return 0  # nothing was ever recorded
        tombstone = ClearEvent(v=CURRENT_VERSION, seq=s.state.last_seq + 1, deployment=s.deployment, ts=now_iso())
        self._append_line(s, encode_line(tombstone))
        state = fold([tombstone], s.state)
        self._changed[s.deployment] = state
        try:
            self._rewrite(s.deployment, state)
        except StoreWriteError as e:
            self.warn(f"{s.deployment} is cleared, but its log could not be compacted yet: {e}")
        return removed

    def compact(self, s: _Stream) -> None:
        self._rewrite(s.deployment, s.state)
        self._changed[s.deployment] = s.state

    def _append_line(self, s: _Stream, line: bytes) -> None:
        what = f"the history of {s.deployment}"
        if s.end == 0:
            # A new file: written by atomic replace, so its directory entry is durable too.
            self._replace_log(s.deployment, line, what, undo=s.data)
            s.data = line
            return
        try:
            fd = open_private(self.paths.log(s.deployment), os.O_WRONLY)
        except OSError as e:
            raise StoreWriteError(what, e) from e
        try:
            os.lseek(fd, s.end, os.SEEK_SET)
            write_all(fd, line)
            os.fsync(fd)
        except OSError as e:
            raise StoreWriteError(what, e, uncertain=not _take_back(fd, s.end, len(line))) from e
        finally:
            os.close(fd)
        s.data = (s.data or b"") + line

    def _rewrite(self, deployment: str, state: StreamState, *, undo: bytes | None | bool = False) -> bytes:
        """Replace the log by its compacted form: [base] + the rounds within the caps.

        `undo`: the file's current bytes (None: no file) when the rewrite changes what is
        visible, so a replace that cannot be made durable is taken back; False when it does
        not (recovery, compaction: old and new show the same)."""
        kept = within_caps(state.rounds, self._caps(deployment))
        head = kept[0].seq - 1 if kept else state.last_seq
        events: list[Event] = []
        if head > 0:
            events.append(BaseEvent(v=CURRENT_VERSION, seq=head, deployment=deployment, ts=now_iso()))
        events.extend(kept)
        data = b"".join(encode_line(e) for e in events)
        self._replace_log(deployment, data, f"the history of {deployment}", undo=undo)
        return data

    def _replace_log(self, deployment: str, data: bytes, what: str, *, undo: bytes | None | bool) -> None:
        path = self.paths.log(deployment)
        try:
            ensure_private_dir(self.paths.logs)
            atomic_write(path, data)
        except ReplacedNotDurable as e:
            undone = undo is False or undo_replace(path, undo if isinstance(undo, bytes) else None)
            raise StoreWriteError(what, e, uncertain=not undone) from e
        except OSError as e:
            raise StoreWriteError(what, e) from e

    def _caps(self, deployment: str) -> Caps:
        return caps_for(self.caps, deployment)

    # -- the projection -----------------------------------------------------------------

    def close(self) -> None:
        """Refresh history.json for what changed. A failure here loses nothing (the logs
        hold it all, and readers and the next writer rebuild), so it is a warning."""
        if self.projection.bad:  # entries found unreadable: keep the file's bytes, rebuild them
            self._quarantine(self.paths.projection, self.projection.raw or b"", "history.json")
            logged = set(self.paths.logged_deployments())
            for d in self.projection.bad:
                if d in logged:
                    self._changed.setdefault(d, self.stream(d).state)
        if not self._changed and not self.rebuild_projection and not self.projection.bad:
            return
        base = self.projection.projection if self.projection.ours and not self.rebuild_projection else None
        if base is None:
            changed = {d: self.stream(d).state for d in self.paths.logged_deployments()}
            changed.update(self._changed)
            base = Projection(deployments={}, version=PROJECTION_VERSION, last_seq={})
        else:
            changed = self._changed
        deployments = {d: raw for d, raw in base.deployments.items() if d not in self.projection.bad}
        last_seq = {d: n for d, n in base.last_seq.items() if d in deployments}
        for d, state in changed.items():
            deployments[d] = encode_entry(_messages(within_caps(state.rounds, self._caps(d))))
            last_seq[d] = state.last_seq
        new = Projection(deployments=deployments, version=PROJECTION_VERSION, last_seq=last_seq)
        try:
            atomic_write(self.paths.projection, encode_projection(new))
        except OSError as e:
            self.warn(f"saved, but history.json could not be refreshed ({e.strerror or e}); the next write rebuilds it")

    # -- Backend.AI's history.json ---------------------------------------------------------

    def _import_backend_ai(self) -> None:
        """Turn Backend.AI's history.json into logs, once; keep a copy if anything is left out."""
        p = self.projection.projection
        assert p is not None
        left_out = 0
        for dep in p.deployments:
            messages = self.projection.messages(dep)
            if not is_valid_deployment_id(dep) or self.paths.log(dep).exists() or dep in self.projection.bad:
                left_out += max(len(messages), 1)
                continue
            rounds = foreign_rounds(self.projection, dep)
            left_out += len(messages) - 2 * len(rounds)
            state = StreamState(rounds, len(rounds))
            if rounds:
                self._rewrite(dep, state)
            self._changed[dep] = state
        if left_out:
            self._quarantine(self.paths.projection, self.projection.raw or b"", "Backend.AI history")
            self.warn(f"imported Backend.AI's history.json; {left_out} message(s) that form no round were left out")
        for dep in self.paths.logged_deployments():
            self._changed.setdefault(dep, self.stream(dep).state)
        self.projection = ProjectionRead(None, None)


def _take_back(fd: int, start: int, length: int) -> bool:
    """Undo an append whose fsync failed: truncate it away, or else break its newline so it
    is a torn tail that readers ignore and the next writer truncates. False if neither works."""
    try:
        os.ftruncate(fd, start)
        return True
    except OSError:
        pass
    try:
        return os.pwrite(fd, b"\x00", start + length - 1) == 1
    except OSError:
        return False


def _messages(rounds: list[RoundEvent]) -> list[Message]:
    return [m for r in rounds for m in messages_of_round(r)]


def open_root(paths: StorePaths) -> None:
    try:
        ensure_private_dir(paths.root)
    except OSError as e:
        raise StoreWriteError(f"the store directory {paths.root}", e) from e

