"""The tolerant scanner: bytes of a stream's log in, the valid chain of records out.

A record counts only if its line ends in `\n`, its CRC matches, it decodes, it belongs to
the stream, and its seq is the previous one plus one (a `base` may only open the file).
Nothing bad is ever skipped silently:
- bad bytes after the last chained record, with no valid record after them: a torn tail
  (an interrupted append), reported as `tail_start` / `tail_lines`;
- bad lines with the chain continuing right after them: junk that hides no record
  (the seqs prove nothing is missing), reported as `junk_lines`;
- a valid record that does not chain (a gap, a duplicate, a misplaced base): the chain
  stops there (`gap_at`); the valid records after it are kept apart in `after_gap`, for
  recovery to use only from a checkpoint that covers the gap.
"""

from __future__ import annotations

import zlib

import msgspec

from ._events import CRC_KEY, EVENT_DECODER, BaseEvent, Event, NewerVersion, decode_span
from ._upcast import CURRENT_VERSION


class Scan(msgspec.Struct, frozen=True):
    chain: list[Event]
    good_end: int  # byte offset just after the last chained record
    size: int
    tail_start: int | None = None  # first byte of an unchained tail with nothing valid after it
    tail_lines: int = 0  # complete (newline-ended) bad lines in that tail
    junk_lines: int = 0
    gap_at: int | None = None  # byte offset of the first record that does not chain
    after_gap: list[Event] = []
    newer_version: object = None  # set when an intact record of a newer schema stopped the scan

    @property
    def last_seq(self) -> int:
        return self.chain[-1].seq if self.chain else 0

    @property
    def damaged(self) -> bool:
        """Damage that a crash under the append protocol cannot cause."""
        return self.junk_lines > 0 or self.gap_at is not None or self.tail_lines > 1


def scan_stream(data: bytes, deployment: str) -> Scan:
    clean = _scan_clean(data, deployment)
    return clean if clean is not None else _scan_lines(data, deployment)


def _scan_clean(data: bytes, deployment: str) -> Scan | None:
    """The common case in a tight loop (every turn scans its log): nothing but whole, valid,
    chained records of this version. None at the first doubt: _scan_lines then says what is
    wrong. The checks are decode_span's."""
    chain: list[Event] = []
    last = 0
    pos = 0
    n = len(data)
    view = memoryview(data)
    find, rfind, crc32, decode = data.find, data.rfind, zlib.crc32, EVENT_DECODER.decode
    while pos < n:
        nl = find(b"\n", pos)
        if nl < 0:
            return None
        i = rfind(CRC_KEY, pos, nl)
        if i <= pos or data[nl - 1] != 0x7D:  # "}"
            return None
        digits = data[i + 7 : nl - 1]
        if not digits.isdigit() or len(digits) > 10 or crc32(b"}", crc32(view[pos:i])) != int(digits):
            return None
        try:
            event = decode(view[pos:nl])
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        if event.v != CURRENT_VERSION or event.deployment != deployment or not _chains(event, last, not chain):
            return None
        chain.append(event)
        last = event.seq
        pos = nl + 1
    return Scan(chain, n, n)


def _scan_lines(data: bytes, deployment: str) -> Scan:
    chain: list[Event] = []
    after_gap: list[Event] = []
    last = 0
    good_end = 0
    pending_start: int | None = None  # first bad line since the last chained record
    pending_lines = 0
    junk = 0
    gap_at: int | None = None
    pos = 0
    n = len(data)
    view = memoryview(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # a partial last line: part of the tail
        try:
            event = decode_span(data, view, pos, nl)
        except NewerVersion as e:
            return Scan(chain, good_end, n, tail_start=pos, newer_version=e.version)
        if event is not None and event.deployment != deployment:
            event = None
        if event is None:
            if gap_at is None:
                if pending_start is None:
                    pending_start = pos
                pending_lines += 1
        elif gap_at is not None:
            after_gap.append(event)
        elif _chains(event, last, not chain):
            chain.append(event)
            last = event.seq
            good_end = nl + 1
            junk += pending_lines
            pending_start, pending_lines = None, 0
        else:
            gap_at = pos
            after_gap.append(event)
        pos = nl + 1
    if gap_at is not None:
        return Scan(chain, good_end, n, junk_lines=junk, gap_at=gap_at, after_gap=after_gap)
    tail_start = good_end if good_end < n else None
    return Scan(chain, good_end, n, tail_start=tail_start, tail_lines=pending_lines, junk_lines=junk)


def _chains(event: Event, last: int, at_head: bool) -> bool:
    if isinstance(event, BaseEvent):
        return at_head and event.seq >= 1
    return event.seq == last + 1
