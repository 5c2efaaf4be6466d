"""A round's fingerprint: what identifies it in history.json whichever tool wrote the file last.

Backend.AI re-serialises every message when it saves (its own time format, bai's extra keys
dropped), so a round is recognised by its two contents and two instants, not by bytes or seq.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ._events import RoundEvent

try:  # hashlib's own blake2b, without hashlib: importing hashlib loads OpenSSL (~4 ms per `bai` start)
    from _blake2 import blake2b
except ImportError:  # an interpreter without the module
    from hashlib import blake2b

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FALLBACK = "1970-01-01T00:00:00+00:00"
# What both Python's fromisoformat and Backend.AI's pydantic read as the same instant.
_PLAIN_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def instant(text: str | None) -> str:
    """A time stamp in one spelling (UTC microseconds), whatever ISO form wrote it; text that is
    not a time stamp stays as it is. `...00.123+00:00` and `...00.123000Z` are the same instant."""
    t = _parse(text)
    if t is None:
        return text or ""
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return str((t - _EPOCH) // timedelta(microseconds=1))


def created_at(text: str | None, fallback: str | None = None) -> str:
    """`created_at` as written for Backend.AI, which refuses the whole file over one it cannot
    parse: ISO 8601 in the one form both tools read (`YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM]`);
    a stamp that is not a date and time becomes `fallback`'s (else the epoch)."""
    t = _parse(text)
    if t is None:
        return created_at(fallback) if fallback is not None else _FALLBACK
    return text if _PLAIN_ISO.fullmatch(text) else t.isoformat()  # type: ignore[arg-type]


def exported_times(r: RoundEvent) -> tuple[str, str]:
    """(user's created_at, assistant's created_at) as bai writes the round into history.json."""
    answered = created_at(r.ts)
    return created_at(r.user_at, answered), answered


def fingerprint(user: str, assistant: str, user_at: str | None, assistant_at: str | None) -> str:
    h = blake2b(digest_size=8)
    for part in (user, assistant, instant(user_at), instant(assistant_at)):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def round_fingerprint(r: RoundEvent) -> str:
    """The fingerprint of a round as bai writes it into history.json."""
    return fingerprint(r.user, r.assistant, *exported_times(r))
