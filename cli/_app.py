"""What every command shares: the store, the two settings files, and how warnings are shown."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # imported lazily: `bai --help` must not pay for the store and msgspec
    from eventlog import Store

    from . import _settings as settings_t


def use_color() -> bool | None:
    """None lets click decide (colour only on a terminal); NO_COLOR turns it off everywhere."""
    return False if os.environ.get("NO_COLOR") else None


def warn(message: str) -> None:
    click.secho(f"bai: warning: {message}", err=True, fg="yellow", color=use_color())


class App:
    def __init__(self) -> None:
        self.warned: set[str] = set()

    def warn_once(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            warn(message)

    @cached_property
    def config(self) -> settings_t.SettingsFile:
        from . import _settings as settings

        return settings.load(self._bare_store, settings.CONFIG, self.warn_once)

    @cached_property
    def cache(self) -> settings_t.SettingsFile:
        from . import _settings as settings

        return settings.load(self._bare_store, settings.CACHE, self.warn_once)

    @cached_property
    def _bare_store(self) -> Store:
        from eventlog import Store

        return Store(warn=self.warn_once)

    @cached_property
    def store(self) -> Store:
        from eventlog import Store

        from . import _settings as settings

        return Store(caps=settings.caps_policy(self.config, self.warn_once), warn=self.warn_once)

    def deployment_config(self, deployment: str) -> settings_t.DeploymentConfig:
        from . import _settings as settings

        return self.config.entry(deployment, settings.DeploymentConfig, self.warn_once)

    def cache_entry(self, deployment: str) -> settings_t.CacheEntry:
        from . import _settings as settings

        return self.cache.entry(deployment, settings.CacheEntry, self.warn_once)

    def update(self, name: str, deployment: str, changes: dict[str, Any] | None) -> None:
        """Read-modify-write one deployment's entry of config.json or cache.json under the lock.
        `changes` None removes the entry; a value None removes that key."""
        from . import _settings as settings

        with self._bare_store.locked():
            current = settings.load(self._bare_store, name, self.warn_once)  # re-read under the lock
            entries = current.deployments
            if changes is None:
                entries.pop(deployment, None)
            else:
                entry = dict(entries.get(deployment) or {}) if isinstance(entries.get(deployment), dict) else {}
                for key, value in changes.items():
                    if value is None:
                        entry.pop(key, None)
                    else:
                        entry[key] = value
                entries[deployment] = entry
            settings.save(self._bare_store, current)
        self.__dict__.pop("config" if name == settings.CONFIG else "cache", None)


def deployment_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """click callback: a deployment id that breaks the rule is a usage error before any file is touched."""
    if value is None:
        return None
    from eventlog._ids import check_deployment_id  # the rule alone: no store, no msgspec

    try:
        return check_deployment_id(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


pass_app = click.make_pass_decorator(App, ensure=True)

