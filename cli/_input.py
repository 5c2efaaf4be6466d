"""Input from outside bai (stdin, argv) made fit to send and to save, with a note when it was not.

Python keeps bytes of argv it cannot decode as lone surrogates (U+DC80-U+DCFF), and reading
stdin as text fails on them outright. bai decodes both as UTF-8 and replaces what is not UTF-8
with U+FFFD, saying so in one line: a `git diff` of a latin-1 file still goes through, with its
few odd bytes visibly replaced, and nothing undecodable is ever sent or saved (Backend.AI
refuses a whole history.json over one lone surrogate).
"""

from __future__ import annotations

from typing import IO, Any, Callable

import click

Note = Callable[[str], object]


def _replaced(what: str, count: int) -> str:
    return f"{what} is not valid UTF-8: {count} byte(s) replaced with U+FFFD"


def clean_arg(value: str, what: str, note: Note) -> str:
    """A command-line value with its undecodable bytes replaced (and a note if there were any)."""
    if value.isascii():
        return value  # the common case, without loading the store's package (`bai --help` stays fast)
    from eventlog._text import lone_surrogates, scrub

    count = lone_surrogates(value)
    if count:
        note(_replaced(what, count))
        return scrub(value)
    return value


def exact_arg(value: str, what: str) -> str:
    """A value that must arrive exactly as typed (a token): bytes that are not UTF-8 are a
    usage error, not a replacement (a token with U+FFFD in it could only be refused later)."""
    if not value.isascii():
        from eventlog._text import lone_surrogates

        if lone_surrogates(value):
            raise click.UsageError(f"{what} is not valid UTF-8; nothing was changed")
    return value


def read_stdin(stream: IO[str] | Any, note: Note, *, line: bool = False) -> str:
    """All of stdin (or one line), decoded as UTF-8 with undecodable bytes replaced."""
    from eventlog._text import lone_surrogates, scrub

    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a text stream without bytes under it (a test's StringIO)
        return scrub(stream.readline() if line else stream.read())
    data = buffer.readline() if line else buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")  # one surrogate per bad byte: counted, then replaced
        note(_replaced("stdin", lone_surrogates(text)))
        return scrub(text)


def stdin_is_data(stream: IO[str] | Any) -> bool:
    """Whether stdin is something to read along with a MESSAGE: a pipe or a regular file.

    A terminal, a character device (/dev/null, a serial line), a socket or anything else is
    never read unasked: under cron, a test runner, ssh or a service manager stdin can be open
    and idle forever, and bai would wait for it. A pipe is read to its end (`cmd | bai ...`
    waits for cmd, as it should); "-" reads stdin whatever it is."""
    import os
    import stat

    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError):  # no file under it (a test's StringIO)
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


def read_token(stream: IO[str] | Any) -> str:
    """`--token -`: asked for on a terminal (the prompt on stderr, nothing echoed), else the
    first line of stdin. Bytes that are not UTF-8 are a usage error (see exact_arg)."""
    if _isatty(stream):
        token = click.prompt("Token", hide_input=True, err=True, default="", show_default=False)
        return exact_arg(token.strip(), "--token")
    replaced: list[str] = []
    token = read_stdin(stream, replaced.append, line=True).strip()
    if replaced:
        raise click.UsageError("the token read from stdin is not valid UTF-8; nothing was changed")
    return token


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


class Seconds(click.ParamType):
    """A number of seconds: finite, more than 0, at most `maximum` (nan, inf and 1e308 are not
    durations; a socket timeout cannot hold them)."""

    name = "seconds"

    def __init__(self, maximum: float = 86400.0) -> None:
        self.maximum = maximum

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = float(str(value))
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not 0 < seconds <= self.maximum:  # false for nan and both infinities too (math is not loaded for this)
            self.fail(f"{value} is not a number of seconds more than 0 and at most {self.maximum:g}", param, ctx)
        return seconds
