"""A reasoning model's thinking on screen, and how much of it is kept.

Reasoning models (vLLM's and SGLang's reasoning parsers, llama.cpp, DeepSeek, Qwen3) send their
thinking (`reasoning_content`, `reasoning`, thinking parts) for many seconds before the answer;
shown, bai does not look frozen. It goes to stderr, dim, between a "thinking…" line and a
"…done thinking" line, so a terminal shows thinking then answer in order while
`bai ... > answer.txt` still gets only the answer.

Shown when: --show-reasoning / --hide-reasoning, else the deployment's `reasoning` setting
(show | hide), else only when stderr is a terminal (a log or a pipe would fill with it).
Like the answer, it is shown without terminal control sequences unless --raw.

Reasoning that arrives after the answer began is not shown (it would cut into the answer on
screen); it is kept with the rest.
"""

from __future__ import annotations

import sys
from typing import Callable

import click

from ._app import use_color
from .endpoint import TerminalFilter

SHOW, HIDE = "show", "hide"
HEADER = "thinking…"
FOOTER = "…done thinking"

# At most this many characters of a round's reasoning are saved: a model may think for tens of
# thousands of tokens, and every saved byte counts against the history cap (1 MiB by default).
# The beginning (the approach) and the end (what led to the answer) are kept.
MAX_SAVED = 64 * 1024

Write = Callable[[str], object]


def wanted(flag: bool | None, setting: str | None, stderr_is_tty: bool | None = None) -> bool:
    """Whether to show reasoning: the flag, else the setting, else whether stderr is a terminal."""
    if flag is not None:
        return flag
    if setting in (SHOW, HIDE):
        return setting == SHOW
    return sys.stderr.isatty() if stderr_is_tty is None else stderr_is_tty


def to_stderr(text: str) -> None:
    click.echo(text, err=True, nl=False, color=use_color())  # click flushes: order with stdout holds


class ReasoningView:
    """Feed it the reasoning pieces as they come and say when the answer begins; `end` at the
    end of the reply, whatever happened (an error, Ctrl-C): the screen is left on a new line."""

    def __init__(self, show: bool, *, raw: bool = False, write: Write = to_stderr) -> None:
        self.show = show
        self.raw = raw
        self.write = write
        self._filter = TerminalFilter()
        self._open = False  # the header is out, the footer not yet
        self._answering = False
        self._last = ""

    def piece(self, text: str) -> None:
        if not self.show or self._answering or not text:
            return
        shown = text if self.raw else self._filter.feed(text)
        if not self._open:
            self._open = True
            self.write(click.style(HEADER, dim=True) + "\n")
        if shown:
            self._last = shown
            self.write(click.style(shown, dim=True))

    def answer_begins(self) -> None:
        self.end()
        self._answering = True

    def end(self) -> None:
        if not self._open:
            return
        self._open = False
        self._filter.flush()
        self.write(("" if self._last.endswith("\n") else "\n") + click.style(FOOTER, dim=True) + "\n\n")

    def whole(self, text: str | None) -> None:
        """A whole reply's reasoning, before its answer."""
        if text:
            self.piece(text)
            self.end()


def saved_form(text: str | None, limit: int = MAX_SAVED) -> str | None:
    """The reasoning as saved: None when there is none; over `limit` characters, its first and
    last halves around a marker saying how much was left out."""
    if not text:
        return None
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… {len(text) - 2 * half} characters of reasoning not saved …]\n{text[-half:]}"
