"""The assistant text of a reply, or why there is none.

One set of rules for whole replies and streams (DESIGN.md, "Wire types"):
- only the choice whose `index` is 0 counts (a choice without `index` takes its list position);
- `content` is a string, or a list of parts whose `text` parts are joined;
- reasoning (`reasoning_content`, `reasoning`, `thinking`, thinking parts) is never the answer;
- null, empty or whitespace-only content, a refusal, tool calls (also the legacy
  `function_call`), no choices: no text, and `AssistantContent.explain()` says why.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from ._text import one_line
from ._wire import ChatCompletionResponse, Content, FunctionCall, ToolCall

__all__ = [
    "AssistantContent",
    "NoText",
    "ToolCallInfo",
    "assistant_content",
    "classify",
    "split_content",
    "pick_reasoning",
]

_TEXT_PARTS = frozenset({"text", "output_text"})
_THINKING_PARTS = frozenset({"thinking", "reasoning", "redacted_thinking"})


class NoText(enum.Enum):
    """Why a reply has no assistant text."""

    NO_CHOICES = "no_choices"  # `choices: []`
    NO_CHOICE_ZERO = "no_choice_zero"  # choices, but none with index 0
    REFUSAL = "refusal"
    TOOL_CALLS = "tool_calls"  # also the legacy `function_call`
    CONTENT_FILTER = "content_filter"
    REASONING_ONLY = "reasoning_only"  # e.g. max_tokens ran out while the model was thinking
    EMPTY = "empty"  # null, "" or whitespace only


@dataclass(frozen=True, slots=True)
class ToolCallInfo:
    id: str | None
    name: str | None
    arguments: str  # as sent, JSON-encoded when the server sent an object

    def describe(self, limit: int = 80) -> str:
        """One line for the user (a server's text: control sequences removed)."""
        return f"{one_line(self.name or '(unnamed)', limit)}({one_line(self.arguments, limit)})"


@dataclass(frozen=True, slots=True)
class AssistantContent:
    """The outcome: `text`, or `no_text` saying why not."""

    text: str | None
    no_text: NoText | None
    finish_reason: str | None = None
    refusal: str | None = None
    reasoning: str | None = None
    tool_calls: tuple[ToolCallInfo, ...] = ()
    content: str | None = None  # the joined content as sent, even when it is only whitespace

    @property
    def truncated(self) -> bool:
        """The answer was cut at max_tokens (it is still the answer the user saw)."""
        return self.finish_reason == "length"

    def explain(self) -> str:
        """One line for the user on why there is no text ("" when there is)."""
        reason = self.no_text
        if reason is None:
            return ""
        if reason is NoText.NO_CHOICES:
            return "the endpoint answered with no choices"
        if reason is NoText.NO_CHOICE_ZERO:
            return "the endpoint's answer has no choice with index 0"
        if reason is NoText.REFUSAL:
            return f"the model refused: {one_line(self.refusal or '')}"
        if reason is NoText.TOOL_CALLS:
            calls = ", ".join(call.describe() for call in self.tool_calls)
            return f"the model asked to call a tool instead of answering: {calls} (bai runs no tools)"
        if reason is NoText.CONTENT_FILTER:
            return "the answer was withheld by the endpoint's content filter"
        cut = " before max_tokens ran out" if self.truncated else ""
        if reason is NoText.REASONING_ONLY:
            return f"the model only reasoned ({len(self.reasoning or '')} characters) and gave no answer{cut}"
        if self.content is None:
            what = "no content"
        elif self.content == "":
            what = "empty content"
        else:
            what = "only whitespace"
        tail = f" (finish_reason: {one_line(self.finish_reason, 40)})" if self.finish_reason not in (None, "stop") else ""
        return f"the model answered with {what}{tail}"


class HasAssistantContent:
    """`text` and `finish_reason` of a reply, for results that hold an AssistantContent."""

    __slots__ = ()
    content: AssistantContent

    @property
    def text(self) -> str | None:
        return self.content.text

    @property
    def finish_reason(self) -> str | None:
        return self.content.finish_reason


def _part_text(value: Any) -> str:
    """Text of a thinking part's payload: a string, or a list of text parts (Mistral)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(item["text"] for item in value if isinstance(item, dict) and isinstance(item.get("text"), str))
    return ""


def split_content(content: Content) -> tuple[str | None, str, str]:
    """(text, reasoning, refusal) of a `content` value; text is None for null content."""
    if content is None or isinstance(content, str):
        return content, "", ""
    text, reasoning, refusal = [], [], []
    for part in content:
        if part.type in _THINKING_PARTS:
            reasoning.append(_part_text(part.thinking) or _part_text(part.reasoning) or (part.text or ""))
        elif part.type == "refusal":
            refusal.append(part.refusal or part.text or "")
        elif part.text is not None and (part.type is None or part.type in _TEXT_PARTS):
            text.append(part.text)
    return "".join(text), "".join(reasoning), "".join(refusal)


def pick_reasoning(*candidates: str | None) -> str:
    """The reasoning text of one message or delta.

    vLLM sends the same text as both `reasoning_content` and `reasoning`; taking the first
    non-empty one counts it once.
    """
    for value in candidates:
        if value:
            return value
    return ""


def arguments_text(arguments: Any) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return msgspec.json.encode(arguments).decode()  # TGI 2.0: an object, not a string


def tool_call_info(call: ToolCall) -> ToolCallInfo:
    function = call.function or FunctionCall()
    call_id = None if call.id in (None, "") else str(call.id)
    return ToolCallInfo(call_id, function.name, arguments_text(function.arguments))


def classify(
    content: str | None,
    *,
    finish_reason: str | None = None,
    refusal: str = "",
    reasoning: str = "",
    tool_calls: Iterable[ToolCallInfo] = (),
) -> AssistantContent:
    """Apply the no-text rules to one assembled message (from a reply or a stream)."""
    calls = tuple(tool_calls)
    fields = dict(
        finish_reason=finish_reason,
        refusal=refusal or None,
        reasoning=reasoning or None,
        tool_calls=calls,
        content=content,
    )
    if content is not None and content.strip():
        return AssistantContent(text=content, no_text=None, **fields)
    if refusal.strip():
        reason = NoText.REFUSAL
    elif calls:
        reason = NoText.TOOL_CALLS
    elif finish_reason == "content_filter":
        reason = NoText.CONTENT_FILTER
    elif reasoning.strip():
        reason = NoText.REASONING_ONLY
    else:
        reason = NoText.EMPTY
    return AssistantContent(text=None, no_text=reason, **fields)


def assistant_content(response: ChatCompletionResponse) -> AssistantContent:
    """The assistant text of a whole (non-streamed) reply, or why there is none."""
    if not response.choices:
        return AssistantContent(text=None, no_text=NoText.NO_CHOICES)
    choice = next(
        (c for pos, c in enumerate(response.choices) if (pos if c.index is None else c.index) == 0),
        None,
    )
    if choice is None:
        return AssistantContent(text=None, no_text=NoText.NO_CHOICE_ZERO)
    message = choice.message
    text, part_reasoning, part_refusal = split_content(message.content)
    calls = [tool_call_info(call) for call in message.tool_calls or ()]
    legacy = message.function_call
    if legacy is not None and (legacy.name or legacy.arguments):
        calls.append(tool_call_info(ToolCall(function=legacy)))
    return classify(
        text,
        finish_reason=choice.finish_reason,
        refusal=(message.refusal or "") + part_refusal,
        reasoning=pick_reasoning(message.reasoning_content, message.reasoning, message.thinking) + part_reasoning,
        tool_calls=calls,
    )
