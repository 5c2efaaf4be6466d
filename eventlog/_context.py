"""The context builder: the most recent whole rounds that fit in K messages."""

from __future__ import annotations

from ._events import RoundEvent


def recent_rounds(rounds: list[RoundEvent], limit: int) -> list[RoundEvent]:
    """The newest rounds within `limit` messages. An odd limit rounds down, so replay never
    starts with an assistant message (strict chat templates reject that); 0 means none."""
    if limit < 0:
        raise ValueError("history limit must not be negative")
    n = limit // 2
    return rounds[max(len(rounds) - n, 0) :] if n else []


def as_messages(rounds: list[RoundEvent]) -> list[dict[str, str]]:
    """Wire messages for replay: only role and content."""
    out: list[dict[str, str]] = []
    for r in rounds:
        out.append({"role": "user", "content": r.user})
        out.append({"role": "assistant", "content": r.assistant})
    return out
