"""What a stream means: its visible rounds, from the log's chain and, where the log cannot
say, from the projection's checkpoint."""

from __future__ import annotations

import msgspec

from ._events import ClearEvent, Event, RoundEvent, BaseEvent
from ._scan import Scan


class StreamState(msgspec.Struct, frozen=True):
    rounds: list[RoundEvent]  # visible rounds before caps, oldest first; contiguous seqs
    last_seq: int  # seq of the stream's last record (0 for a new stream)


class Resolved(msgspec.Struct, frozen=True):
    state: StreamState
    from_checkpoint: bool  # the projection filled in what the log could not say
    dropped_after_gap: int  # valid records past a gap that could not be placed


def fold(events: list[Event], start: StreamState | None = None) -> StreamState:
    rounds = list(start.rounds) if start else []
    last = start.last_seq if start else 0
    for e in events:
        if isinstance(e, RoundEvent):
            rounds.append(e)
        elif isinstance(e, (ClearEvent, BaseEvent)):
            rounds = []  # a base opens the file, so this only matters for a clear
        last = e.seq
    return StreamState(rounds, last)


def resolve(scan: Scan, checkpoint: StreamState | None) -> Resolved:
    """The stream's state from its scan and, optionally, the projection's view of it.

    The log is the truth when its chain is unbroken and not behind the checkpoint. Past a gap
    (or when the log is behind), state continues from the checkpoint if it covers everything
    the chain holds: then only records chaining on from the checkpoint are applied, so no
    record is ever skipped (a skipped clear would bring cleared rounds back).
    """
    logged = fold(scan.chain)
    broken = scan.gap_at is not None
    behind = checkpoint is not None and checkpoint.last_seq > logged.last_seq
    if not broken and not behind:
        return Resolved(logged, False, 0)
    if checkpoint is None or checkpoint.last_seq < logged.last_seq:
        return Resolved(logged, False, len(scan.after_gap))
    state = checkpoint
    placed = 0
    later = [e for e in scan.after_gap if e.seq > checkpoint.last_seq]
    for e in later:
        if e.seq != state.last_seq + 1 or isinstance(e, BaseEvent):
            break
        state = fold([e], state)
        placed += 1
    return Resolved(state, True, len(later) - placed)
