"""Lock-free reading: a deployment's log, and Backend.AI's changes to history.json not merged yet.

Readers never write and never fail on bad files: a damaged or foreign file is a one-line
warning and the view goes on with what is valid. A turn reads only its own deployment's log,
plus one stat of history.json to see whether Backend.AI wrote it since bai did; only then is
history.json read, and merged in memory exactly as the next writer will merge it on disk.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import msgspec

from ._events import RoundEvent
from ._export import ExportRecord, Stamp, changed_by_another, read_record, read_stamp
from ._files import StorePaths
from ._fingerprint import round_fingerprint
from ._errors import StoreReadError
from ._fsio import read_bytes
from ._ids import canonical_deployment_id, is_valid_deployment_id
from ._merge import Exported, Plan, apply_plan, doubt_message, has_new_rounds, reconcile
from ._projection import Message, Projection, Unreadable, decode_projection, rounds_of_messages
from ._scan import Scan, scan_stream
from ._state import Resolved, StreamState, resolve

Warn = Callable[[str], None]


class StreamRead(msgspec.Struct, frozen=True):
    data: bytes | None  # None: no log file
    scan: Scan
    resolved: Resolved


def read_log(paths: StorePaths, deployment: str) -> bytes | None:
    """The deployment's log (None: none). A log that is not a regular file (a folder, a FIFO:
    never waited on) or cannot be read: StoreReadError, for that deployment alone."""
    data = read_bytes(paths.log(deployment))
    if data is None and not paths.logs.is_dir():  # a store not moved to bai/logs yet
        data = read_bytes(paths.legacy_log(deployment))
    return data


def read_stream(paths: StorePaths, deployment: str) -> StreamRead:
    data = read_log(paths, deployment)
    scan = scan_stream(data or b"", deployment)
    checkpoint = _checkpoint(paths, deployment) if scan.gap_at is not None else None
    resolved = resolve(scan, checkpoint)
    if scan.damaged:
        resolved = _without_removed(paths, deployment, resolved)
    return StreamRead(data, scan, resolved)


def _without_removed(paths: StorePaths, deployment: str, resolved: Resolved) -> Resolved:
    """A damaged log may have lost the very clear that removed the rounds before it: leave out
    the rounds bai remembers removing (exported.json), so a clear stays a clear (P5)."""
    exported = read_record(paths).deployments.get(deployment)
    if exported is None or not exported.retired:
        return resolved
    removed = set(exported.retired)
    rounds = [r for r in resolved.state.rounds if round_fingerprint(r) not in removed]
    if len(rounds) == len(resolved.state.rounds):
        return resolved
    return msgspec.structs.replace(resolved, state=StreamState(rounds, resolved.state.last_seq))


def _checkpoint(paths: StorePaths, deployment: str) -> StreamState | None:
    """The deployment's state as bai last wrote it into history.json, if it is bai's file and
    describes a stream state: what a log with a gap continues from (see resolve)."""
    try:
        projection = decode_projection(read_bytes(paths.shared_history) or b"")
    except (Unreadable, StoreReadError):
        return None
    if projection.version is None or deployment not in projection.last_seq:
        return None
    messages = projection.messages(deployment)
    if messages is None:
        return None
    rounds, skipped = rounds_of_messages(deployment, messages)
    last_seq = projection.last_seq[deployment]
    if skipped or not _contiguous(rounds, last_seq):
        return None
    return StreamState(rounds, last_seq)


def _contiguous(rounds: list[RoundEvent], last_seq: int) -> bool:
    if not rounds:
        return True
    first = rounds[0].seq
    return first >= 1 and all(r.seq == first + i for i, r in enumerate(rounds)) and rounds[-1].seq == last_seq


class SharedHistory(msgspec.Struct):
    """history.json as Backend.AI left it, with what bai last wrote into it: what to merge."""

    raw: bytes
    projection: Projection
    record: ExportRecord
    keys: dict[str, str]  # canonical deployment id -> the key as written
    unplaceable: int  # messages under keys that are no deployment id
    saved_at: float  # the file's mtime: when Backend.AI saved it
    chats_seen: bool  # whether it holds a round bai never wrote, in any deployment

    def messages(self, deployment: str) -> list[Message] | None:
        """The deployment's entry (None: no entry); an unreadable entry counts as unplaceable, not as a clear."""
        key = self.keys.get(deployment)
        if key is None:
            return None
        return self.projection.messages(key)

    def deployments(self) -> list[str]:
        return sorted(set(self.keys) | set(self.record.deployments))

    def plan(self, deployment: str, local: list[RoundEvent]) -> Plan:
        if deployment in self.keys and self.messages(deployment) is None:
            return Plan(unplaceable=1)
        return reconcile(self.messages(deployment), self.record.deployments.get(deployment), local,
                         saved_at=self.saved_at, chats_seen=self.chats_seen)


