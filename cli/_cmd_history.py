"""`bai deployment chat-history show|list|export|search|clear|compact`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ._app import (
    App, confirm, conversation_name, deployment_id, json_text, pass_app, require_conversation, require_known, use_color,
)
from ._deployment_arg import complete

if TYPE_CHECKING:
    from eventlog import Message

CONVERSATION_HELP = "A conversation besides the deployment's main one (main: the main one)."


@click.group("chat-history")
def chat_history() -> None:
    """Inspect, export, search and reset the saved conversations.

    \b
    Example:
      bai deployment chat-history list
      bai deployment chat-history show my-llm --limit 6
      bai deployment chat-history export my-llm --format markdown > chat.md
      bai deployment chat-history search "prime numbers"
      bai deployment chat-history clear my-llm
    """


def _message_doc(m: Message, thoughts: dict[int, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"role": m.role, "content": m.content, "created_at": m.created_at}
    if m.role == "assistant":
        doc["model"] = m.model
        doc["finish_reason"] = m.finish_reason  # "length": the answer was cut short
        if thoughts and m.seq in thoughts:
            doc["reasoning"] = thoughts[m.seq]
    return doc


def _conversation_doc(deployment: str, conversation: str | None, messages: list[Message],
                      thoughts: dict[int, str] | None = None) -> dict[str, Any]:
    return {"deployment": deployment, "conversation": conversation or "main",
            "messages": [_message_doc(m, thoughts) for m in messages]}


def _stream(app: App, deployment: str, conversation: str | None) -> str:
    from eventlog import stream_id

    require_known(app, deployment)
    require_conversation(app, deployment, conversation)
    return stream_id(deployment, conversation)


@chat_history.command("show")
@click.argument("deployment", callback=deployment_id, shell_complete=complete)
@click.option("-c", "--conversation", callback=conversation_name, metavar="NAME", help=CONVERSATION_HELP)
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Only the newest N messages.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"deployment", "conversation", "messages": [{role, content, created_at, model, finish_reason}]} '
                   '(and "reasoning", where recorded).')
@click.option("--reasoning", is_flag=True, help="Also print the model's reasoning, where recorded, before its answer.")
@pass_app
def show(app: App, deployment: str, conversation: str | None, limit: int | None, as_json: bool, reasoning: bool) -> None:
    """Show DEPLOYMENT's saved conversation, oldest first.

    \b
    Example:
      bai deployment chat-history show my-llm --json | jq '.messages[-1].content'
      bai deployment chat-history show my-llm --conversation work
    """
    # Saved as the server sent it; shown without terminal control sequences (JSON escapes them).
    from .endpoint._text import strip_controls

    from eventlog._projection import messages_of_round

    rounds = app.store.rounds(_stream(app, deployment, conversation))
    messages = [m for r in rounds for m in messages_of_round(r)]  # as Store.history, from the one read
    if limit is not None:
        messages = messages[max(len(messages) - limit, 0) :] if limit else []
    # the messages (history.json's shape) carry no reasoning: it is in bai's log only, by round
    thoughts = {r.seq: r.reasoning for r in rounds if r.reasoning} if reasoning or as_json else {}
    if as_json:
        doc = _conversation_doc(deployment, conversation, messages, thoughts)
        click.echo(json_text(doc))
        return
    if not messages:
        click.echo(f"No saved history for {deployment}" + (f", conversation {conversation}." if conversation else "."), err=True)
        return
    color = use_color()
    for m in messages:
        who = "you" if m.role == "user" else strip_controls(m.model or "assistant")
        when = strip_controls((m.created_at or "")[:19].replace("T", " "))
        note = ", cut short (finish_reason: length)" if m.finish_reason == "length" else ""
        click.secho(f"--- {who} · {when}{note}", fg="cyan" if m.role == "user" else "green", color=color)
        if m.role == "assistant" and m.seq in thoughts:
            thought = strip_controls(thoughts[m.seq]).rstrip("\n")
            click.secho(f"thinking…\n{thought}\n…done thinking", dim=True, color=color)
        click.echo(strip_controls(m.content))


def _time(stamp: str | None) -> str:
    return (stamp or "")[:19].replace("T", " ")


@chat_history.command("list")
@click.option("--json", "as_json", is_flag=True, help="One object per conversation.")
@pass_app
def list_(app: App, as_json: bool) -> None:
    """List the conversations with saved history: deployment, conversation (main: the one
    Backend.AI shares), messages, bytes on disk, first and last time.

    \b
    Example:
      bai deployment chat-history list --json
    """

    rows = app.store.deployments()
    if as_json:
        doc = [{"deployment": r.deployment_id, "conversation": r.conversation or "main", "messages": r.messages,
                "bytes": r.bytes, "first_at": r.first_at, "last_at": r.last_at} for r in rows]
        click.echo(json_text(doc))
        return
    if not rows:
        click.echo("No saved history.", err=True)
        return
    width = max(len("DEPLOYMENT"), *(len(r.deployment_id) for r in rows))
    cwidth = max(len("CONVERSATION"), *(len(r.conversation or "main") for r in rows))
    click.echo(f"{'DEPLOYMENT':<{width}}  {'CONVERSATION':<{cwidth}}  MESSAGES     BYTES  {'FIRST':<19}  LAST")
    for r in rows:
        click.echo(f"{r.deployment_id:<{width}}  {r.conversation or 'main':<{cwidth}}  {r.messages:>8}  {r.bytes:>8}  "
                   f"{_time(r.first_at):<19}  {_time(r.last_at)}")


@chat_history.command("export")
@click.argument("deployment", callback=deployment_id, shell_complete=complete)
@click.option("-c", "--conversation", callback=conversation_name, metavar="NAME", help=CONVERSATION_HELP)
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file (default: stdout).")
@pass_app
def export(app: App, deployment: str, conversation: str | None, fmt: str, output: str | None) -> None:
    """Write DEPLOYMENT's saved conversation as Markdown or JSON, oldest first (terminal control
    sequences from the server removed; JSON escapes them).

    \b
    Example:
      bai deployment chat-history export my-llm > chat.md
      bai deployment chat-history export my-llm --conversation work --format json -o work.json
    """

    from .endpoint._text import strip_controls

    messages = app.store.history(_stream(app, deployment, conversation))
    # Without terminal control sequences, as everything bai prints from a server: `cat chat.md`
    # must not let a saved answer retitle the terminal or write the clipboard (JSON escapes them).
    if fmt == "json":
        text = json_text(_conversation_doc(deployment, conversation, messages)) + "\n"
    else:
        text = strip_controls(as_markdown(deployment, conversation, messages))
    if output is None:
        click.echo(text, nl=False)
        return
    with click.open_file(output, "w", encoding="utf-8", atomic=True) as f:
        f.write(text)
    click.echo(f"Wrote {len(messages)} message(s) to {click.format_filename(output)}.", err=True)


def as_markdown(deployment: str, conversation: str | None, messages: list[Message]) -> str:
    title = f"# {deployment}" + (f" · {conversation}" if conversation else "")
    parts = [title, ""]
    for m in messages:
        who = "You" if m.role == "user" else (m.model or "Assistant")
        cut = " (cut short)" if m.finish_reason == "length" else ""
        parts += [f"## {who} · {_time(m.created_at)}{cut}", "", m.content, ""]
    return "\n".join(parts)


@chat_history.command("search")
@click.argument("text")
@click.option("--deployment", "only", callback=deployment_id, metavar="ID", help="Only this deployment's conversations.")
@click.option("--json", "as_json", is_flag=True, help="One object per message found.")
@pass_app
def search(app: App, text: str, only: str | None, as_json: bool) -> None:
    """Find saved messages holding TEXT (case does not matter), in every conversation.

    \b
    Example:
      bai deployment chat-history search "capital of France"
    """

    from eventlog import split_stream_id
    from eventlog._projection import messages_of_round

    from .endpoint._text import one_line

    needle = text.casefold()
    if not needle.strip():
        raise click.UsageError("TEXT is empty")
    found = []
    for stream, rounds in app.store.every_history():  # a damaged slot is left out with a warning
        deployment, conversation = split_stream_id(stream)
        if only is not None and deployment != only:
            continue
        for m in (m for r in rounds for m in messages_of_round(r)):
            at = m.content.casefold().find(needle)
            if at >= 0:
                found.append((deployment, conversation, m, at))
    if as_json:
        doc = [{"deployment": d, "conversation": c or "main", **_message_doc(m)} for d, c, m, _ in found]
        click.echo(json_text(doc))
        return
    if not found:
        click.echo(f"Nothing saved holds {text!r}.", err=True)
        raise click.exceptions.Exit(1)  # as grep: found nothing
    color = use_color()
    for d, c, m, at in found:
        where = d + (f" · {c}" if c else "")
        who = "you" if m.role == "user" else (m.model or "assistant")
        start = max(at - 40, 0)
        snippet = ("…" if start else "") + m.content[start : at + len(text) + 60] + ("…" if at + len(text) + 60 < len(m.content) else "")
        click.secho(f"{where} · {_time(m.created_at)} · {one_line(who, 60)}", fg="cyan", color=color)
        click.echo(f"  {one_line(snippet, 200)}")


@chat_history.command("clear")
@click.argument("deployment", required=False, callback=deployment_id, shell_complete=complete)
@click.option("-c", "--conversation", callback=conversation_name, metavar="NAME", help=CONVERSATION_HELP)
@click.option("--all", "all_", is_flag=True, help="Clear every deployment's history, every conversation.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask first (it asks only on a terminal).")
@pass_app
def clear(app: App, deployment: str | None, conversation: str | None, all_: bool, yes: bool) -> None:
    """Forget DEPLOYMENT's main conversation, or one named with --conversation, which is then
    gone (settings and cache are left alone). Asks first on a terminal.

    \b
    Example:
      bai deployment chat-history clear my-llm
      bai deployment chat-history clear my-llm --conversation work --yes
      bai deployment chat-history clear --all
    """
    from ._input_history import forget_typed

    if bool(deployment) == all_ or (all_ and conversation):
        raise click.UsageError("give a DEPLOYMENT (and maybe --conversation) or --all")
    store = app.store
    if all_:
        def question() -> str:  # counted only when it is asked
            rows = store.deployments()
            return f"Forget every saved conversation ({sum(r.messages for r in rows)} message(s) in {len(rows)})?"

        confirm(question, yes)
        removed = store.clear_all()
        forget_typed(store.paths, None)
        click.echo(f"Cleared all deployments: {removed} message(s) removed.", err=True)
        return
    assert deployment is not None
    stream = _stream(app, deployment, conversation)
    what = deployment + (f", conversation {conversation}" if conversation else "")
    typed = [m.content for m in store.history(stream) if m.role == "user"]
    confirm(f"Forget the {len(typed)} saved round(s) of {what}?", yes)
    removed = store.clear(stream)
    forget_typed(store.paths, typed)
    others = len(store.conversations(deployment)) if conversation is None else 0
    kept = f"; its {others} other conversation(s) are kept (--conversation NAME)" if others else ""
    click.echo(f"Cleared {what}: {removed} message(s) removed{kept}.", err=True)


@chat_history.command("compact")
@click.argument("deployment", required=False, callback=deployment_id, shell_complete=complete)
@pass_app
def compact(app: App, deployment: str | None) -> None:
    """Rewrite the logs under their caps and rebuild history.json (maintenance; runs by itself
    too). With DEPLOYMENT: its conversations only.

    \b
    Example:
      bai deployment chat-config set my-llm --history-cap 20
      bai deployment chat-history compact my-llm
    """
    if deployment is None:
        app.store.compact()
    else:
        from eventlog import stream_id

        require_known(app, deployment)
        for name in [None, *app.store.conversations(deployment)]:
            app.store.compact(stream_id(deployment, name))
    click.echo("Compacted.", err=True)
