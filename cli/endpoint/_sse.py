"""Server-sent events: bytes in, events out. Pure, no I/O.

Follows the WHATWG event-stream rules where they matter for chat servers:
- lines end in LF, CRLF or CR, also when a CRLF is split across two reads;
- `data:` with or without the space; several `data:` lines join with "\\n";
- `:` lines are comments (keep-alives); `event:` names the event; `id:` is kept; `retry:` ignored;
- a blank line dispatches the event; an event without data lines is not dispatched.
Beyond the spec: an `error:` field (older llama.cpp servers wrote `error: {...}`) makes an
event of type "error" whose data is the field's value.

Bytes are split into lines before decoding, so a UTF-8 character split across reads is whole
by the time it is decoded (LF and CR never occur inside a multi-byte character).

`buffered` is what the decoder holds for the event in progress (an unfinished line and its
data lines so far): the caller bounds it, as a server may send one endless line.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None
    at_eof: bool = False  # dispatched by flush(): its last line may have been cut off


class SSEDecoder:
    """Feed it the body as it arrives; it returns the events completed so far."""

    def __init__(self) -> None:
        self._tail = bytearray()  # an incomplete line
        self._skip_lf = False  # the last read ended in CR: a LF opening the next one belongs to it
        self._started = False
        self._data: list[str] = []
        self._data_size = 0
        self._event: str | None = None
        self._id: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes (and characters) held for the event in progress."""
        return len(self._tail) + self._data_size

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if not chunk:
            return []
        if b"\n" not in chunk and b"\r" not in chunk:  # mid-line: no rescanning of a long line
            self._tail += chunk
            return []
        self._tail += chunk
        lines = self._tail.splitlines(keepends=True)
        last = lines[-1]
        if last.endswith((b"\n", b"\r")):
            self._tail = bytearray()
        else:
            self._tail = bytearray(last)
            lines.pop()
        # Only a CR ending the whole read can be the first half of a CRLF.
        self._skip_lf = not self._tail and lines[-1].endswith(b"\r")
        events: list[ServerSentEvent] = []
        for line in lines:
            self._process(bytes(line).rstrip(b"\r\n"), events)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """At the end of the body: the last line and the last event, even without a blank line.

        Servers that close right after their last `data:` line lose nothing; events marked
        `at_eof` may be cut off, and the caller decides what a broken one means.
        """
        events: list[ServerSentEvent] = []
        if self._tail:
            self._process(bytes(self._tail), events)
            self._tail = bytearray()
        self._dispatch(events, at_eof=True)
        return events

    def _process(self, raw: bytes, events: list[ServerSentEvent]) -> None:
        line = raw.decode("utf-8", "replace")
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            return
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "error":
            self._event = "error"
            self._data.append(value)
            self._data_size += len(value)

    def _dispatch(self, events: list[ServerSentEvent], *, at_eof: bool = False) -> None:
        if self._data:
            events.append(ServerSentEvent("\n".join(self._data), self._event or "message", self._id, at_eof))
        self._data = []
        self._data_size = 0
        self._event = None
