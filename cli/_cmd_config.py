"""`bai deployment chat-config set|show|clear` and `bai deployment chat-cache show|clear`."""

from __future__ import annotations

import sys

import click

from ._app import App, deployment_id, json_text, note, pass_app
from ._cmd_chat import deadline_seconds
from ._deployment_arg import complete

MASK = "********"


class Unsettable(click.ParamType):
    """`inner`, or "" to unset the setting (for numbers too: `--history-cap ""`)."""

    def __init__(self, inner: click.ParamType) -> None:
        self.inner = inner
        self.name = inner.name

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if value == "":
            return ""
        return self.inner.convert(value, param, ctx)

    def get_metavar(self, param: click.Parameter, *args: object, **kwargs: object) -> str | None:
        return self.inner.get_metavar(param, *args, **kwargs)  # type: ignore[arg-type]


def _count(minimum: int) -> Unsettable:
    return Unsettable(click.IntRange(min=minimum))


def _endpoint(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL")
    return value


@click.group("chat-config")
def chat_config() -> None:
    """Per-deployment settings: endpoint, token, model, system prompt, history limit and caps.

    \b
    Example:
      bai deployment chat-config set my-llm --endpoint https://llm.example.com --token -
      bai deployment chat-config show my-llm
    """


@chat_config.command("set")
@click.argument("deployment", callback=deployment_id, shell_complete=complete)
@click.option("--endpoint", callback=_endpoint, help="Base URL; /v1/chat/completions is appended.")
@click.option("--token", help="Bearer token ('-' asks for it on a terminal, without echo, or reads a line of stdin: out of shell history).")
@click.option("--token-env", metavar="NAME", callback=lambda c, p, v: _variable_name(v), help="Take the token from environment variable NAME at each call (only the name is stored).")
@click.option("--model", help="Model name to request (default: the server's first model).")
@click.option("--system", help="System prompt sent first on every turn.")
@click.option("--history-limit", type=_count(0), help="Messages replayed as context (default 10).")
@click.option("--history-cap", type=_count(0), help="Messages kept on disk (default 100).")
@click.option("--history-max-bytes", type=_count(0), help="Bytes kept on disk (default 1048576).")
@click.option("--context-window", type=_count(1), help="The model's context size in tokens, if the server does not say.")
@click.option("--deadline", callback=deadline_seconds, metavar="S", help="Seconds one request may take in all (default 900).")
@click.option("--reasoning", type=Unsettable(click.Choice(["show", "hide"])), help="Show a reasoning model's thinking (on stderr) or hide it (default: show it only when stderr is a terminal).")
@pass_app
def set_(app: App, deployment: str, **values: object) -> None:
    """Set DEPLOYMENT's settings; an empty value ("") unsets one, numbers included.

    \b
    Example:
      bai deployment chat-config set my-llm --model llama-3-8b --history-limit 20
      bai deployment chat-config set my-llm --system ""        # unset the system prompt
      bai deployment chat-config set my-llm --history-cap ""   # back to the default cap
    """
    from ._input import clean_arg, exact_arg, read_token

    if values.get("token") == "-":
        values["token"] = read_token(sys.stdin)
    if isinstance(values.get("token"), str):
        exact_arg(values["token"], "--token")  # type: ignore[arg-type]
    values = {k: clean_arg(v, f"--{k.replace('_', '-')}", note) if isinstance(v, str) else v for k, v in values.items()}
    changes = {k: (None if v == "" else v) for k, v in values.items() if v is not None}
    if not changes:
        raise click.UsageError("nothing to set: give at least one option")
    lowered = _cap_effect(app, deployment, changes) if {"history_cap", "history_max_bytes"} & set(changes) else None
    app.settings.update_config(deployment, changes)
    click.echo(f"Updated {deployment}: {', '.join(sorted(changes))}.", err=True)
    if lowered:
        click.echo(f"bai: {lowered}", err=True)


def _variable_name(value: str | None) -> str | None:
    import re

    if value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", value):
        raise click.BadParameter(f"{value!r} is not an environment variable name (the name, not the token)")
    return value


def _cap_effect(app: App, deployment: str, changes: dict) -> str | None:
    """What new caps do to the saved history, said before it happens quietly: the rounds over
    them are hidden at once and leave the disk at the next save or compaction."""
    from eventlog import Caps, Store, stream_id

    current = app.deployment_config(deployment)
    default = Caps()

    def value(key: str, fallback: int) -> int:
        v = changes[key] if key in changes else getattr(current, key)
        return fallback if v is None else v

    try:
        new = Caps(messages=value("history_cap", default.messages), bytes=value("history_max_bytes", default.bytes))
        capped = Store(caps=new, warn=app.warn_once)
        streams = [stream_id(deployment, name) for name in [None, *app.store.conversations(deployment)]]
        shown = sum(2 * len(app.store.rounds(s)) for s in streams)  # each conversation is capped alike
        kept = sum(2 * len(capped.rounds(s)) for s in streams)
    except Exception:  # noqa: BLE001 - a note only: an unreadable log is reported by the commands that read it
        return None
    if kept >= shown:
        return None
    where = f" (in its {len(streams)} conversations)" if len(streams) > 1 else ""
    return (f"the new cap keeps {kept} of the {shown} saved message(s){where}: the oldest {shown - kept} are no "
            f"longer replayed or shown, and leave the disk at the next save or compaction")


@chat_config.command("default")
@click.argument("deployment", required=False, shell_complete=complete)
@click.option("--unset", is_flag=True, help="Clear the default deployment.")
@pass_app
def default(app: App, deployment: str | None, unset: bool) -> None:
    """Set the deployment `chat` uses when none is named; with no ID, print it. $BAI_DEPLOYMENT,
    when set, wins over it. With a default, `chat`'s first word is the deployment only if bai
    knows it (settings, cache or history) or it is a UUID; otherwise every word is the message.

    \b
    Example:
      bai deployment chat-config default my-llm
      bai deployment chat "Hello!"                 # to my-llm
      bai deployment chat-config default --unset   # or: default ""
    """
    import os

    from ._deployment_arg import ENV

    if unset or deployment == "":
        if deployment:
            raise click.UsageError("give an ID or --unset (not both)")
        app.settings.set_default_deployment(None)
        click.echo("Cleared the default deployment.", err=True)
        return
    if deployment is None:
        current = app.settings.default_deployment()
        env = os.environ.get(ENV, "").strip()
        if env:
            click.echo(env)
            click.echo(f"bai: from ${ENV}" + (f" (the configured default is {current})" if current else ""), err=True)
        elif current:
            click.echo(current)
        else:
            click.echo("No default deployment is set.", err=True)
        return
    deployment = deployment_id(click.get_current_context(), None, deployment)  # type: ignore[arg-type]
    app.settings.set_default_deployment(deployment)
    click.echo(f"The default deployment is {deployment}.", err=True)


@chat_config.command("list")
@click.option("--json", "as_json", is_flag=True, help="One object per deployment (the token: only whether one is set).")
@pass_app
def list_(app: App, as_json: bool) -> None:
    """List every deployment with settings: endpoint, model, and whether a token is set.

    \b
    Example:
      bai deployment chat-config list --json
    """
    import msgspec

    from .endpoint._text import strip_controls

    rows = []
    for d in app.settings.configured():
        c = app.deployment_config(d)
        token = f"env {c.token_env}" if c.token_env else ("yes" if c.token else "no")
        rows.append({"deployment": d, "endpoint": c.endpoint, "model": c.model, "token": token})
    default = app.settings.default_deployment()
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(
            [{**r, "token": r["token"] != "no", "token_env": app.deployment_config(r["deployment"]).token_env,
              "default": r["deployment"] == default} for r in rows]), indent=2))
        return
    if not rows:
        click.echo("No deployment has settings.", err=True)
        return
    table = [("DEPLOYMENT", "ENDPOINT", "MODEL", "TOKEN")] + [
        (r["deployment"] + (" *" if r["deployment"] == default else ""), strip_controls(r["endpoint"] or "-"),
         strip_controls(r["model"] or "-"), r["token"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])
    if default in {r["deployment"] for r in rows}:
        click.echo("(* the default deployment)", err=True)


@chat_config.command("show")
@click.argument("deployment", callback=deployment_id, shell_complete=complete)
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON (token masked).")
@pass_app
def show(app: App, deployment: str, as_json: bool) -> None:
    """Show DEPLOYMENT's settings (the token is masked). A deployment bai knows nothing of
    (no settings, cache or history: a mistyped id, most likely) is an error.

    \b
    Example:
      bai deployment chat-config show my-llm --json
    """
    import msgspec

    if not app.settings.known(deployment) and not app.store.rounds(deployment):
        raise click.ClickException(f"bai knows no deployment {deployment} (no settings, cache or history); "
                                   f"set it up with: bai deployment chat-config set {deployment} --endpoint URL")
    config = msgspec.structs.asdict(app.deployment_config(deployment))
    if config["token"]:
        config["token"] = MASK  # never the token, nor its length
    _print_entry(deployment, config, as_json, unset="(not set)")


@chat_config.command("clear")
@click.argument("deployment", callback=deployment_id, shell_complete=complete)
@click.option("-y", "--yes", is_flag=True, help="Do not ask first (it asks only on a terminal).")
@pass_app
def clear(app: App, deployment: str, yes: bool) -> None:
    """Remove all of DEPLOYMENT's settings, its token too (history and cache are left alone).
    Asks first on a terminal.

    \b
    Example:
      bai deployment chat-config clear my-llm --yes
    """
    from ._app import confirm

    if app.settings.known(deployment):
        confirm(f"Remove every setting of {deployment}, its token too?", yes)
    app.settings.update_config(deployment, None)
    click.echo(f"Removed the settings of {deployment}.", err=True)


@click.group("chat-cache")
def chat_cache() -> None:
    """The endpoint metadata bai keeps by itself (default model, context size), refreshed after 24 h.

    \b
    Example:
      bai deployment chat-cache show my-llm
      bai deployment chat-cache clear my-llm     # fetched again on the next chat
    """


@chat_cache.command("show")
@click.argument("deployment", callback=deployment_id, shell_complete=complete)
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
@pass_app
def cache_show(app: App, deployment: str, as_json: bool) -> None:
    """Show what is cached for DEPLOYMENT.

    \b
    Example:
      bai deployment chat-cache show my-llm --json
    """
    import msgspec

    entry = app.cache_entry(deployment)
    doc = msgspec.structs.asdict(entry)
    doc["backend_ai_endpoint_url"] = app.settings.backend_ai_endpoint(deployment)
    fresh = entry.is_fresh()
    if as_json:
        doc["fresh"] = fresh
    else:
        doc["fresh"] = "yes" if fresh else "no (refreshed on the next chat)"
    _print_entry(deployment, doc, as_json, unset="(none)")


@chat_cache.command("clear")
@click.argument("deployment", callback=deployment_id, shell_complete=complete)
@pass_app
def cache_clear(app: App, deployment: str) -> None:
    """Forget what is cached for DEPLOYMENT (it is fetched again when needed).

    \b
    Example:
      bai deployment chat-cache clear my-llm
    """
    app.settings.update_cache(deployment, None)
    click.echo(f"Cleared the cache of {deployment}.", err=True)


def _print_entry(deployment: str, entry: dict, as_json: bool, *, unset: str) -> None:
    """One deployment's settings or cache entry: JSON, or aligned `key value` lines."""
    from .endpoint._text import strip_controls  # values learned from a server are shown too

    if as_json:
        click.echo(json_text({"deployment": deployment, **entry}))
        return

    width = max(map(len, entry)) + 1
    for key, value in entry.items():
        click.echo(f"{key:<{width}} {unset if value is None else strip_controls(str(value))}")
