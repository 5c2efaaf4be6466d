"""Text that came from a server, made safe to show: no terminal control sequences, no token.

A leaf: it imports nothing of the endpoint package, so every other module (errors, content,
error bodies, streams) can use it without an import circle.

- `strip_controls` / `TerminalFilter`: a server's text may carry escape sequences that a
  terminal obeys (an OSC title, OSC 52 writing the clipboard, cursor moves that hide what was
  printed). They are removed: CSI, OSC, DCS/SOS/PM/APC strings, other ESC sequences, and every
  other C0/C1 control character but newline and tab. The filter keeps state between pieces, as
  a stream may split a sequence anywhere.
- `Redactor`: the bearer token, in every form a server could echo it, replaced by `***`. It is
  applied to what a server sent *before* any of it is cut to length, so no prefix survives a cut.
"""

from __future__ import annotations

import re

__all__ = ["NO_REDACTION", "Redactor", "TerminalFilter", "json_for_terminal", "one_line", "strip_controls"]


# -- terminal control sequences ------------------------------------------------------------------

# One alternation, tried in order at each control character; a sequence is "open" when it runs
# to the end of the text without its final byte or terminator.
_STRING_OPENERS = "\x1b[\\]PX^_]|[\x90\x98\x9d\x9e\x9f]"  # OSC, DCS, SOS, PM, APC (7- and 8-bit)
_SEQUENCE = re.compile(
    "(?P<csi>(?:\x1b\\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*(?P<csi_end>[\x40-\x7e])?)"
    f"|(?P<string>(?:{_STRING_OPENERS})[^\x07\x1b\x9c]*(?P<string_end>[\x07\x9c])?)"
    "|(?P<esc>\x1b[\x20-\x2f]*(?P<esc_end>[\x30-\x7e])?)"
    "|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # any other control (not \t, not \n; \r goes too)
)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MAX_PENDING = 256  # an open CSI or ESC sequence longer than this is no sequence: dropped


class TerminalFilter:
    """`feed` each piece of a streamed text, `flush` at its end: the text without control
    sequences, the same however it was split. Fast when a piece has no control character."""

    __slots__ = ("_pending", "_in_string")

    def __init__(self) -> None:
        self._pending = ""  # an open CSI/ESC sequence at the end of the last piece
        self._in_string = False  # inside an OSC/DCS/... string: dropped until BEL, ST or ESC

    def feed(self, text: str) -> str:
        if self._in_string:
            end = _string_end(text)
            if end is None:
                return ""
            self._in_string = False
            text = text[end:]
        if self._pending:
            text, self._pending = self._pending + text, ""
        if _CONTROL.search(text) is None:
            return text
        out: list[str] = []
        at = 0
        for match in _SEQUENCE.finditer(text):
            out.append(text[at : match.start()])
            at = match.end()
            if at < len(text):
                continue  # a whole sequence, or one cut short by what follows it: dropped
            if match.group("string") is not None and match.group("string_end") is None:
                self._in_string = True
            elif match.group("csi") is not None and match.group("csi_end") is None \
                    or match.group("esc") is not None and match.group("esc_end") is None:
                self._pending = match.group() if len(match.group()) <= _MAX_PENDING else ""
        out.append(text[at:])
        return "".join(out)

    def flush(self) -> str:
        """The end of the text: an open sequence is dropped (a terminal would have swallowed it)."""
        self._pending, self._in_string = "", False
        return ""


def _string_end(text: str) -> int | None:
    """Where an OSC/DCS/... string that began in an earlier piece ends in `text`: after BEL or
    8-bit ST, or at an ESC (ESC \\ is the 7-bit ST; any other ESC begins a new sequence)."""
    ends = [i for i in (text.find("\x07"), text.find("\x9c")) if i >= 0]
    esc = text.find("\x1b")
    best = min(ends) + 1 if ends else None
    if esc >= 0 and (best is None or esc < best):
        return esc
    return best


def strip_controls(text: str) -> str:
    """`text` without terminal control sequences and control characters (newline and tab kept)."""
    if _CONTROL.search(text) is None:
        return text
    f = TerminalFilter()
    return f.feed(text) + f.flush()


_C1 = re.compile("[\x7f-\x9f]")


def json_for_terminal(encoded: str) -> str:
    """JSON text with DEL and the C1 controls written as \\u escapes, as the C0 ones already
    are: the same JSON, and no 8-bit CSI or OSC for a terminal to obey."""
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


def one_line(text: str, limit: int = 300) -> str:
    """Control sequences removed, whitespace collapsed (server messages carry newlines and
    tracebacks), the length capped."""
    text = " ".join(strip_controls(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the token ----------------------------------------------------------------------------------

def _char_forms(c: str) -> str:
    """A regex for one character of the token as a server may write it: as is; JSON-escaped
    (`\\uXXXX` with hex in either case, and `\\"` `\\\\` `\\/`); URL-encoded (`%XX`, either case)."""
    def hex_any_case(value: int, digits: int) -> str:
        return "".join(f"[{h.lower()}{h.upper()}]" if h.isalpha() else h for h in f"{value:0{digits}x}")

    forms = [re.escape(c), r"\\u" + hex_any_case(ord(c), 4), "%" + hex_any_case(ord(c), 2)]
    if c in '"\\/':
        forms.append(r"\\" + re.escape(c))
    return "(?:" + "|".join(forms) + ")"


class Redactor:
    """Replaces a secret, in any mix of the forms above character by character, with `***`.

    `margin` is the longest form in bytes: read that much past a cut, scrub, then cut, and a
    token that straddled the cut is gone whole."""

    __slots__ = ("secret", "margin", "_text", "_bytes")

    def __init__(self, secret: str | None) -> None:
        self.secret = secret or None
        self.margin = 6 * len(secret) if secret else 0
        pattern = "".join(_char_forms(c) for c in secret) if secret else None
        self._text = re.compile(pattern) if pattern else None
        self._bytes = re.compile(pattern.encode("ascii")) if pattern and secret.isascii() else None

    def __bool__(self) -> bool:
        return self.secret is not None

    def text(self, value: str) -> str:
        return self._text.sub("***", value) if self._text is not None else value

    def bytes(self, value: bytes) -> bytes:
        if self._bytes is not None:
            return self._bytes.sub(b"***", value)
        if self._text is not None:  # a non-ASCII secret (no header carries one, but be safe)
            return self.text(value.decode("utf-8", "replace")).encode()
        return value


NO_REDACTION = Redactor(None)
