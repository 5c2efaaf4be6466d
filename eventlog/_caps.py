"""Per-deployment caps, and which rounds survive them (FIFO: the oldest go first). Each of a
deployment's conversations is capped as the deployment is."""

from __future__ import annotations

from typing import Callable, Union

import msgspec

from ._ids import split_stream_id
from ._events import BaseEvent, RoundEvent, encode_line
from ._projection import projected_size

DEFAULT_MAX_MESSAGES = 100
DEFAULT_MAX_BYTES = 1 << 20


class Caps(msgspec.Struct, frozen=True):
    """At most `messages` messages (whole rounds, so an odd cap rounds down) and `bytes` bytes,
    counted both as the deployment's log file and as its entry in history.json."""

    messages: int = DEFAULT_MAX_MESSAGES
    bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.messages < 0 or self.bytes < 0:
            raise ValueError("caps must not be negative")


CapsPolicy = Union[Caps, Callable[[str], Caps]]

# The widest base record a log can start with: its bytes count against the cap too.
_BASE_ALLOWANCE = len(encode_line(BaseEvent(v=1, seq=10**18, deployment="x" * (128 + 1 + 64), ts="2026-01-01T00:00:00.000+00:00")))


def caps_for(policy: CapsPolicy, stream: str) -> Caps:
    """The caps of a stream: its deployment's (each conversation is capped like its deployment)."""
    return policy if isinstance(policy, Caps) else policy(split_stream_id(stream)[0])


# How much larger a round is in history.json than as a log line, at most: role keys, `seq` twice
# and two time stamps in their longest written form, against the log's type, v, deployment and crc.
_PROJECTION_SLACK = 160


def within_caps(rounds: list[RoundEvent], caps: Caps, *, log_bytes: int | None = None) -> list[RoundEvent]:
    """The newest rounds that fit the caps, oldest first.

    `log_bytes`: the size of a log holding exactly these rounds (and perhaps a base record or
    stale ones): when that alone shows everything fits, no round is encoded to size it, so a
    turn below the cap costs nothing here."""
    max_rounds = caps.messages // 2
    if log_bytes is not None and len(rounds) <= max_rounds and \
            log_bytes + _BASE_ALLOWANCE + _PROJECTION_SLACK * len(rounds) + 3 <= caps.bytes:
        return rounds
    log_budget = caps.bytes - _BASE_ALLOWANCE
    projection_budget = caps.bytes - 3  # the list's brackets and a last comma
    kept = 0
    for r in reversed(rounds):
        if kept >= max_rounds:
            break
        log_budget -= len(encode_line(r))
        projection_budget -= projected_size(r)
        if log_budget < 0 or projection_budget < 0:
            break
        kept += 1
    return rounds[len(rounds) - kept :] if kept else []
