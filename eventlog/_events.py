"""The events of a deployment's stream, and their one-line encoding with a CRC.

A line is the event's JSON with `"crc":N` added as its last key, where N is the CRC32 of
the JSON without it (exactly the bytes before `,"crc":` plus the closing brace). So the
check is byte-exact and needs no re-encoding.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timezone
from typing import Any, Union

import msgspec

from ._upcast import CURRENT_VERSION, upcast


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=True):
    v: int
    seq: int
    deployment: str
    ts: str


class RoundEvent(_Event, tag="round"):
    """One completed exchange: the only way a message enters history, so half a round cannot exist."""

    user: str
    assistant: str
    user_at: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    prompt_chars: int | None = None  # characters of all message contents sent: with usage.prompt_tokens, the model's chars per token
    # What a reasoning model thought before answering (bounded by the caller). Never the answer,
    # never replayed, never in history.json: Backend.AI's messages have no such field.
    reasoning: str | None = None


class ClearEvent(_Event, tag="clear"):
    """Tombstone: every earlier round of the deployment is gone."""


class BaseEvent(_Event, tag="base"):
    """Head of a compacted stream: nothing at or before `seq` is visible; the next record is seq + 1."""


Event = Union[RoundEvent, ClearEvent, BaseEvent]

_encoder = msgspec.json.Encoder()
EVENT_DECODER = _decoder = msgspec.json.Decoder(Event)
CRC_KEY = _CRC_KEY = b',"crc":'


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def encode_line(event: Event) -> bytes:
    body = _encoder.encode(event)
    return b"%s%s%d}\n" % (body[:-1], _CRC_KEY, zlib.crc32(body))


class NewerVersion(Exception):
    """A CRC-valid record of a schema version this code does not know."""

    def __init__(self, version: object) -> None:
        super().__init__(version)
        self.version = version


def decode_line(line: bytes) -> Event | None:
    """Decode one line (without its newline). None if it is not a valid record.

    Raises NewerVersion for an intact record from a newer schema: that is not damage.
    """
    return decode_span(line, memoryview(line), 0, len(line))


def decode_span(data: bytes, view: memoryview, start: int, end: int) -> Event | None:
    """decode_line of data[start:end], without copying it (the scanner's hot path: every line
    of a log is checked on every write)."""
    i = data.rfind(_CRC_KEY, start, end)
    if i <= start or data[end - 1 : end] != b"}":
        return None
    digits = data[i + len(_CRC_KEY) : end - 1]
    if not digits.isdigit() or len(digits) > 10:
        return None
    if zlib.crc32(b"}", zlib.crc32(view[start:i])) != int(digits):
        return None
    try:
        event = _decoder.decode(view[start:end])  # the crc key is ignored: it is no field
        if event.v == CURRENT_VERSION:
            return event
    except msgspec.ValidationError:
        pass  # maybe an older shape: try the upcasters below
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deeply to be ours
        return None
    return _decode_other_version(data[start:i] + b"}")


def _decode_other_version(body: bytes) -> Event | None:
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("v"), int):
        return None
    if raw["v"] > CURRENT_VERSION:
        raise NewerVersion(raw["v"])
    try:
        return msgspec.convert(upcast(raw), Event)
    except (msgspec.ValidationError, KeyError, TypeError, ValueError):
        return None
