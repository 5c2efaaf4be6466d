"""The Store: the public face of the transcript store.

Writers (record_round, clear, clear_all, compact) take the lock, merge what Backend.AI wrote,
recover, write durably, refresh history.json when due, and release; only then do they
return. Readers (history, rounds, context, deployments) take no lock and never write; they
show what the next writer would leave, Backend.AI's unmerged changes included.
"""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager
import msgspec
from pathlib import Path
from typing import Any, Callable, Iterator

from ._caps import Caps, CapsPolicy, caps_for, within_caps
from ._context import as_messages, recent_rounds
from ._events import RoundEvent, now_iso
from ._upcast import CURRENT_VERSION
from ._files import StorePaths, default_root
from ._ids import check_stream_id, split_stream_id
from ._errors import StoreBusy, StoreError, StoreUnwritable, StoreWriteError, TooManyConversations, describe
from ._fsio import atomic_write, ensure_private_dir, open_private, read_bytes
from ._text import scrub, scrub_tree
from ._keep import forget, keep_aside
from ._lock import WriterLock
from ._projection import Message, messages_of_round, projected_size
from ._reader import DamagedSharedHistory, SharedHistory, describe_damage, merged_state, read_shared_history, read_stream
from ._export import SHARE, RefreshPolicy
from ._root import open_root
from ._writer import FULL, WriterSession


PROBE_WAIT = 3.0  # check_writable: how long a busy lock is waited for before nothing is sent
MAX_CONVERSATIONS = 20  # named conversations per deployment, besides its main one: each is capped
# like the deployment, so a deployment's disk use stays within (1 + this) times its byte cap


class Recorded(msgspec.Struct, frozen=True):
    """A round that is durably saved; `kept` False (and seq 0) when it alone exceeded the caps
    and so was not written at all."""

    seq: int
    kept: bool
    dropped_rounds: int  # older rounds the cap dropped to make room


class DeploymentSummary(msgspec.Struct, frozen=True):
    """One conversation with history: `deployment` is its stream id (the deployment's id for
    its main conversation, `<deployment>~<name>` for another); see `conversation`."""

    deployment: str
    messages: int
    bytes: int  # the deployment's log file on disk (what the byte cap bounds)
    first_at: str | None
    last_at: str | None

    @property
    def deployment_id(self) -> str:
        return split_stream_id(self.deployment)[0]

    @property
    def conversation(self) -> str | None:
        """None for the deployment's main conversation."""
        return split_stream_id(self.deployment)[1]


def _stderr_warn(message: str) -> None:
    print(f"bai: warning: {message}", file=sys.stderr)


