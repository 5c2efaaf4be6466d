"""config.json (the user's settings per deployment) and cache.json (endpoint metadata).

Both keep Backend.AI's shape `{"deployments": {"<id>": {...}}}`. Keys this version does not
know are kept as they are when a file is rewritten, so either tool can read the other's. A
file that cannot be read is a one-line warning; before it is replaced, its bytes are kept
as `<name>.corrupt-<time>`, so nothing the user wrote is lost.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

import msgspec

from eventlog import Caps, Store

CONFIG = "config.json"
CACHE = "cache.json"
CACHE_TTL_SECONDS = 24 * 3600
DEFAULT_HISTORY_LIMIT = 10


class DeploymentConfig(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    endpoint: str | None = None
    token: str | None = None
    model: str | None = None
    system: str | None = None
    history_limit: int | None = None
    history_cap: int | None = None
    history_max_bytes: int | None = None
    context_window: int | None = None



class CacheEntry(msgspec.Struct, omit_defaults=True):
    default_model: str | None = None
    max_model_len: int | None = None
    context_window: int | None = None
    last_synced_at: str | None = None  # when default_model (and max_model_len) were fetched
    window_checked_at: str | None = None  # when the server was last asked for its context size

    def is_fresh(self, now: float | None = None) -> bool:
        return _recent(self.last_synced_at, now)

    def window_is_fresh(self, now: float | None = None) -> bool:
        return _recent(self.window_checked_at, now)


def _recent(stamp: str | None, now: float | None = None) -> bool:
    if not stamp:
        return False
    try:
        synced = datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return False
    return 0 <= (now or time.time()) - synced < CACHE_TTL_SECONDS


class SettingsFile(msgspec.Struct):
    """One of the two files: raw entries kept whole, typed views decoded per deployment."""

    name: str
    raw: dict[str, Any] = {}  # the whole document
    damaged: bytes | None = None  # the original bytes when they could not be read

    @property
    def deployments(self) -> dict[str, Any]:
        return self.raw.setdefault("deployments", {})

    def entry(self, deployment: str, kind: type, warn: Callable[[str], None]) -> Any:
        value = self.deployments.get(deployment, {})
        try:
            return msgspec.convert(value, kind)
        except msgspec.ValidationError as e:
            warn(f"{self.name}: ignoring the unreadable entry of {deployment} ({e})")
            return kind()

    def encode(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self.raw), indent=2) + b"\n"


def load(store: Store, name: str, warn: Callable[[str], None]) -> SettingsFile:
    path = store.paths.root / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return SettingsFile(name)
    except OSError as e:
        warn(f"cannot read {path}: {e.strerror}; going on without it")
        return SettingsFile(name)
    try:
        raw = msgspec.json.decode(data)
        if not isinstance(raw, dict) or not isinstance(raw.get("deployments", {}), dict):
            raise ValueError('expected {"deployments": {...}}')
    except (msgspec.DecodeError, ValueError) as e:
        warn(f"ignoring {path}: it is not valid ({e}); it is kept as a copy when next written")
        return SettingsFile(name, damaged=data)
    return SettingsFile(name, raw)


def save(store: Store, settings: SettingsFile) -> None:
    """Write the file (caller holds store.locked()), keeping a damaged original first."""
    if settings.damaged:
        store.keep_copy(settings.name, settings.damaged)
        settings.damaged = None
    store.write_file(settings.name, settings.encode())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def caps_policy(config: SettingsFile, warn: Callable[[str], None]) -> Callable[[str], Caps]:
    """The store's caps for each deployment, from config.json (defaults where unset)."""
    cache: dict[str, Caps] = {}

    def caps(deployment: str) -> Caps:
        if deployment not in cache:
            c = config.entry(deployment, DeploymentConfig, warn)
            default = Caps()
            try:
                cache[deployment] = Caps(
                    messages=c.history_cap if c.history_cap is not None else default.messages,
                    bytes=c.history_max_bytes if c.history_max_bytes is not None else default.bytes,
                )
            except ValueError:
                warn(f"config.json: the caps of {deployment} are negative; using the defaults")
                cache[deployment] = default
        return cache[deployment]

    return caps


def now_iso_ms() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
