"""One JSON settings file of the store: `{"deployments": {"<id>": {...}}}`, read leniently.

A file that is not valid (bad JSON, nested too deeply, not an object) is a one-line warning
and counts as empty; before it is next replaced, its bytes are kept aside (bai/kept), so nothing
the user wrote is lost. A file that cannot be read at all (no permission, a FIFO, a folder) is a
warning too, but is never replaced: what bai could not keep, it does not overwrite. A link is
read through, and never written through (the store refuses). Keys this version does not know
are kept as they are when the file is rewritten.
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec

from eventlog import Store, StoreError
from eventlog._text import scrub_tree

Warn = Callable[[str], None]


class SettingsFile(msgspec.Struct):
    name: str  # relative to the store's root: "config.json", "bai/config.json"
    raw: dict[str, Any] = {}  # the whole document
    damaged: bytes | None = None  # the original bytes when they could not be read
    unreadable: Exception | None = None  # why the file could not be read at all: it is not replaced

    @property
    def deployments(self) -> dict[str, Any]:
        entries = self.raw.setdefault("deployments", {})
        return entries

    def entry(self, deployment: str) -> dict[str, Any]:
        """The deployment's entry as a dict ({} if none, or not an object)."""
        value = self.deployments.get(deployment)
        return value if isinstance(value, dict) else {}

    def typed(self, deployment: str, kind: type, warn: Warn) -> Any:
        try:
            return msgspec.convert(self.entry(deployment), kind)
        except msgspec.ValidationError as e:
            warn(f"{self.name}: ignoring the unreadable entry of {deployment} ({e})")
            return kind()

    def update(self, deployment: str, changes: dict[str, Any] | None) -> None:
        """`changes` None removes the entry; a value None removes that key; an entry left
        empty is removed."""
        if changes is None:
            self.deployments.pop(deployment, None)
            return
        entry = dict(self.entry(deployment))
        for key, value in changes.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
        if entry:
            self.deployments[deployment] = entry
        else:
            self.deployments.pop(deployment, None)

    def encode(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(scrub_tree(self.raw)), indent=2) + b"\n"


def load(store: Store, name: str, warn: Warn) -> SettingsFile:
    path = store.paths.root / name
    try:
        data = store.read_file(name)
    except StoreError as e:
        warn(f"{e}; going on without it")
        return SettingsFile(name, unreadable=e)
    if data is None:
        return SettingsFile(name)
    try:
        raw = msgspec.json.decode(data)
        if not isinstance(raw, dict) or not isinstance(raw.get("deployments", {}), dict):
            raise ValueError('expected {"deployments": {...}}')
    except (msgspec.DecodeError, ValueError) as e:
        warn(f"ignoring {path}: it is not valid ({e}); it is kept as a copy when next written")
        return SettingsFile(name, damaged=data)
    except RecursionError:  # msgspec's limit, about a thousand levels: no settings file nests so deep
        warn(f"ignoring {path}: it is nested too deeply to be a settings file; it is kept as a copy when next written")
        return SettingsFile(name, damaged=data)
    return SettingsFile(name, raw)


def save(store: Store, settings: SettingsFile) -> None:
    """Write the file (caller holds store.locked()), keeping a damaged original first. A file
    that could not be read is not replaced: its error is raised again."""
    if settings.unreadable is not None:
        raise StoreError(f"{settings.unreadable}; {settings.name} is left as it is, nothing was changed")
    if settings.damaged:
        store.keep_copy(settings.name, settings.damaged)
        settings.damaged = None
    store.write_file(settings.name, settings.encode())
