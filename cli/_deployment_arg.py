"""The DEPLOYMENT argument: which deployment `chat` means when it may be left out (the default
deployment), and the shell completion of deployment ids.

The rule for `bai deployment chat [DEPLOYMENT] [MESSAGE]...`, with a default deployment set
($BAI_DEPLOYMENT, else `chat-config default`):
  - the first word is the deployment when bai knows it (it has settings, cache or history) or
    it is a UUID;
  - otherwise every word is the message, sent to the default deployment.
With no default, the first word is always the deployment (as before defaults existed).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ._app import App

ENV = "BAI_DEPLOYMENT"


def default_deployment(app: App) -> str | None:
    """$BAI_DEPLOYMENT (checked like any id), else the one `chat-config default` set."""
    from eventlog._ids import check_deployment_id

    env = os.environ.get(ENV, "").strip()
    if env:
        try:
            return check_deployment_id(env)
        except ValueError as e:
            raise click.UsageError(f"${ENV}: {e}") from None
    return app.settings.default_deployment()


def is_known(app: App, deployment: str) -> bool:
    """Settings, cache or history for the deployment (a UUID counts: Backend.AI may know it)."""
    from eventlog import is_uuid

    if is_uuid(deployment) or app.settings.known(deployment):
        return True
    paths = app.store.paths
    return paths.log(deployment).exists() or paths.legacy_log(deployment).exists() \
        or bool(app.store.conversations(deployment))


def pick(app: App, first: str | None, rest: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """(deployment, message words) from `chat`'s words, by the rule above."""
    from eventlog._ids import canonical_deployment_id, is_valid_deployment_id

    default = default_deployment(app)
    if first is None:
        if default is None:
            raise click.UsageError("no DEPLOYMENT given and no default is set "
                                   "(bai deployment chat-config default ID, or $BAI_DEPLOYMENT)")
        return default, ()
    if default is not None:
        if not (is_valid_deployment_id(first) and is_known(app, canonical_deployment_id(first))):
            return default, (first, *rest)
    try:
        return canonical_deployment_id(first), rest
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'DEPLOYMENT'") from None


def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion: the ids in the settings files and the logs folder. Reads two small
    files and one folder listing, with no store, lock or msgspec; never raises (a completion
    that fails must only complete nothing)."""
    try:
        return sorted(d for d in _ids() if d.startswith(incomplete))
    except Exception:  # noqa: BLE001 - see above
        return []


def _ids() -> set[str]:
    import json

    from eventlog._files import default_root

    root = default_root()
    ids: set[str] = set()
    for name in ("bai/config.json", "config.json", "bai/cache.json"):
        try:
            with open(root / name, "rb") as f:
                doc = json.loads(f.read(1 << 20))
            ids.update(k for k in doc.get("deployments", {}) if isinstance(k, str))
        except Exception:  # noqa: BLE001 - missing, unreadable or not JSON: nothing from it
            pass
    for folder in (root / "bai" / "logs", root / "logs"):
        try:
            with os.scandir(folder) as entries:
                for i, entry in enumerate(entries):
                    if i >= 10_000:
                        break
                    if entry.name.endswith(".jsonl"):
                        ids.add(entry.name[: -len(".jsonl")].partition("~")[0])  # a conversation's deployment
        except OSError:
            pass
    from eventlog._ids import is_valid_deployment_id

    return {d for d in ids if is_valid_deployment_id(d)}
