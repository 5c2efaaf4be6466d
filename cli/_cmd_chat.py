"""`bai deployment chat ID [MESSAGE]...`: thin: parse, call `_chat.run_chat`, exit."""

from __future__ import annotations

import sys

import click

from . import _cursor
from ._app import App, conversation_name, note, pass_app
from ._deployment_arg import complete
from ._input import Seconds, clean_arg, exact_arg


def _text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A text option with bytes that are not UTF-8 replaced, and a note (see _input)."""
    return None if value is None else clean_arg(value, f"--{param.name}", note)


def _exact(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A value used as typed (a token): bytes that are not UTF-8 are a usage error."""
    return None if value is None else exact_arg(value, f"--{param.name}")


def _params(ctx: click.Context, param: click.Parameter, value: str | None) -> dict:
    if value is None:
        return {}
    import msgspec

    value = clean_arg(value, "--params", note)
    try:
        doc = msgspec.json.decode(value)
    except msgspec.DecodeError as e:
        raise click.BadParameter(f"not valid JSON ({e})") from None
    except RecursionError:  # msgspec stops at about a thousand levels
        raise click.BadParameter("nested too deeply: request fields are a flat JSON object") from None
    if not isinstance(doc, dict):
        raise click.BadParameter('must be a JSON object, e.g. \'{"temperature": 0.2}\'')
    return doc


def deadline_seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | str | None:
    """click callback: seconds for a whole request, positive and finite ("" passes through: unset)."""
    if value is None or value == "":
        return value
    try:
        seconds = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_DEADLINE:  # also refuses nan and inf
        raise click.BadParameter(f"{value!r} is not between 0 and {MAX_DEADLINE:g} seconds (a week)")
    return seconds


MAX_DEADLINE = 7 * 24 * 3600.0  # as cli.endpoint._limits.MAX_DEADLINE (not imported: --help stays light)


@click.command("chat")
@click.argument("deployment", required=False, shell_complete=complete)
@click.argument("message", nargs=-1)
@click.option("-c", "--conversation", callback=conversation_name, metavar="NAME",
              help="Chat in conversation NAME of DEPLOYMENT, started by its first round (default: the main one, which Backend.AI shares).")
@click.option("--history-limit", type=click.IntRange(min=0), help="Messages of history to replay, in whole rounds: an odd number rounds down, so 1 replays nothing (default 10; 0: none, the round is still saved).")
@click.option("--system", callback=_text, help="System prompt for this turn (not saved in history).")
@click.option("--model", callback=_text, help="Model to request (default: config, else the server's first model).")
@click.option("--params", callback=_params, help='Extra request fields as a JSON object, e.g. \'{"temperature": 0}\'.')
@click.option("--max-tokens", type=click.IntRange(min=1), help="Longest answer, in tokens.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Print the answer as it arrives.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole response object (not streamed).")
@click.option("--timeout", type=Seconds(), default=300.0, show_default=True, help="Seconds to wait for the server's next bytes (at most 86400).")
@click.option("--deadline", callback=deadline_seconds, metavar="S", help="Seconds one request may take in all, however the server trickles (default 900, or config).")
@click.option("--raw", is_flag=True, help="Print the answer as sent, terminal control sequences included (they are removed by default).")
@click.option("--endpoint", callback=_text, help="Endpoint base URL for this call (default: config).")
@click.option("--token", callback=_exact, help="Bearer token for this call ('-' asks for it without echo, or reads a line of stdin; default: $BAI_TOKEN, then config).")
@click.option("--insecure", is_flag=True, help="Do not verify the endpoint's TLS certificate.")
@click.option("-i", "--interactive", is_flag=True, help="Keep the conversation going at a prompt (the default on a terminal with no MESSAGE).")
@click.option("--show-reasoning/--hide-reasoning", default=None, help="Show a reasoning model's thinking, dim on stderr, or hide it (default: config, else shown only when stderr is a terminal).")
@click.option("-v", "--verbose", is_flag=True, help="Also say on stderr what was replayed, the token counts and speed, and the saved round.")
@pass_app
def chat(app: App, deployment: str | None, message: tuple[str, ...], **opts: object) -> int:
    """Send MESSAGE to DEPLOYMENT, replaying its recent history as context.

    MESSAGE "-", or none with stdin piped, reads the message from stdin; MESSAGE with stdin a
    pipe or a file sends both (MESSAGE, a blank line, stdin); a terminal, /dev/null or a socket
    on stdin is never read unless "-" asks. No MESSAGE on a terminal (or -i) opens an
    interactive conversation (/help there lists its commands).

    DEPLOYMENT may be left out when a default is set (chat-config default ID, or
    $BAI_DEPLOYMENT): the first word is then the deployment only if bai knows it (settings,
    cache or history) or it is a UUID; otherwise all words are the message.
    The round is saved only when a complete answer with text arrived. Exit codes: 0 saved,
    1 failed, 2 usage, 3 answered without text (tool call, refusal, empty), 4 answered but
    not saved (the round alone is over the history cap), 130 interrupted, 143 SIGTERM, 129 SIGHUP.

    \b
    Example:
      bai deployment chat my-llm "What is the capital of France?"
      bai deployment chat my-llm "And its population?"
      git diff | bai deployment chat my-llm --history-limit 0 --max-tokens 400 -
      bai deployment chat my-llm -c trip "Plan three days in Rome."   # another conversation
    """
    from . import _deployment_arg
    from ._chat import ChatRequest, ChatSession, ChatUsageError, read_message, run_chat

    deployment, message = _deployment_arg.pick(app, deployment, message)
    if opts.get("token") == "-":
        from ._input import read_token

        opts["token"] = read_token(sys.stdin)  # $BAI_TOKEN and the settings: see _settings.token_of
    interactive = opts.pop("interactive") or (not message and sys.stdin.isatty())
    try:
        if interactive:
            from ._interactive import Repl

            req = ChatRequest(deployment, verify=not opts.pop("insecure"), **opts)  # type: ignore[arg-type]
            with ChatSession(app, req) as session:
                return Repl(session).run(" ".join(message) if message else None)
        req = ChatRequest(deployment, read_message(message, note=note), verify=not opts.pop("insecure"), **opts)  # type: ignore[arg-type]
        return run_chat(app, req, write=_write_stdout, note=note)
    except ChatUsageError as e:
        raise click.UsageError(str(e)) from None


def _write_stdout(text: str) -> None:  # per streamed piece: nothing imported here
    _cursor.wrote(text)
    sys.stdout.write(text)
    sys.stdout.flush()
