"""Everything done under the writers' lock: recovery, append, compaction, merging Backend.AI's
writes, and keeping history.json up to date.

A WriterSession is opened by the Store for one operation: it takes the lock, finishes a
layout move, merges a history.json that Backend.AI rewrote, and recovers each stream it
touches before writing to it. A turn reads and writes only its own deployment's log, one
stat of history.json and a few-dozen-byte stamp (_export); nothing here holds the lock
across anything slow (no HTTP).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import msgspec

from ._caps import Caps, CapsPolicy, caps_for, within_caps
from ._errors import SharedHistoryStale, StoreError, StoreReadError, StoreVersionError, StoreWriteError
from ._events import BaseEvent, ClearEvent, Event, RoundEvent, encode_line, now_iso
from ._export import RefreshPolicy, Stamp, forget_stamp, read_stamp, refresh, remember_removed
from ._files import StorePaths
from ._fingerprint import round_fingerprint
from ._fsio import (
    OddPath, ReplacedNotDurable, atomic_write, ensure_private_dir, fsync_dir, is_tmp_name, open_private, read_bytes,
    undo_replace, write_all,
)
from ._ids import SEPARATOR, is_uuid
from ._keep import forget, keep_aside
from ._merge import apply_plan, doubt_message
from ._migrate import migrate, needs_migration
from ._reader import DamagedSharedHistory, SharedHistory, describe_damage, read_shared_history, read_stream
from ._scan import scan_stream
from ._state import StreamState, fold
from ._upcast import CURRENT_VERSION

Warn = Callable[[str], None]

# How soon history.json must show what a session changed (see _export):
DUE, NOW, FULL = 1, 2, 3  # after the rate limit; at once, for what changed; at once, rebuilt whole


class _Stream(msgspec.Struct):
    """A recovered stream, ready to be written: its state and its file's bytes."""

    deployment: str
    state: StreamState
    data: bytes | None  # the clean file's bytes (None: no file), to undo a replace that cannot be made durable
    compact: bool  # the file holds records that are no longer visible (a clear, a stale base)

    @property
    def end(self) -> int:
        return len(self.data) if self.data else 0


