"""What every command shares: the store, the settings, and how warnings are shown."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import click

if TYPE_CHECKING:  # imported lazily: `bai --help` must not pay for the store and msgspec
    from eventlog import Store

    from . import _settings as settings_t


def use_color() -> bool | None:
    """None lets click decide (colour only on a terminal); NO_COLOR turns it off everywhere."""
    return False if os.environ.get("NO_COLOR") else None


def warn(message: str) -> None:
    click.secho(f"bai: warning: {message}", err=True, fg="yellow", color=use_color())


def note(text: str) -> None:
    click.echo(f"bai: {text}", err=True)


def json_text(doc: object) -> str:
    """`doc` as indented JSON, safe on a terminal: what came from a server may hold control
    characters, and JSON escapes them (the C1 ones too, see endpoint._text)."""
    import msgspec

    from .endpoint._text import json_for_terminal

    return json_for_terminal(msgspec.json.format(msgspec.json.encode(doc), indent=2).decode())


class App:
    def __init__(self) -> None:
        self.warned: set[str] = set()

    def warn_once(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            warn(message)

    @cached_property
    def settings(self) -> settings_t.Settings:
        from . import _settings as settings

        return settings.Settings(self._bare_store, self.warn_once)

    @cached_property
    def _bare_store(self) -> Store:
        from eventlog import Store

        return Store(warn=self.warn_once)

    @cached_property
    def store(self) -> Store:
        from eventlog import Store

        from . import _settings as settings

        return Store(caps=settings.caps_policy(self.settings), warn=self.warn_once)

    def deployment_config(self, deployment: str) -> settings_t.DeploymentConfig:
        return self.settings.config(deployment)

    def cache_entry(self, deployment: str) -> settings_t.CacheEntry:
        return self.settings.cache(deployment)


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



def conversation_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """click callback: a conversation name ("main" or none: the deployment's main one)."""
    if value is None:
        return None
    from eventlog._ids import check_conversation_name  # the rule alone: no store

    try:
        return check_conversation_name(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def confirm(question: str | Callable[[], str], yes: bool) -> None:
    """Ask before destroying saved history, on a terminal only (scripts and pipes are not
    asked: they would hang or read their input as the answer); `yes` skips it. A no is exit 1.
    A question that costs something to word may be given as a function."""
    import sys

    if yes or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return
    if not click.confirm(question if isinstance(question, str) else question(), default=False, err=True):
        raise click.ClickException("cancelled: nothing was changed")


def require_known(app: App, deployment: str) -> None:
    """A deployment nothing is saved or set for is most likely a typo: one line, exit 1."""
    store = app.store
    # cheapest first: the log (one stat) is there for nearly every deployment asked about
    if store.paths.log(deployment).exists() or store.conversations(deployment) or app.settings.known(deployment) \
            or store.rounds(deployment):
        return
    raise click.ClickException(f"no deployment {deployment}: nothing is saved or set for it "
                               "(bai deployment chat-history list shows the deployments with history)")


def require_conversation(app: App, deployment: str, conversation: str | None) -> None:
    if conversation is None or conversation in app.store.conversations(deployment):
        return
    names = ", ".join(app.store.conversations(deployment)) or "none besides the main one"
    raise click.ClickException(f"{deployment} has no conversation {conversation} (its conversations: {names})")
