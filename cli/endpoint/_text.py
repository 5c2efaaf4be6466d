"""Text that came from a server, made fit for a one-line message.

A leaf: it imports nothing of the endpoint package, so every other module (errors, content,
error bodies, streams) can use it without an import circle.
"""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace (server messages carry newlines and tracebacks) and cap the length."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