class WriterSession:
    def __init__(self, paths: StorePaths, caps: CapsPolicy, warn: Warn, policy: RefreshPolicy) -> None:
        self.paths = paths
        self.caps = caps
        self.warn = warn
        self.policy = policy
        self.refresh = 0  # 0, DUE, NOW or FULL
        self.stamp: Stamp | None = None  # read by open(): what bai last wrote into history.json
        self.must_refresh = False  # a failed refresh is an error, not a warning (after a clear)
        self.touched: set[str] = set()  # UUID deployments whose visible rounds changed
        self.cleared: dict[str, list[str]] = {}  # fingerprints of the rounds cleared, per deployment
        self._streams: dict[str, _Stream] = {}
        self._cleaned_logs = False
        self.unreadable: set[str] = set()  # deployments whose log could not be read: left as they are
        self.shared_blocked: str | None = None  # why history.json must be left as it is (unreadable, a FIFO...)

    def _need(self, level: int, deployment: str | None = None) -> None:
        self.refresh = max(self.refresh, level)
        if deployment is not None and is_uuid(deployment):
            self.touched.add(deployment)

    # -- opening: layout, Backend.AI's writes ----------------------------------------------

    def open(self) -> None:
        if needs_migration(self.paths):
            migrate(self.paths, self._combine)
            self._need(FULL)
        for folder in (self.paths.own, self.paths.logs):  # never a link out of the store (appends open by name)
            try:
                ensure_private_dir(folder)
            except OSError as e:
                raise StoreWriteError(f"anything (the store's folder {folder})", e) from e
        self.stamp = read_stamp(self.paths)
        shared = read_shared_history(self.paths, self.stamp)
        if isinstance(shared, DamagedSharedHistory):
            self.warn(shared.problem)
            if not shared.readable:
                self.shared_blocked = shared.problem  # what could not be kept is not replaced
                return
            self._keep("history.json", shared.raw, "history.json")
            self._need(FULL)
        elif isinstance(shared, SharedHistory):
            self._merge(shared)
            self._need(FULL)
        elif shared is not None:  # bai's own, outdated
            self._need(FULL)
        elif self.stamp is not None and not self.paths.shared_history.exists():
            self._need(FULL)  # removed by hand: it is rebuilt (the logs are the truth; nothing is cleared)

    def _merge(self, shared: SharedHistory) -> None:
        """Bring Backend.AI's rounds and clears into the logs (see _merge). A deployment whose
        log cannot be read or written keeps Backend.AI's entry as it is (see _state_of)."""
        unplaceable = shared.unplaceable
        over_cap: list[tuple[str, int]] = []
        for d in shared.deployments():
            try:
                s = self.stream(d)
                plan = shared.plan(d, s.state.rounds)
                unplaceable += plan.unplaceable
                if plan.doubtful:
                    self.warn(doubt_message(d))
                if plan.changes:
                    merged = apply_plan(s.state, plan, d)
                    hidden = 0 if plan.clear else len(s.state.rounds) - len(self.visible(s))
                    dropped = len(merged.rounds) - len(within_caps(merged.rounds, self._caps(d))) - hidden
                    self._rewrite_to(s, merged)
                    if dropped > 0:
                        over_cap.append((d, dropped))
            except StoreError as e:
                if not slot_damage(e):
                    raise
                self.unreadable.add(d)
                self.warn(f"Backend.AI's changes to {d} in history.json are left unmerged: {e}")
        where = self._keep("history.json", shared.raw, None) if unplaceable or over_cap else ""
        if unplaceable:
            self.warn(f"merged Backend.AI's history.json, except {unplaceable} message(s) that form no "
                      f"user-then-assistant round; the file as it was is kept in {where}")
        for d, dropped in over_cap:
            caps = self._caps(d)
            self.warn(f"merged Backend.AI's history.json: {d} now holds more than its cap keeps ({caps.messages} "
                      f"messages, {caps.bytes} bytes), so its {dropped} oldest round(s) were dropped; "
                      f"the file as it was is kept in {where}")

    def _combine(self, old_id: str, new_id: str) -> None:
        """Fold a legacy log whose id is another spelling of `new_id` into new_id's log."""
        source = self.paths.legacy_log(old_id)
        data = read_bytes(source) or b""
        s = self.stream(new_id)
        known = {round_fingerprint(r) for r in s.state.rounds}
        theirs = [r for r in fold(scan_stream(data, old_id).chain).rounds if round_fingerprint(r) not in known]
        if theirs:
            seq = s.state.last_seq
            rounds = list(s.state.rounds)
            for r in theirs:
                seq += 1
                rounds.append(msgspec.structs.replace(r, seq=seq, deployment=new_id))
            self._rewrite_to(s, StreamState(rounds, seq))
        os.unlink(source)

    # -- recovery ---------------------------------------------------------------------------

    def stream(self, deployment: str) -> _Stream:
        """Recover the deployment's log (truncate a torn tail, keep damage aside) and return it."""
        cached = self._streams.get(deployment)
        if cached is not None:
            return cached
        read = read_stream(self.paths, deployment)
        scan = read.scan
        if scan.newer_version is not None:
            raise StoreVersionError(str(self.paths.log(deployment)), scan.newer_version)
        state = read.resolved.state
        damage = describe_damage(deployment, read)
        if damage is not None:
            self.warn(damage)
            if read.data:
                self._keep(f"{deployment}.jsonl", read.data, f"damaged history of {deployment}")
            s = _Stream(deployment, state, None, False)
            s.data = self._rewrite(deployment, state)
            self._need(NOW, deployment)
        else:
            data = read.data
            if scan.tail_start is not None:
                self._truncate(deployment, scan.good_end)
                data = data[: scan.good_end] if data else data
            head_is_base = bool(scan.chain) and isinstance(scan.chain[0], BaseEvent)
            clears = [i for i, e in enumerate(scan.chain) if isinstance(e, ClearEvent)]
            if clears:  # a clear whose compaction did not happen: what it removed is remembered now
                self._removed(deployment, fold(scan.chain[: clears[-1]]).rounds)
            stale = bool(clears) or (
                head_is_base and bool(state.rounds) and scan.chain[0].seq != state.rounds[0].seq - 1
            )
            s = _Stream(deployment, state, data, stale)
        self._streams[deployment] = s
        return s

    def _removed(self, deployment: str, rounds: list[RoundEvent]) -> None:
        """Remember rounds a clear removed (written to exported.json when the session closes)."""
        if rounds:
            self.cleared.setdefault(deployment, []).extend(round_fingerprint(r) for r in rounds)

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

    def _keep(self, name: str, data: bytes, what: str | None) -> str:
        """Keep a file's original bytes aside (bounded, see _keep); says where unless `what` is None."""
        if not data:
            return ""  # an empty file holds nothing to keep
        target = keep_aside(self.paths, name, data)
        if what is not None:
            self.warn(f"the original bytes of the {what} are kept in {target}")
        return str(target)

    # -- writing ------------------------------------------------------------------------

    def append_round(self, s: _Stream, make: Callable[[int], RoundEvent]) -> tuple[RoundEvent, list[RoundEvent]] | None:
        """Append a round; compacts in the same write if the cap now drops something.
        None, writing nothing, when the round alone exceeds the caps: it could not be kept, and
        making room for it would only drop every older round."""
        caps = self._caps(s.deployment)
        event = make(s.state.last_seq + 1)
        line = encode_line(event)
        if not within_caps([event], caps):
            return None
        new_state = StreamState(s.state.rounds + [event], event.seq)
        kept = within_caps(new_state.rounds, caps, log_bytes=s.end + len(line))
        if len(kept) == len(new_state.rounds) and not s.compact and s.end > 0:
            self._append_line(s, line)
            s.state = new_state
        else:
            self._rewrite_to(s, new_state)
        self._need(DUE, s.deployment)
        return event, kept

    def clear(self, s: _Stream) -> int:
        """Tombstone, then compaction: the clear is committed once the tombstone is durable."""
        removed = 2 * len(self.visible(s))
        if s.state.last_seq == 0 and s.end == 0:
            self._forget_copies(s.deployment)
            return 0  # nothing was ever recorded
        self._removed(s.deployment, s.state.rounds)
        tombstone = ClearEvent(v=CURRENT_VERSION, seq=s.state.last_seq + 1, deployment=s.deployment, ts=now_iso())
        self._append_line(s, encode_line(tombstone))
        s.state = fold([tombstone], s.state)
        s.compact = True
        self._need(NOW, s.deployment)
        self.must_refresh = self.must_refresh or is_uuid(s.deployment)
        try:
            self.compact(s)  # the tombstone is committed: compaction changes nothing visible
            if SEPARATOR in s.deployment:
                self._remove_log(s)  # a named conversation ends with its clear (it is not Backend.AI's)
        except StoreWriteError as e:
            self.warn(f"{s.deployment} is cleared, but its log could not be compacted yet: {e}")
        self._forget_copies(s.deployment)
        return removed

    def _forget_copies(self, deployment: str) -> None:
        """Kept copies of damaged files may hold the cleared text: they go too (see _keep)."""
        try:
            forget(self.paths, deployment)
        except StoreWriteError as e:
            self.warn(f"{deployment} is cleared, but a kept copy that may hold its text could not be removed: {e}")

    def _remove_log(self, s: _Stream) -> None:
        """Remove a cleared stream's log (holding only its tombstone's base): a conversation of
        that name starts afresh. The unlink is durable once the folder is synced."""
        try:
            os.unlink(self.paths.log(s.deployment))
            fsync_dir(self.paths.logs)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreWriteError(f"the history of {s.deployment}", e) from e
        s.data, s.state = None, StreamState([], 0)

    def compact(self, s: _Stream) -> None:
        """Rewrite the log under its caps: what is visible does not change, so a replace that
        cannot be made durable needs no undo."""
        s.data = self._rewrite(s.deployment, s.state)
        s.compact = False
        self._need(DUE, s.deployment)

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

    def _rewrite_to(self, s: _Stream, state: StreamState) -> None:
        """Replace the stream's log by `state`, compacted; visible history changes, so a replace
        that cannot be made durable is taken back."""
        s.data = self._rewrite(s.deployment, state, undo=s.data)
        s.state = state
        s.compact = False
        self._need(DUE, s.deployment)

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
        if not self._cleaned_logs:
            self._remove_leftover_tmp_files(self.paths.logs)
            self._cleaned_logs = True
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

    def visible(self, s: _Stream) -> list[RoundEvent]:
        """The stream's rounds within its caps (sized from its file where that suffices)."""
        return within_caps(s.state.rounds, self._caps(s.deployment), log_bytes=s.end)

    # -- history.json -------------------------------------------------------------------

    def close(self) -> None:
        """Refresh history.json as the session's changes require (see _export). A failure loses
        nothing (the logs hold it all, and the next writer retries); after a clear it is an
        error, since Backend.AI would still show what was cleared."""
        if self.cleared:
            try:
                remember_removed(self.paths, self.cleared)
            except OSError as e:
                self.warn(f"cleared; a damaged log could not be kept from showing the cleared rounds ({e.strerror or e})")
        if not self.refresh:
            return
        if self.shared_blocked is not None:
            if self.must_refresh:
                raise SharedHistoryStale(OSError(0, self.shared_blocked))
            return  # said once when found (open)
        if self.refresh == DUE:
            if not self.touched or not self.policy.due(self.stamp):
                return
        self._remove_leftover_tmp_files()
        try:
            took = refresh(self.paths, self._state_of, self._caps, stamp=self.stamp, touched=self.touched,
                               full=self.refresh == FULL)
            self.policy.refreshed(took)
        except (OSError, StoreError) as e:
            cause = e if isinstance(e, OSError) else getattr(e, "cause", OSError(str(e)))
            try:
                forget_stamp(self.paths)  # the next writer rebuilds it
            except OSError:
                pass
            if self.must_refresh:
                raise SharedHistoryStale(cause) from e
            self.warn(f"saved, but history.json (Backend.AI's view) could not be refreshed "
                      f"({cause.strerror or cause}); bai's next write retries")

    def _state_of(self, deployment: str) -> StreamState | None:
        """A deployment's state for history.json: as this session left it, else as read (the
        refresh repairs nothing in other logs: that is their own next writer's job). None when
        its log cannot be read: its entry in history.json is left as it was."""
        if deployment in self.unreadable:
            return None
        s = self._streams.get(deployment)
        if s is not None:
            return s.state
        try:
            return read_stream(self.paths, deployment).resolved.state
        except StoreReadError as e:
            self.unreadable.add(deployment)
            self.warn(f"{e}; history.json keeps what it showed of {deployment}")
            return None

    def each(self, deployments: list[str], action: Callable[[_Stream], object]) -> tuple[list[object], list[tuple[str, StoreError]]]:
        """`action` on each deployment's stream; damage in one deployment's slot (a log that is a
        folder, a FIFO, a link, unreadable, of a newer bai) stays in that deployment: it is
        skipped and reported, and the others go on. Returns (results, failures)."""
        results: list[object] = []
        failures: list[tuple[str, StoreError]] = []
        for d in deployments:
            try:
                results.append(action(self.stream(d)))
            except StoreError as e:
                if not slot_damage(e):
                    raise
                self.unreadable.add(d)
                failures.append((d, e))
        return results, failures

    def _remove_leftover_tmp_files(self, *folders: Path) -> None:
        """Temp files a crashed writer left, in `folders` (default: all of the store's). Done when
        refreshing history.json and when replacing a log, not on every turn: it lists folders.
        We hold the lock, and only lock holders write tmp files: any present is a leftover."""
        for d in folders or (self.paths.root, self.paths.own, self.paths.logs, self.paths.kept):
            try:
                names = os.listdir(d)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for n in names:
                if is_tmp_name(n):
                    try:
                        os.unlink(d / n)
                    except FileNotFoundError:
                        pass


def slot_damage(e: StoreError) -> bool:
    """Whether `e` is about one deployment's own files (its log unreadable, of a newer bai, or
    something else than a regular file), not about the store as a whole (a full disk)."""
    return isinstance(e, (StoreReadError, StoreVersionError)) or \
        (isinstance(e, StoreWriteError) and isinstance(e.cause, OddPath))


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
