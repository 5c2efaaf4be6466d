"""history.json: the projection of the UUID deployments' visible rounds, in Backend.AI's shape.

    {"version": 1, "last_seq": {"<uuid>": N}, "deployments": {"<uuid>": [message, ...]}}

A round is two messages that share its `seq`: the user's (`created_at` = when it was sent)
and the assistant's (`created_at` = when the answer completed, plus model, finish_reason and
usage). Backend.AI reads `role`, `content` and `created_at` and ignores the rest; only `role`
and `content` ever go on the wire. The messages carry everything a round event holds but its
`reasoning`, so a round can be rebuilt from bai's own file (recovery from a damaged log uses
that), without the reasoning. The reasoning stays out: it is no message, Backend.AI has no
field for it, and its size belongs in bai's log only.

A file without "version" was last written by Backend.AI (its saves drop the keys it does not
know): decoded leniently, one bad deployment entry never costs the others.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._events import RoundEvent, now_iso
from ._fingerprint import exported_times
from ._upcast import CURRENT_VERSION

PROJECTION_VERSION = 1


class Message(msgspec.Struct, omit_defaults=True, frozen=True):
    role: str
    content: str
    created_at: str | None = None
    seq: int | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    prompt_chars: int | None = None


class Projection(msgspec.Struct, omit_defaults=True):
    """history.json. Each deployment's entry is kept as raw JSON and decoded only when that
    deployment is asked for: a command about one deployment never pays for the others, and a
    writer copies the entries it does not change byte for byte."""

    deployments: dict[str, msgspec.Raw]
    version: int | None = None  # None: a Backend.AI file
    last_seq: dict[str, int] = {}

    def messages(self, deployment: str) -> list[Message] | None:
        """The deployment's messages ([] if it has no entry), or None if its entry is unreadable."""
        raw = self.deployments.get(deployment)
        if raw is None:
            return []
        try:
            return _list_decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Projection)
_list_decoder = msgspec.json.Decoder(list[Message])


class Unreadable(Exception):
    """history.json cannot be used; the message says why, in a few words."""


# msgspec raises RecursionError past about a thousand levels: no file of ours nests so deep
NESTED = "nested too deeply to be a history file"


def encode_projection(projection: Projection) -> bytes:
    return _encoder.encode(projection) + b"\n"


def encode_entry(messages: list[Message]) -> msgspec.Raw:
    return msgspec.Raw(_encoder.encode(messages))


def decode_projection(data: bytes) -> Projection:
    """Decode history.json's outline (entries stay raw). Raises Unreadable if it cannot be used."""
    try:
        projection = _decoder.decode(data)
    except msgspec.ValidationError:
        projection = _decode_leniently(data)
    except msgspec.DecodeError as e:
        raise Unreadable(f"not valid JSON ({e})") from None
    except RecursionError:
        raise Unreadable(NESTED) from None
    if projection.version not in (None, PROJECTION_VERSION):
        raise Unreadable(f"unknown format version {projection.version!r}")
    return projection


def _decode_leniently(data: bytes) -> Projection:
    try:
        raw = msgspec.json.decode(data)
    except RecursionError:
        raise Unreadable(NESTED) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("deployments"), dict):
        raise Unreadable('no "deployments" object')
    version = raw.get("version")
    if version is not None and not isinstance(raw.get("last_seq"), dict):
        raise Unreadable('no "last_seq" object')
    deployments = {d: msgspec.Raw(_encoder.encode(v)) for d, v in raw["deployments"].items()}
    last_seq = {d: n for d, n in (raw.get("last_seq") or {}).items() if isinstance(n, int) and d in deployments}
    version = version if version is None or isinstance(version, int) else -1  # -1: refused below
    return Projection(deployments=deployments, version=version, last_seq=last_seq)


def messages_of_round(r: RoundEvent) -> list[Message]:
    """The round's two messages as history.json holds them (times in a form Backend.AI reads)."""
    user_at, answered_at = exported_times(r)
    return [
        Message("user", r.user, user_at, r.seq),
        Message("assistant", r.assistant, answered_at, r.seq, r.model, r.finish_reason, r.usage, r.prompt_chars),
    ]


def projected_size(r: RoundEvent) -> int:
    """Bytes the round takes in history.json (with its separating commas)."""
    return len(_encoder.encode(messages_of_round(r))) - 1


def rounds_of_messages(deployment: str, messages: list[Message]) -> tuple[list[RoundEvent], int]:
    """Pair messages into rounds: a user message followed by an assistant one.

    Returns the rounds and the number of messages that formed no round (skipped).
    Messages without seq (Backend.AI's) get seq None -> 0 here; callers number them.
    """
    rounds: list[RoundEvent] = []
    skipped = 0
    i = 0
    while i < len(messages):
        m = messages[i]
        nxt = messages[i + 1] if i + 1 < len(messages) else None
        if m.role == "user" and nxt is not None and nxt.role == "assistant" and m.seq == nxt.seq:
            ts = nxt.created_at or m.created_at or now_iso()
            rounds.append(
                RoundEvent(
                    v=CURRENT_VERSION, seq=m.seq or 0, deployment=deployment, ts=ts, user=m.content,
                    assistant=nxt.content, user_at=m.created_at, model=nxt.model,
                    finish_reason=nxt.finish_reason, usage=nxt.usage, prompt_chars=nxt.prompt_chars,
                )
            )
            i += 2
        else:
            skipped += 1
            i += 1
    return rounds, skipped
