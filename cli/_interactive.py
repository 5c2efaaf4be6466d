"""Interactive mode: one conversation in a terminal session.

Each completed round is recorded through the same store as one-shot calls, so another
terminal's `chat-history show` sees it at once and a later one-shot call continues it.
Ctrl-C cancels the answer in progress (nothing is recorded) and keeps the session; Ctrl-D
or /exit leaves. Errors are shown and the session goes on.
"""

from __future__ import annotations

import os
from typing import Callable

import click

from ._app import use_color
from ._chat import ChatSession, ChatUsageError
from ._input import clean_arg
from ._input_history import load_input_history
from ._signals import outcome

HELP = """\
Type a message and press Enter. A paste of several lines is one message; end a line with \\
to continue on the next one, or wrap several lines between two lines of \"\"\". A message that
starts with / is written //. Commands:
  /history [N]     the last N saved messages (default 10)
  /new [NAME]      start another conversation (NAME, or one named by the time); the
                   deployment's main one stays as it is
  /switch [NAME]   go on with conversation NAME (main: the deployment's main one);
                   alone: list the conversations
  /clear           forget this conversation (asks first)
  /system TEXT     system prompt for the rest of this session (/system alone: none)
  /limit K         replay the last K messages as context from now on (whole rounds: an odd K
                   rounds down)
  /model M         ask for model M from now on
  /help            this text
  /exit            leave (or Ctrl-D); Ctrl-C stops an answer in progress"""

PROMPT, MORE = "you> ", "...> "


