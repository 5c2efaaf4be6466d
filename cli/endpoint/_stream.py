"""Turning the events of a `stream: true` reply into text as it arrives, and a result at the end.

Pure, no I/O: the transport feeds events from `_sse.SSEDecoder` and reports how the body ended.
Only choice index 0 is text; other choices of an n>1 stream, usage-only chunks (`choices: []`, or
LiteLLM's `[{"index": 0, "delta": {}}]`) and Azure's empty first chunk add none. An error event
(vLLM's and llama.cpp's `{"error": {...}}`, TGI's `{"error": "...", "error_type"}`, an `error:`
line or `event: error`) raises `StreamErrorEvent`.

A stream ends normally with `[DONE]`, or with the server closing the body after index 0 got a
`finish_reason` (some servers send no `[DONE]`). Anything else raises `StreamInterrupted`.

Memory is bounded whatever the server sends: what is kept of the answer (text, reasoning,
refusal, tool calls) is at most `max_kept` characters, else `ReplyTooLarge`; pieces are joined
into blocks as they come (a str per piece would cost ~60 bytes each); of the other fields of
the chunks (`usage`, `timings`, ...) the last value of at most _MAX_EXTRAS keys is kept, from
events no larger than _MAX_EXTRAS_EVENT. Error events are scrubbed of the token (`redact`)
before they are read, so no cut can leave a prefix of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ._content import ToolCallInfo, arguments_text, classify, pick_reasoning, split_content
from ._error_body import detect_context_length, error_info_from_json, parse_error_body
from ._errors import InvalidResponse, ReplyTooLarge, StreamErrorEvent, StreamInterrupted
from ._limits import MAX_BODY
from ._results import Ended, StreamResult
from ._sse import ServerSentEvent
from ._text import NO_REDACTION, Redactor, one_line
from ._wire import ChatCompletionChunk, FunctionCall, NestedTooDeeply, ToolCall, Usage, decode_json

__all__ = ["StreamAccumulator"]

_BLOCK = 256
_CALL_COST = 64  # counted against max_kept for each tool call, whatever its size
_MAX_EXTRAS = 64
_MAX_EXTRAS_EVENT = 64 * 1024


class _Pieces:
    """Text arriving in pieces, joined into blocks of _BLOCK pieces; finished blocks are never
    copied again."""

    __slots__ = ("_blocks", "_tail", "size")

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._tail: list[str] = []
        self.size = 0

    def add(self, piece: str) -> None:
        self._tail.append(piece)
        self.size += len(piece)
        if len(self._tail) >= _BLOCK:
            self._blocks.append("".join(self._tail))
            self._tail = []

    def __bool__(self) -> bool:
        return bool(self._blocks or self._tail)

    def join(self) -> str:
        return "".join(self._blocks + self._tail)


@dataclass(slots=True)
class _PartialCall:
    id: str | None = None
    name: str | None = None
    arguments: _Pieces = field(default_factory=_Pieces)


class StreamAccumulator:
    def __init__(
        self,
        url: str = "the endpoint",
        on_text: Callable[[str], object] | None = None,
        on_reasoning: Callable[[str], object] | None = None,
        *,
        max_kept: int = MAX_BODY,
        redact: Redactor = NO_REDACTION,
    ) -> None:
        self._url = url
        self._on_text = on_text
        self._on_reasoning = on_reasoning
        self._max_kept = max_kept
        self._redact = redact
        self._kept = 0
        self._text = _Pieces()
        self._reasoning = _Pieces()
        self._refusal = _Pieces()
        self._calls: dict[Any, _PartialCall] = {}
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._model: str | None = None
        self._extras: dict[str, Any] = {}
        self._chunks = 0
        self.events = 0  # data events seen, [DONE] included

    @property
    def received(self) -> int:
        """Characters of answer text received so far."""
        return self._text.size

    def _keep(self, size: int) -> None:
        self._kept += size
        if self._kept > self._max_kept:
            raise ReplyTooLarge(self._url, "the streamed answer", self._max_kept)

    def feed(self, event: ServerSentEvent) -> bool:
        """Take one event; True when it was `[DONE]`. Calls `on_text` with each new piece."""
        self.events += 1
        if event.event == "error":
            raise self._error_event(event.data)
        if event.data.strip() == "[DONE]":
            return True
        try:
            data = decode_json(event.data)
        except msgspec.DecodeError as exc:
            if event.at_eof:  # the connection closed in the middle of this event
                raise StreamInterrupted(self._url, "the last event was cut off", received=self.received) from exc
            shown = self._redact.text(event.data)
            why = f" ({exc})" if isinstance(exc, NestedTooDeeply) else ""
            raise InvalidResponse(self._url, f"a stream event is not JSON{why}: {one_line(shown, 120)!r}",
                                  excerpt=shown[:200]) from exc
        if isinstance(data, dict) and data.get("error") and not data.get("choices"):
            raise self._error_event(event.data)
        try:
            chunk = msgspec.convert(data, ChatCompletionChunk)
        except msgspec.ValidationError as exc:
            raise InvalidResponse(self._url, f"a stream chunk does not fit the chat.completion.chunk shape: {exc}",
                                  excerpt=self._redact.text(event.data)[:200]) from exc
        self._take(chunk, data, len(event.data))
        return False

    def _error_event(self, raw: str) -> StreamErrorEvent:
        raw = self._redact.text(raw)  # before anything is cut to length
        try:
            data = decode_json(raw)
        except msgspec.DecodeError:
            data = None
        info = error_info_from_json(data) or parse_error_body(raw.encode())
        status = _status(info.code)
        return StreamErrorEvent(self._url, info, received=self.received, status=status,
                                context_length=detect_context_length(info))

    def _take(self, chunk: ChatCompletionChunk, data: dict[str, Any], size: int) -> None:
        self._chunks += 1
        if size <= _MAX_EXTRAS_EVENT:
            for key, value in data.items():  # id, created, system_fingerprint, timings, ...
                if key != "choices" and value is not None and value != "" \
                        and (key in self._extras or len(self._extras) < _MAX_EXTRAS):
                    self._extras[key] = value
        elif chunk.usage is not None:
            self._extras["usage"] = msgspec.structs.asdict(chunk.usage)
        if chunk.usage is not None:  # the last one wins: vLLM's continuous usage grows
            self._usage = chunk.usage
        if chunk.model:
            self._model = chunk.model
        for pos, choice in enumerate(chunk.choices):
            if (pos if choice.index is None else choice.index) != 0:
                continue
            if choice.finish_reason:
                self._finish = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            text, part_reasoning, part_refusal = split_content(delta.content)
            if text:
                self._keep(len(text))
                self._text.add(text)
                if self._on_text is not None:
                    self._on_text(text)
            reasoning = pick_reasoning(delta.reasoning_content, delta.reasoning, delta.thinking) + part_reasoning
            if reasoning:
                self._keep(len(reasoning))
                self._reasoning.add(reasoning)
                if self._on_reasoning is not None:
                    self._on_reasoning(reasoning)
            refusal = (delta.refusal or "") + part_refusal
            if refusal:
                self._keep(len(refusal))
                self._refusal.add(refusal)
            calls = delta.tool_calls
            for n, call in enumerate([calls] if isinstance(calls, ToolCall) else calls or ()):
                self._add_call(n if call.index is None else call.index, call.id, call.function)
            if delta.function_call is not None:
                self._add_call("function_call", None, delta.function_call)

    def _add_call(self, key: Any, call_id: str | int | None, function: FunctionCall | None) -> None:
        # Fragments: only the first carries id and name; arguments arrive in pieces.
        partial = self._calls.get(key)
        if partial is None:
            self._keep(_CALL_COST)
            partial = self._calls[key] = _PartialCall()
        if partial.id is None and call_id not in (None, ""):
            partial.id = str(call_id)
            self._keep(len(partial.id))
        if function is not None:
            if partial.name is None and function.name:
                partial.name = function.name
                self._keep(len(function.name))
            arguments = arguments_text(function.arguments)
            if arguments:
                self._keep(len(arguments))
                partial.arguments.add(arguments)

    def result(self, ended: Ended) -> StreamResult:
        text = self._text.join() if self._text else None
        reasoning = self._reasoning.join()
        refusal = self._refusal.join()
        calls = tuple(
            ToolCallInfo(c.id, c.name, c.arguments.join())
            for c in self._calls.values()
            if c.id or c.name or c.arguments
        )
        content = classify(text, finish_reason=self._finish, refusal=refusal, reasoning=reasoning, tool_calls=calls)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reasoning:
            message["reasoning_content"] = reasoning
        if refusal:
            message["refusal"] = refusal
        if calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ]
        body = {**self._extras, "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": self._finish}]}
        return StreamResult(content, ended, self._usage, self._model, body, self._chunks)

    def end_of_body(self) -> StreamResult:
        """The body ended without [DONE]: normal only after a finish_reason."""
        if self._finish is None:
            raise StreamInterrupted(self._url, "the server closed the stream without [DONE] or a finish_reason",
                                    received=self.received)
        return self.result("closed")


def _status(code: str | int | None) -> int:
    """The HTTP-like status an error event names in its `code`, else 200 (the stream's own)."""
    if isinstance(code, int) and 400 <= code <= 599:
        return code
    if isinstance(code, str) and code.isdigit() and 400 <= int(code) <= 599:
        return int(code)
    return 200
