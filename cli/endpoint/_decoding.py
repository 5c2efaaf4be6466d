"""Content-Encoding undone in bounded steps: bytes in, bytes out. Pure, no I/O.

httpx unpacks a gzip body a whole network read at a time: 64 KiB of a gzip bomb become 64 MiB
at once, and a 1 MB body gigabytes. Here each step yields at most STEP bytes, so the reader
stops at its own bound (32 MiB) having unpacked little more; and a body that unpacks to over
RATIO times its size (after the first FREE bytes) is refused as it happens, since the reader of
a stream keeps nothing of keep-alive comments and would otherwise unpack all of them.

gzip and deflate (both framings) are read, several in a row too; `identity` is nothing to undo.
Any other coding raises `UnsupportedEncoding` (bai asks only for gzip and deflate).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

__all__ = ["ACCEPT_ENCODING", "BodyDecodingError", "CompressionBomb", "ContentDecoder", "UnsupportedEncoding"]

ACCEPT_ENCODING = "gzip, deflate"
STEP = 64 * 1024
FREE = 1024 * 1024
RATIO = 100  # real replies unpack to 3-20 times their size; a bomb to about 1000


class BodyDecodingError(ValueError):
    """The body's encoding is broken (the message says how)."""


class UnsupportedEncoding(BodyDecodingError):
    pass


class CompressionBomb(BodyDecodingError):
    pass


class _Inflater:
    """One gzip or deflate layer. Deflate comes with a zlib header or raw (servers differ):
    the first bytes decide."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        gzip = coding in ("gzip", "x-gzip")
        self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._may_be_raw = not gzip
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data and not self._obj.eof:
            try:
                out = self._obj.decompress(data, STEP)
            except zlib.error as exc:
                if self._may_be_raw and not self._started:  # raw deflate, without the zlib header
                    self._obj, self._may_be_raw = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                raise BodyDecodingError(f"its {self.coding} encoding is broken ({exc})") from None
            self._started = True
            data = self._obj.unconsumed_tail
            if out:
                yield out

    def flush(self) -> Iterator[bytes]:
        # What is left after the last input: bounded too (flush() has no max_length).
        while not self._obj.eof:
            out = self._obj.decompress(self._obj.unconsumed_tail, STEP)
            if not out:
                break
            yield out


class ContentDecoder:
    def __init__(self, content_encoding: str | None) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        for coding in codings:
            if coding not in ("gzip", "x-gzip", "deflate"):
                raise UnsupportedEncoding(f"it is encoded as {coding!r}, which bai cannot read")
        self._layers = [_Inflater(c) for c in reversed(codings)]  # the last coding applied comes off first
        self.received = 0  # bytes as sent
        self.decoded = 0  # bytes unpacked

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.received += len(data)
        return self._through(0, data)

    def flush(self) -> Iterator[bytes]:
        for n, layer in enumerate(self._layers):
            for out in layer.flush():
                yield from self._through(n + 1, out)

    def _through(self, n: int, data: bytes) -> Iterator[bytes]:
        if n == len(self._layers):
            if data:
                self.decoded += len(data)
                if self._layers and self.decoded > FREE + RATIO * self.received:
                    raise CompressionBomb(f"it unpacks to over {RATIO} times its size (a compression bomb)")
                yield data
            return
        for out in self._layers[n].feed(data):
            yield from self._through(n + 1, out)
