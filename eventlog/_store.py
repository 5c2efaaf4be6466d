"""The Store: the public face of the transcript store.

Writers (record_round, clear, clear_all, compact) take the lock, merge what Backend.AI wrote,
recover, write durably, refresh history.json when due, and release; only then do they
return. Readers (history, rounds, context, deployments) take no lock and never write; they
show what the next writer would leave, Backend.AI's unmerged changes included.
"""

from __future__ import annotations

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
from ._ids import check_deployment_id
from ._errors import StoreWriteError
from ._fsio import atomic_write, ensure_private_dir
from ._keep import keep_aside
from ._lock import WriterLock
from ._projection import Message, messages_of_round, projected_size
from ._reader import DamagedSharedHistory, SharedHistory, describe_damage, merged_state, read_shared_history, read_stream
from ._export import SHARE, RefreshPolicy
from ._writer import FULL, WriterSession, open_root


class Recorded(msgspec.Struct, frozen=True):
    """A round that is durably saved; `kept` False (and seq 0) when it alone exceeded the caps
    and so was not written at all."""

    seq: int
    kept: bool
    dropped_rounds: int  # older rounds the cap dropped to make room


class DeploymentSummary(msgspec.Struct, frozen=True):
    deployment: str
    messages: int
    bytes: int  # the deployment's log file on disk (what the byte cap bounds)
    first_at: str | None
    last_at: str | None


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
        open_root(self.paths)
        with WriterLock(self.paths.lock, self.lock_timeout):
            yield

    def write_file(self, name: str, data: bytes) -> None:
        """Atomically replace the file `name` (relative to the root: `config.json`, or
        `bai/config.json` for bai's own) with `data`: 0600, durable on return."""
        parts = name.split("/")
        if not 1 <= len(parts) <= 2 or any(not p or p.startswith(".") for p in parts) or \
                (len(parts) == 2 and parts[0] != self.paths.own.name):
            raise ValueError(f"not a file name of the store: {name!r}")
        open_root(self.paths)
        target = self.paths.root / name
        try:
            ensure_private_dir(target.parent)
            atomic_write(target, data)
        except OSError as e:
            raise StoreWriteError(name, e) from e

    def keep_copy(self, name: str, data: bytes) -> Path:
        """Keep the bytes of a damaged file `name` aside (bai/kept, bounded) before it is replaced."""
        return keep_aside(self.paths, name.replace("/", "-"), data)

    @contextmanager
    def _writing(self) -> Iterator[WriterSession]:
        open_root(self.paths)
        with WriterLock(self.paths.lock, self.lock_timeout):
            session = WriterSession(self.paths, self.caps, self._warn_once, self.refresh_policy)
            session.open()
            yield session
            session.close()

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
    ) -> Recorded:
        """Durably append one completed round; returns once it survives a crash.

        A round that alone exceeds the deployment's caps is not written (`kept` False, seq 0):
        the history stays as it was."""
        deployment = check_deployment_id(deployment)

        def make(seq: int) -> RoundEvent:
            ts = now_iso()
            return RoundEvent(
                v=CURRENT_VERSION, seq=seq, deployment=deployment, ts=ts, user=user,
                assistant=assistant, user_at=user_at or ts, model=model, finish_reason=finish_reason, usage=usage,
                prompt_chars=prompt_chars,
            )

        with self._writing() as w:
            s = w.stream(deployment)
            before = len(w.visible(s))
            appended = w.append_round(s, make)
        if appended is None:
            return Recorded(0, False, 0)
        event, kept = appended
        return Recorded(event.seq, True, before + 1 - len(kept))

    def clear(self, deployment: str) -> int:
        """Forget the deployment's history. Returns how many messages were removed."""
        deployment = check_deployment_id(deployment)
        with self._writing() as w:
            return w.clear(w.stream(deployment))

    def clear_all(self) -> int:
        with self._writing() as w:
            return sum(w.clear(w.stream(d)) for d in w.paths.logged_deployments())

    def compact(self, deployment: str | None = None) -> None:
        """Rewrite logs under their caps and rebuild history.json (all deployments by default)."""
        if deployment is not None:
            deployment = check_deployment_id(deployment)
        with self._writing() as w:
            w.refresh = FULL
            for d in [deployment] if deployment else w.paths.logged_deployments():
                w.compact(w.stream(d))

    # -- readers -------------------------------------------------------------------------

    def rounds(self, deployment: str) -> list[RoundEvent]:
        """The deployment's visible rounds, oldest first, within its caps."""
        deployment = check_deployment_id(deployment)
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
        """Every deployment with history: message count, bytes on disk, first and last time."""
        shared = self._shared_history()
        names = set(self.paths.logged_deployments())
        if shared is not None:
            names.update(shared.deployments())
        out = []
        for d in sorted(names):
            rounds = self._rounds(d, shared)
            if not rounds:
                continue
            try:
                size = self.paths.log(d).stat().st_size
            except FileNotFoundError:
                size = sum(projected_size(r) for r in rounds)
            out.append(DeploymentSummary(d, 2 * len(rounds), size, rounds[0].user_at or rounds[0].ts, rounds[-1].ts))
        return out
