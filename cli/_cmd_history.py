"""`bai deployment chat-history show|list|clear|compact`."""

from __future__ import annotations

import click

from ._app import App, deployment_id, pass_app, use_color


@click.group("chat-history")
def chat_history() -> None:
    """Inspect and reset the saved conversations.

    \b
    Example:
      bai deployment chat-history show my-llm --limit 6
      bai deployment chat-history clear my-llm
    """


@chat_history.command("show")
@click.argument("deployment", callback=deployment_id)
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Only the newest N messages.")
@click.option("--json", "as_json", is_flag=True, help='Print {"deployment", "messages": [{role, content, created_at}]} (and "reasoning", where recorded).')
@click.option("--reasoning", is_flag=True, help="Also print the model's reasoning, where recorded, before its answer.")
@pass_app
def show(app: App, deployment: str, limit: int | None, as_json: bool, reasoning: bool) -> None:
    """Show DEPLOYMENT's saved conversation, oldest first.

    \b
    Example:
      bai deployment chat-history show my-llm --json | jq '.messages[-1].content'
    """
    import msgspec

    # Saved as the server sent it; shown without terminal control sequences (JSON escapes them).
    from .endpoint._text import json_for_terminal, strip_controls

    messages = app.store.history(deployment)
    if limit is not None:
        messages = messages[max(len(messages) - limit, 0) :] if limit else []
    # history.json (and so `history`) has no reasoning: it is in bai's log only, by round
    thoughts = {r.seq: r.reasoning for r in app.store.rounds(deployment) if r.reasoning} if reasoning or as_json else {}
    if as_json:
        doc = {"deployment": deployment, "messages": [
            {"role": m.role, "content": m.content, "created_at": m.created_at,
             **({"reasoning": thoughts[m.seq]} if m.role == "assistant" and m.seq in thoughts else {})}
            for m in messages]}
        click.echo(json_for_terminal(msgspec.json.format(msgspec.json.encode(doc), indent=2).decode()))
        return
    if not messages:
        click.echo(f"No saved history for {deployment}.", err=True)
        return
    color = use_color()
    for m in messages:
        who = "you" if m.role == "user" else strip_controls(m.model or "assistant")
        when = strip_controls((m.created_at or "")[:19].replace("T", " "))
        note = ", cut at max tokens" if m.finish_reason == "length" else ""
        click.secho(f"--- {who} · {when}{note}", fg="cyan" if m.role == "user" else "green", color=color)
        if m.role == "assistant" and m.seq in thoughts:
            thought = strip_controls(thoughts[m.seq]).rstrip("\n")
            click.secho(f"thinking…\n{thought}\n…done thinking", dim=True, color=color)
        click.echo(strip_controls(m.content))


@chat_history.command("list")
@click.option("--json", "as_json", is_flag=True, help="One object per deployment.")
@pass_app
def list_(app: App, as_json: bool) -> None:
    """List deployments with saved history: messages, bytes on disk, first and last time.

    \b
    Example:
      bai deployment chat-history list --json
    """
    import msgspec

    rows = app.store.deployments()
    if as_json:
        doc = [{"deployment": r.deployment, "messages": r.messages, "bytes": r.bytes,
                "first_at": r.first_at, "last_at": r.last_at} for r in rows]
        click.echo(msgspec.json.format(msgspec.json.encode(doc), indent=2))
        return
    if not rows:
        click.echo("No saved history.", err=True)
        return
    width = max(len("DEPLOYMENT"), *(len(r.deployment) for r in rows))
    click.echo(f"{'DEPLOYMENT':<{width}}  MESSAGES     BYTES  LAST")
    for r in rows:
        click.echo(f"{r.deployment:<{width}}  {r.messages:>8}  {r.bytes:>8}  {(r.last_at or '')[:19].replace('T', ' ')}")


@chat_history.command("clear")
@click.argument("deployment", required=False, callback=deployment_id)
@click.option("--all", "all_", is_flag=True, help="Clear every deployment's history.")
@pass_app
def clear(app: App, deployment: str | None, all_: bool) -> None:
    """Forget DEPLOYMENT's conversation (config and cache are left alone).

    \b
    Example:
      bai deployment chat-history clear my-llm
      bai deployment chat-history clear --all
    """
    if bool(deployment) == all_:
        raise click.UsageError("give a DEPLOYMENT or --all (not both)")
    removed = app.store.clear_all() if all_ else app.store.clear(deployment)  # type: ignore[arg-type]
    what = "all deployments" if all_ else deployment
    click.echo(f"Cleared {what}: {removed} message(s) removed.", err=True)


@chat_history.command("compact")
@click.argument("deployment", required=False, callback=deployment_id)
@pass_app
def compact(app: App, deployment: str | None) -> None:
    """Rewrite the logs under their caps and rebuild history.json (maintenance; runs by itself too).

    \b
    Example:
      bai deployment chat-config set my-llm --history-cap 20
      bai deployment chat-history compact my-llm
    """
    app.store.compact(deployment)
    click.echo("Compacted.", err=True)