class DamagedSharedHistory(msgspec.Struct, frozen=True):
    raw: bytes
    problem: str
    readable: bool = True  # False: not a regular file, or unreadable: bai must not replace what it could not keep


class OutdatedSharedHistory(msgspec.Struct, frozen=True):
    """history.json written by bai, but not the file bai wrote last (an old copy put back, a
    crash between history.json and its stamp): nothing in it is news; it is rebuilt."""


def read_shared_history(paths: StorePaths, stamp: Stamp | None | bool = False,
                        ) -> SharedHistory | DamagedSharedHistory | OutdatedSharedHistory | None:
    """history.json if Backend.AI wrote it since bai last did (None: nothing to merge, or no
    file). A damaged one, or one bai wrote but not last, is reported as such: bai's logs stay
    the truth. Backend.AI's saves drop every key it does not know, `version` among them.
    `stamp`: bai's stamp if the caller has read it already."""
    if not changed_by_another(paths, read_stamp(paths) if stamp is False else stamp):
        return None
    try:
        raw = _read_settled(paths)
    except StoreReadError as e:
        return DamagedSharedHistory(b"", f"{e}; history.json (Backend.AI's view) is left as it is", readable=False)
    if raw is None:
        return None
    try:
        projection = decode_projection(raw)
    except Unreadable as e:
        return DamagedSharedHistory(raw, f"ignoring {paths.shared_history}: {e}")
    if projection.version is not None:
        return OutdatedSharedHistory()
    record = read_record(paths)
    keys: dict[str, str] = {}
    unplaceable = 0
    for key in projection.deployments:
        if is_valid_deployment_id(key) and canonical_deployment_id(key) not in keys:
            keys[canonical_deployment_id(key)] = key
        else:
            unplaceable += max(len(projection.messages(key) or []), 1)
    try:
        saved_at = os.stat(paths.shared_history).st_mtime
    except FileNotFoundError:
        saved_at = time.time()
    chats = any(has_new_rounds(m, record.deployments.get(d)) for d, key in keys.items()
                if (m := projection.messages(key)))
    return SharedHistory(raw, projection, record, keys, unplaceable, saved_at, chats)


def _read_settled(paths: StorePaths) -> bytes | None:
    """history.json's bytes. Backend.AI writes it in place (truncate, then write): a file that is
    not valid JSON and was changed in the last second may be half written; read it again."""
    raw = read_bytes(paths.shared_history)
    for _ in range(5):
        if raw is None or _is_json(raw):
            break
        try:
            age = time.time() - os.stat(paths.shared_history).st_mtime
        except FileNotFoundError:
            return None
        if age > 1:
            break
        time.sleep(0.05)
        raw = read_bytes(paths.shared_history)
    return raw


def _is_json(raw: bytes) -> bool:
    try:
        msgspec.json.decode(raw)
        return True
    except (msgspec.DecodeError, RecursionError):
        return False


def merged_state(state: StreamState, shared: SharedHistory | None, deployment: str, warn: Warn) -> StreamState:
    """The stream as the next writer will leave it once it has merged Backend.AI's changes."""
    if shared is None:
        return state
    plan = shared.plan(deployment, state.rounds)
    if plan.doubtful:
        warn(doubt_message(deployment))
    if plan.unplaceable:
        warn(f"history.json: {plan.unplaceable} message(s) of {deployment} form no user-then-assistant "
             "round and are left out")
    return apply_plan(state, plan, deployment) if plan.changes else state


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


__all__ = ["DamagedSharedHistory", "Exported", "OutdatedSharedHistory", "SharedHistory", "StreamRead", "describe_damage", "merged_state", "read_log",
           "read_shared_history", "read_stream"]