class Repl:
    def __init__(self, session: ChatSession, read_line: Callable[[str], str] = input) -> None:
        self.session = session
        self.read_line = read_line
        self.color = use_color()

    # -- output -----------------------------------------------------------------------

    def out(self, text: str) -> None:
        click.echo(text, nl=False)

    def note(self, text: str) -> None:
        click.secho(f"bai: {text}", err=True, fg="yellow", color=self.color)

    def error(self, text: str) -> None:
        click.secho(f"bai: error: {text}", err=True, fg="red", color=self.color)

    # -- the loop ---------------------------------------------------------------------

    def run(self, first_message: str | None = None) -> int:
        from eventlog import StoreError

        from .endpoint import EndpointError

        history = load_input_history(self.session.app.store.paths, self.error)
        try:
            self._banner()
            if first_message:
                self._turn(first_message, (EndpointError, StoreError, ChatUsageError))
            for _ in iter(int, 1):  # until /exit or Ctrl-D
                try:
                    text = self._read_message()
                except EOFError:
                    self.out("\n")
                    return 0
                except KeyboardInterrupt:
                    self.out("\n")  # Ctrl-C at the prompt: a fresh prompt, like a shell
                    continue
                if not text.strip():
                    continue
                kind, text = classify(text)
                if kind == "command":
                    if self._command(text) == "exit":
                        return 0
                    continue
                self._turn(text, (EndpointError, StoreError, ChatUsageError))
        finally:
            history.save()
        return 0

    def _banner(self) -> None:
        saved = len(self.session.app.store.history(self.session.stream))
        click.secho(f"Chatting with {self._where()} at {self.session.target.endpoint} "
                    f"({saved} saved message(s)). /help for commands, Ctrl-D to leave.",
                    err=True, fg="cyan", color=self.color)

    def _where(self) -> str:
        name = self.session.req.conversation
        return self.session.deployment + (f", conversation {name}" if name else "")

    def _turn(self, text: str, recoverable: tuple[type[BaseException], ...]) -> None:
        try:
            self.session.turn(text, self.out, self.note)
        except KeyboardInterrupt as e:
            self.note(f"interrupted; {outcome(getattr(e, 'saved', False))}")
        except recoverable as e:
            self.error(str(e))

    def _read_message(self) -> str:
        return clean_arg(self._read_lines(), "the message", self.note)

    def _read_lines(self) -> str:
        line = self.read_line(self._prompt(PROMPT))
        if line.strip() == '"""':
            lines = []
            for _ in range(100_000):
                more = self.read_line(self._prompt(MORE))
                if more.strip() == '"""':
                    break
                lines.append(more)
            return "\n".join(lines)
        lines = [line]
        while lines[-1].endswith("\\") and len(lines) < 100_000:
            lines[-1] = lines[-1][:-1]
            lines.append(self.read_line(self._prompt(MORE)))
        return "\n".join(lines)

    def _prompt(self, text: str) -> str:
        return click.style(text, fg="cyan", bold=True) if self.color is not False and os.isatty(1) else text

    # -- slash commands ---------------------------------------------------------------

    def _command(self, text: str) -> str | None:
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        target = self.session.target
        if name in ("/exit", "/quit"):
            return "exit"
        if name == "/help":
            click.echo(HELP)
        elif name == "/history":
            self._show_history(int(arg) if arg.isdigit() else 10)
        elif name == "/clear":
            self._clear()
        elif name == "/new":
            self._new(arg)
        elif name == "/switch":
            self._switch(arg)
        elif name == "/system":
            target.system = arg or None
            self.note(f"system prompt {'set' if arg else 'removed'} for this session")
        elif name == "/limit":
            if not arg.isdigit():
                self.error("/limit takes a number of messages, e.g. /limit 6")
            else:
                target.history_limit = int(arg)
                self.note(limit_note(target.history_limit))
        elif name == "/model":
            if not arg:
                self.error("/model takes a model name")
            else:
                target.model = arg
                self.note(f"asking for model {arg} from now on")
        else:
            self.error(f"unknown command {name}; /help lists them")
        return None

    def _clear(self) -> None:
        from ._input_history import forget_typed

        store, stream = self.session.app.store, self.session.stream
        typed = [m.content for m in store.history(stream) if m.role == "user"]
        if not typed:
            self.note(f"nothing is saved in {self._where()}")
            return
        answer = self.read_line(f"Forget the {len(typed)} saved round(s) of {self._where()}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            self.note("nothing was cleared")
            return
        removed = store.clear(stream)
        forget_typed(store.paths, typed)
        self.note(f"cleared {self._where()}: {removed} message(s) removed")

    def _new(self, name: str) -> None:
        import time

        from eventlog import check_conversation_name

        name = name or time.strftime("%Y%m%d-%H%M%S")
        try:
            checked = check_conversation_name(name)
        except ValueError as e:
            self.error(str(e))
            return
        if checked is None or checked in self.session.app.store.conversations(self.session.deployment):
            self.error(f"conversation {name} exists; /switch {name} goes on with it")
            return
        self.session.req.conversation = checked
        self.note(f"a new conversation {checked} of {self.session.deployment} (saved with its first answer; "
                  "/switch main goes back)")

    def _switch(self, name: str) -> None:
        from eventlog import check_conversation_name

        store, deployment = self.session.app.store, self.session.deployment
        names = store.conversations(deployment)
        if not name:
            current = self.session.req.conversation
            for n in ["main", *names]:
                mark = "*" if (n == "main" and current is None) or n == current else " "
                click.echo(f"{mark} {n}")
            return
        try:
            checked = check_conversation_name(name)
        except ValueError as e:
            self.error(str(e))
            return
        if checked is not None and checked not in names:
            self.error(f"{deployment} has no conversation {name}; /new {name} starts it")
            return
        self.session.req.conversation = checked
        saved = len(store.history(self.session.stream))
        self.note(f"now in {self._where()} ({saved} saved message(s))")

    def _show_history(self, limit: int) -> None:
        from .endpoint import strip_controls  # saved as the server sent it, shown without control sequences

        messages = self.session.app.store.history(self.session.stream)
        for m in messages[max(len(messages) - limit, 0) :] if limit else []:
            who = "you" if m.role == "user" else strip_controls(m.model or "assistant")
            click.secho(f"--- {who}", fg="cyan" if m.role == "user" else "green", color=self.color)
            click.echo(strip_controls(m.content))
        if not messages:
            self.note("no saved history")


def limit_note(limit: int) -> str:
    """What /limit K really replays: whole rounds, so an odd K rounds down (1: nothing)."""
    whole = limit - limit % 2
    said = f" ({limit} rounds down: history is replayed in whole rounds of 2)" if limit % 2 else ""
    return f"replaying the last {whole} message(s){' (no history)' if not whole else ''} from now on{said}"


def classify(text: str) -> tuple[str, str]:
    """("command", "/name args") or ("message", text). A slash command is one line starting
    with one slash; `//` escapes it (the message keeps one slash); anything of several lines (a
    paste, a \"\"\" block, continued lines) is a message whatever it starts with."""
    stripped = text.strip()
    if "\n" in text or not stripped.startswith("/"):
        return "message", text
    if stripped.startswith("//"):
        return "message", text.lstrip()[1:]
    return "command", stripped
