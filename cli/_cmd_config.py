"""`bai deployment chat-config set|show|clear` and `bai deployment chat-cache show|clear`."""

from __future__ import annotations

import sys

import click

from ._app import App, deployment_id, pass_app
from ._cmd_chat import deadline_seconds

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
@click.argument("deployment", callback=deployment_id)
@click.option("--endpoint", callback=_endpoint, help="Base URL; /v1/chat/completions is appended.")
@click.option("--token", help="Bearer token ('-' asks for it on a terminal, without echo, or reads a line of stdin: out of shell history).")
@click.option("--model", help="Model name to request (default: the server's first model).")
@click.option("--system", help="System prompt sent first on every turn.")
@click.option("--history-limit", type=_count(0), help="Messages replayed as context (default 10).")
@click.option("--history-cap", type=_count(0), help="Messages kept on disk (default 100).")
@click.option("--history-max-bytes", type=_count(0), help="Bytes kept on disk (default 1048576).")
@click.option("--context-window", type=_count(1), help="The model's context size in tokens, if the server does not say.")
@click.option("--deadline", callback=deadline_seconds, metavar="S", help="Seconds one request may take in all (default 900).")
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
    values = {k: clean_arg(v, f"--{k.replace('_', '-')}", _note) if isinstance(v, str) else v for k, v in values.items()}
    changes = {k: (None if v == "" else v) for k, v in values.items() if v is not None}
    if not changes:
        raise click.UsageError("nothing to set: give at least one option")
    app.settings.update_config(deployment, changes)
    click.echo(f"Updated {deployment}: {', '.join(sorted(changes))}.", err=True)


@chat_config.command("show")
@click.argument("deployment", callback=deployment_id)
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
@click.argument("deployment", callback=deployment_id)
@pass_app
def clear(app: App, deployment: str) -> None:
    """Remove all of DEPLOYMENT's settings (history and cache are left alone).

    \b
    Example:
      bai deployment chat-config clear my-llm
    """
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
@click.argument("deployment", callback=deployment_id)
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
@click.argument("deployment", callback=deployment_id)
@pass_app
def cache_clear(app: App, deployment: str) -> None:
    """Forget what is cached for DEPLOYMENT (it is fetched again when needed).

    \b
    Example:
      bai deployment chat-cache clear my-llm
    """
    app.settings.update_cache(deployment, None)
    click.echo(f"Cleared the cache of {deployment}.", err=True)


def _note(text: str) -> None:
    click.echo(f"bai: {text}", err=True)


def _print_entry(deployment: str, entry: dict, as_json: bool, *, unset: str) -> None:
    """One deployment's settings or cache entry: JSON, or aligned `key value` lines."""
    import msgspec

    from .endpoint._text import json_for_terminal, strip_controls  # values learned from a server are shown too

    if as_json:
        click.echo(json_for_terminal(msgspec.json.format(msgspec.json.encode({"deployment": deployment, **entry}),
                                                         indent=2).decode()))
        return

    width = max(map(len, entry)) + 1
    for key, value in entry.items():
        click.echo(f"{key:<{width}} {unset if value is None else strip_controls(str(value))}")
