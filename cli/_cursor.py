"""Where the terminal's cursor is, as far as bai knows: so that after a Ctrl-C (which the
terminal echoes as ^C where the cursor is) "bai: interrupted" starts a line of its own.

The answer is written through `wrote()`; SIGINT notes whether that last write had left the
cursor in the middle of a line (the answer's own newline then follows the ^C).
"""

from __future__ import annotations

import sys

mid_line = False  # the last write to stdout did not end its line
_at_interrupt: bool | None = None  # mid_line when SIGINT came (None: it did not come through on_sigint)


def wrote(text: str) -> None:
    global mid_line
    if text:
        mid_line = not text.endswith("\n")


def on_sigint(signum: int, frame: object) -> None:
    """A SIGINT handler: KeyboardInterrupt as Python's own does, remembering where the cursor was."""
    global _at_interrupt
    _at_interrupt = mid_line
    raise KeyboardInterrupt


def _echoes_control_chars(stream: object) -> bool:
    try:
        import termios

        return bool(termios.tcgetattr(stream.fileno())[3] & termios.ECHOCTL)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not a terminal we can ask: assume the usual (^C echoed)
        return True


def newline_before_interrupted() -> str:
    """"\\n" when the terminal's cursor sits after an echoed ^C, else "". A ^C typed while the
    answer was mid-line was followed by the answer's closing newline: nothing more is needed."""
    try:
        if not sys.stderr.isatty() or not _echoes_control_chars(sys.stderr):
            return ""
        answer_on_terminal = sys.stdout.isatty()
    except (OSError, ValueError):
        return ""
    if answer_on_terminal and _at_interrupt and not mid_line:
        return ""
    return "\n"
