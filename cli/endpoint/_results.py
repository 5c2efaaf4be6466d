"""What a chat request returns: a whole reply (`ChatResult`) or a stream's (`StreamResult`).

Imports nothing of the errors, error bodies or streams: `_errors` names `StreamResult` as the
`partial` of a broken stream, and this module must not need `_errors` back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ._content import AssistantContent, HasAssistantContent
from ._wire import ChatCompletionResponse, Usage

__all__ = ["ChatResult", "Ended", "StreamResult"]

Ended = Literal["done", "closed", "error", "interrupted"]


@dataclass(frozen=True, slots=True)
class ChatResult(HasAssistantContent):
    response: ChatCompletionResponse  # the validated view
    body: dict[str, Any]  # the whole decoded body: usage details, system_fingerprint, telemetry
    content: AssistantContent

    @property
    def usage(self) -> Usage | None:
        return self.response.usage

    @property
    def model(self) -> str | None:
        return self.response.model


@dataclass(frozen=True, slots=True)
class StreamResult(HasAssistantContent):
    """What a stream delivered. `ended`: "done" ([DONE]), "closed" (closed after a finish_reason),
    or, on the `partial` of an exception, "error" / "interrupted"."""

    content: AssistantContent
    ended: Ended
    usage: Usage | None
    model: str | None
    body: dict[str, Any]  # a chat.completion object assembled from the chunks, extras kept
    chunks: int

    @property
    def ok(self) -> bool:
        """The stream ended normally: the answer is complete and may be recorded."""
        return self.ended in ("done", "closed")