class Store:
    def __init__(
        self,
        root: Path | str | None = None,
        *,
        caps: CapsPolicy = Caps(),
        lock_timeout: float = 10.0,
        warn: Callable[[str], None] = _stderr_warn,
        refresh_share: float = SHARE,
    ) -> None:
        """`refresh_share`: how far apart refreshes of history.json after saves are kept, in
        multiples of their duration (0: after every save; see _export)."""
        self.paths = StorePaths(Path(root) if root is not None else default_root())
        self.caps = caps
        self.lock_timeout = lock_timeout
        self._warn = warn
        self.refresh_policy = RefreshPolicy(refresh_share)
        self._warned: set[str] = set()

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._warn(message)

    # -- writers -------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writers' lock, for read-modify-write of sibling files (settings, caches)."""
        open_root(self.paths, self._warn_once)
        with WriterLock(self.paths.lock, self.lock_timeout):
            yield

    def read_file(self, name: str) -> bytes | None:
        """The bytes of the file `name` (as for write_file; None: no such file). Anything but a
        regular file (a FIFO is never waited on), or a file that cannot be read: StoreReadError."""
        return read_bytes(self._file_path(name))

    def write_file(self, name: str, data: bytes) -> None:
        """Atomically replace the file `name` (relative to the root: `config.json`, or
        `bai/config.json` for bai's own) with `data`: 0600, durable on return. A link (or a
        FIFO, a folder) in its place is refused: StoreWriteError, and the link's target is untouched."""
        target = self._file_path(name)
        open_root(self.paths, self._warn_once)
        try:
            if target.parent != self.paths.root:  # the root may be a link (open_root checked it)
                ensure_private_dir(target.parent)
            atomic_write(target, data)
        except OSError as e:
            raise StoreWriteError(name, e) from e

    def _file_path(self, name: str) -> Path:
        parts = name.split("/")
        if not 1 <= len(parts) <= 2 or any(not p or p.startswith(".") for p in parts) or \
                (len(parts) == 2 and parts[0] != self.paths.own.name):
            raise ValueError(f"not a file name of the store: {name!r}")
        return self.paths.root / name

    def keep_copy(self, name: str, data: bytes) -> Path:
        """Keep the bytes of a damaged file `name` aside (bai/kept, bounded) before it is replaced."""
        return keep_aside(self.paths, name.replace("/", "-"), data)

    @contextmanager
    def _writing(self, lock_timeout: float | None = None, on_wait: Callable[[], None] | None = None,
                 on_locked: Callable[[], None] | None = None) -> Iterator[WriterSession]:
        open_root(self.paths, self._warn_once)
        with WriterLock(self.paths.lock, self.lock_timeout if lock_timeout is None else lock_timeout, on_wait=on_wait):
            if on_locked is not None:
                on_locked()
            session = WriterSession(self.paths, self.caps, self._warn_once, self.refresh_policy)
            session.open()
            yield session
            session.close()

    def check_writable(self, deployment: str, *, lock_timeout: float | None = None) -> None:
        """Before a request is sent: raise StoreUnwritable if a round of `deployment` could not
        be saved now, so no answer is spent and then lost. Cheap (no fsync, nothing written):
        the root and bai/logs are folders of the store and writable, the deployment's log is
        absent or a regular file that opens for writing, and the lock is free within
        `lock_timeout` (default PROBE_WAIT; it is taken and let go). A full disk cannot be
        seen in advance."""
        deployment = check_stream_id(deployment)
        if lock_timeout is None:
            lock_timeout = min(PROBE_WAIT, self.lock_timeout)
        try:
            open_root(self.paths, self._warn_once)
            with WriterLock(self.paths.lock, lock_timeout):
                for folder in (self.paths.own, self.paths.logs):
                    ensure_private_dir(folder)
                    if not os.access(folder, os.W_OK | os.X_OK):
                        raise PermissionError(errno.EACCES, f"{folder} is not writable")
                log = self.paths.log(deployment)
                try:
                    os.close(open_private(log, os.O_WRONLY))
                except FileNotFoundError:
                    self._check_room_for(deployment)
        except StoreBusy as e:
            raise StoreUnwritable(f"another bai process has held its lock for over {lock_timeout:g}s", e) from e
        except TooManyConversations:
            raise
        except (StoreError, OSError) as e:
            raise StoreUnwritable(describe(e), e) from e

    def record_round(
        self,
        deployment: str,
        user: str,
        assistant: str,
        *,
        user_at: str | None = None,
        model: str | None = None,
        finish_reason: str | None = None,
        usage: dict[str, Any] | None = None,
        prompt_chars: int | None = None,
        reasoning: str | None = None,
        lock_timeout: float | None = None,
        on_wait: Callable[[], None] | None = None,
        on_locked: Callable[[], None] | None = None,
    ) -> Recorded:
        """Durably append one completed round; returns once it survives a crash.

        A round that alone exceeds the deployment's caps is not written (`kept` False, seq 0):
        the history stays as it was. `lock_timeout` (default: the store's) is how long to wait
        for a busy lock; `on_wait` is told once when that wait gets long (see _lock); `on_locked`
        is called once the lock is taken (the caller may hold signals from then on).
        Lone surrogates (undecodable bytes that Python keeps as U+DC80-U+DCFF) are saved as
        U+FFFD: they cannot be encoded as UTF-8, and one would make Backend.AI refuse history.json."""
        deployment = check_stream_id(deployment)
        user, assistant, model, reasoning = scrub(user), scrub(assistant), scrub(model), scrub(reasoning or None)
        usage = scrub_tree(usage)

        def make(seq: int) -> RoundEvent:
            ts = now_iso()
            return RoundEvent(
                v=CURRENT_VERSION, seq=seq, deployment=deployment, ts=ts, user=user,
                assistant=assistant, user_at=user_at or ts, model=model, finish_reason=finish_reason, usage=usage,
                prompt_chars=prompt_chars, reasoning=reasoning,
            )

        with self._writing(lock_timeout, on_wait, on_locked) as w:
            s = w.stream(deployment)
            if s.data is None:  # no log yet: a new conversation must have room
                self._check_room_for(deployment)
            before = len(w.visible(s))
            appended = w.append_round(s, make)
        if appended is None:
            return Recorded(0, False, 0)
        event, kept = appended
        return Recorded(event.seq, True, before + 1 - len(kept))

    def _check_room_for(self, stream: str) -> None:
        """A new named conversation is refused when its deployment has MAX_CONVERSATIONS."""
        deployment, name = split_stream_id(stream)
        if name is None:
            return
        others = self.conversations(deployment)
        if len(others) >= MAX_CONVERSATIONS:
            raise TooManyConversations(
                f"{deployment} has {len(others)} conversations besides its main one, the most bai keeps; "
                f"clear one first: bai deployment chat-history clear {deployment} --conversation NAME")

    def clear(self, deployment: str) -> int:
        """Forget the deployment's history. Returns how many messages were removed."""
        deployment = check_stream_id(deployment)
        with self._writing() as w:
            return w.clear(w.stream(deployment))

    def clear_all(self) -> int:
        """Clear every deployment. One whose log cannot be read or written is left as it is and
        the others are cleared; then StoreError says which (nothing is cleared silently half)."""
        with self._writing() as w:
            removed, failures = w.each(w.paths.logged_deployments(), w.clear)
            if not failures:
                forget(w.paths, None)  # copies of logs no longer there, and of history.json
        total = sum(removed)  # type: ignore[arg-type]
        if failures:
            (d, e), more = failures[0], len(failures) - 1
            others = f" and {more} other(s)" if more else ""
            raise StoreError(f"cleared the others ({total} message(s) removed), but not {d}{others}: {e}")
        return total

    def compact(self, deployment: str | None = None) -> None:
        """Rewrite logs under their caps and rebuild history.json (all deployments by default;
        one whose log cannot be read or written is skipped with a warning). A deployment with
        no log is left without one."""
        if deployment is not None:
            deployment = check_stream_id(deployment)
        with self._writing() as w:
            w.refresh = FULL
            if deployment:
                s = w.stream(deployment)
                if s.data is not None or s.state.last_seq:
                    w.compact(s)
                return
            _, failures = w.each(w.paths.logged_deployments(), w.compact)
            for d, e in failures:
                self._warn(f"{d} is left as it is: {e}")

    # -- readers -------------------------------------------------------------------------

    def rounds(self, deployment: str) -> list[RoundEvent]:
        """The deployment's visible rounds, oldest first, within its caps."""
        deployment = check_stream_id(deployment)
        return self._rounds(deployment, self._shared_history())

    def _shared_history(self) -> SharedHistory | None:
        """Backend.AI's changes to history.json not merged yet (None: none; one stat when none)."""
        shared = read_shared_history(self.paths)
        if isinstance(shared, DamagedSharedHistory):
            self._warn_once(shared.problem)
        return shared if isinstance(shared, SharedHistory) else None

    def _rounds(self, deployment: str, shared: SharedHistory | None) -> list[RoundEvent]:
        read = read_stream(self.paths, deployment)
        damage = describe_damage(deployment, read)
        if damage:
            self._warn_once(damage)
        state = merged_state(read.resolved.state, shared, deployment, self._warn_once)
        exact = state is read.resolved.state and not read.resolved.from_checkpoint and not read.scan.damaged
        return within_caps(state.rounds, caps_for(self.caps, deployment),
                           log_bytes=len(read.data or b"") if exact else None)

    def conversations(self, deployment: str) -> list[str]:
        """The names of the deployment's conversations besides its main one that have a log."""
        prefix = check_stream_id(deployment) + "~"
        return [s[len(prefix):] for s in self.paths.logged_deployments() if s.startswith(prefix)]

    def history(self, deployment: str) -> list[Message]:
        """The visible messages, oldest first, as history.json holds them."""
        return [m for r in self.rounds(deployment) for m in messages_of_round(r)]

    def recent_rounds(self, deployment: str, limit: int) -> list[RoundEvent]:
        """The newest whole rounds within `limit` messages (an odd limit rounds down; 0: none)."""
        return recent_rounds(self.rounds(deployment), limit)

    def context(self, deployment: str, limit: int) -> list[dict[str, str]]:
        """The last `limit` messages in whole rounds, as wire messages (role, content)."""
        return as_messages(self.recent_rounds(deployment, limit))

    def deployments(self) -> list[DeploymentSummary]:
        """Every conversation with history: message count, bytes on disk, first and last time."""
        out = []
        for d, rounds in self.every_history():
            try:
                size = self.paths.log(d).stat().st_size
            except FileNotFoundError:
                size = sum(projected_size(r) for r in rounds)
            out.append(DeploymentSummary(d, 2 * len(rounds), size, rounds[0].user_at or rounds[0].ts, rounds[-1].ts))
        return out

    def every_history(self) -> list[tuple[str, list[RoundEvent]]]:
        """(stream id, visible rounds) of every conversation with history, by stream id. One
        whose slot is damaged is left out, with a warning."""
        shared = self._shared_history()
        names = set(self.paths.logged_deployments())
        if shared is not None:
            names.update(shared.deployments())
        out = []
        for d in sorted(names):
            try:
                rounds = self._rounds(d, shared)
            except StoreError as e:  # one deployment's damaged slot hides only that deployment
                self._warn_once(f"{d} is not listed: {e}")
                continue
            if rounds:
                out.append((d, rounds))
        return out
