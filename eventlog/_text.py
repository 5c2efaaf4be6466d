"""Text fit to be saved: no lone surrogates.

Python keeps bytes it could not decode (argv, a file read with surrogateescape) as lone
surrogates U+DC80-U+DCFF; JSON escapes can carry other lone surrogates. None can be encoded
as UTF-8: msgspec refuses to write them, and Backend.AI's pydantic refuses a whole history.json
over one. The store saves each as U+FFFD (the replacement character), as a UTF-8 decoder does.
"""

from __future__ import annotations

import re
from typing import TypeVar

_SURROGATE = re.compile("[\ud800-\udfff]")
T = TypeVar("T")


def lone_surrogates(text: str) -> int:
    """How many lone surrogates `text` holds (0 in the common case, found without a scan of ASCII)."""
    if text.isascii():
        return 0
    try:
        text.encode("utf-8")
        return 0
    except UnicodeEncodeError:
        return len(_SURROGATE.findall(text))


def scrub(text: T) -> T:
    """`text` with each lone surrogate replaced by U+FFFD (anything not a str as it is)."""
    if isinstance(text, str) and lone_surrogates(text):
        return _SURROGATE.sub("\ufffd", text)  # type: ignore[return-value]
    return text


def scrub_tree(value: T) -> T:
    """scrub() through dicts and lists (keys too): a usage object, a settings entry."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub_tree(k): scrub_tree(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [scrub_tree(v) for v in value]  # type: ignore[return-value]
    return value


__all__ = ["lone_surrogates", "scrub", "scrub_tree"]
