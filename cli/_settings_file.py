"""One JSON settings file of the store: `{"deployments": {"<id>": {...}}}`, read leniently.

A file that cannot be read is a one-line warning and counts as empty; before it is next
replaced, its bytes are kept aside (bai/kept), so nothing the user wrote is lost. Keys this
version does not know are kept as they are when the file is rewritten.
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec

from eventlog import Store

Warn = Callable[[str], None]


class SettingsFile(msgspec.Struct):
    name: str  # relative to the store's root: "config.json", "bai/config.json"
    raw: dict[str, Any] = {}  # the whole document
    damaged: bytes | None = None  # the original bytes when they could not be read

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
        return msgspec.json.format(msgspec.json.encode(self.raw), indent=2) + b"\n"


def load(store: Store, name: str, warn: Warn) -> SettingsFile:
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
