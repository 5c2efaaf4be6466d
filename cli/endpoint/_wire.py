"""Wire types: msgspec Structs for what OpenAI-compatible servers send.

These are the schema, and decoding into them is the validation: a body that does not fit raises
`msgspec.ValidationError` naming the path (`$.choices[0].message.content`). Only the fields bai
reads are declared; every other key is ignored here and rides through in the decoded body kept
beside the Struct (`ChatResult.body`), so `usage` details, `system_fingerprint` and runtime
telemetry (vLLM, NIM, SGLang, llama.cpp `timings`) reach `--json` output untouched.

Strict on the path the history uses: a choice must carry `message`, and `message.content` must be
a string, a list of content parts or null. A streaming chunk (`delta` in place of `message`)
therefore fails `ChatCompletionResponse` at the boundary instead of passing as an empty answer.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = [
    "ChatCompletionChunk",
    "ChatCompletionResponse",
    "Choice",
    "ChunkChoice",
    "ContentPart",
    "Delta",
    "ErrorBody",
    "ErrorObject",
    "FunctionCall",
    "Message",
    "ModelCard",
    "ModelList",
    "ToolCall",
    "MAX_DEPTH",
    "NestedTooDeeply",
    "Usage",
    "decode_json",
]


MAX_DEPTH = 64  # nesting levels; a chat body needs about 8 (logprobs), a tool's arguments some more
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class NestedTooDeeply(msgspec.DecodeError):
    pass


def decode_json(data: bytes | str) -> Any:
    """Decode JSON to builtins; every failure is a `msgspec.DecodeError`.

    Nesting deeper than MAX_DEPTH is refused before decoding: a server's 100,000-deep body
    would otherwise end in RecursionError, here or later (encoding a decoded body for --json or
    the store recurses too, from deeper in the stack).
    """
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:  # else it cannot be that deep
        _check_depth(raw)
    try:
        return msgspec.json.decode(raw)
    except RecursionError:
        raise NestedTooDeeply(f"JSON is nested too deeply (over {MAX_DEPTH} levels)") from None


def _check_depth(raw: bytes) -> None:
    """Raise DecodeError if brackets outside strings nest deeper than MAX_DEPTH. At C speed:
    strings removed, then each pass takes away the innermost pairs, one level per pass."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS).replace(b"{", b"[").replace(b"}", b"]")
    for _ in range(MAX_DEPTH):
        if b"[]" not in brackets:
            return
        brackets = brackets.replace(b"[]", b"")
    if b"[]" in brackets:
        raise NestedTooDeeply(f"JSON is nested too deeply (over {MAX_DEPTH} levels)")


class FunctionCall(msgspec.Struct):
    name: str | None = None
    # A JSON-encoded string by the spec; TGI 2.0 sends a JSON object, streams send fragments.
    arguments: Any = None


class ToolCall(msgspec.Struct):
    id: str | int | None = None  # TGI 2.0 sends an integer
    type: str | None = None
    function: FunctionCall | None = None
    index: int | None = None  # stream deltas only: which call a fragment belongs to


class ContentPart(msgspec.Struct):
    """One part of a list-valued `content`: `text`, `refusal`, or a thinking part."""

    type: str | None = None
    text: str | None = None
    refusal: str | None = None
    # Thinking parts: a string, or (Mistral) a list of text parts; read leniently.
    thinking: Any = None
    reasoning: Any = None


Content = str | list[ContentPart] | None


class Message(msgspec.Struct):
    role: str | None = None
    content: Content = None
    refusal: str | None = None
    reasoning_content: str | None = None  # vLLM (older), SGLang, llama.cpp, LiteLLM
    reasoning: str | None = None  # vLLM (newer, often beside reasoning_content), Ollama
    thinking: str | None = None  # Ollama's native field, passed through by some proxies
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None  # legacy, pre tool_calls


class Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Choice(msgspec.Struct):
    message: Message  # required: this is what makes a chunk fail here
    index: int | None = None
    finish_reason: str | None = None


class ChatCompletionResponse(msgspec.Struct):
    """`POST /v1/chat/completions` with `stream: false`."""

    choices: list[Choice]
    model: str | None = None
    usage: Usage | None = None


class Delta(msgspec.Struct):
    role: str | None = None
    content: Content = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    thinking: str | None = None
    tool_calls: list[ToolCall] | ToolCall | None = None  # TGI 2.0 sends one object, not a list
    function_call: FunctionCall | None = None


class ChunkChoice(msgspec.Struct):
    delta: Delta | None = None  # Azure's content-filter chunks carry none
    index: int | None = None
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct):
    """One `data:` event of a `stream: true` reply."""

    # Empty on usage-only chunks and on Azure's prompt-filter first chunk.
    choices: list[ChunkChoice] = []
    model: str | None = None
    usage: Usage | None = None


class ModelCard(msgspec.Struct):
    id: str
    owned_by: str | None = None
    max_model_len: int | None = None  # vLLM only


class ModelList(msgspec.Struct):
    """`GET /v1/models`."""

    data: list[ModelCard] = []

    @property
    def first_id(self) -> str | None:
        return self.data[0].id if self.data else None

    def max_model_len(self, model: str | None = None) -> int | None:
        """The context window the server reports for `model` (default: the first), if any."""
        for card in self.data:
            if model is None or card.id == model:
                return card.max_model_len
        return None


# Error bodies. Their shapes differ by server and are read leniently (every field `Any`), then
# normalised by `_error_body.py`: an error body must never fail to parse into *something*.


class ErrorObject(msgspec.Struct):
    """OpenAI's nested `{"error": {...}}`; llama.cpp adds `n_prompt_tokens` and `n_ctx`."""

    message: Any = None
    type: Any = None
    param: Any = None
    code: Any = None
    n_prompt_tokens: Any = None
    n_ctx: Any = None


class ErrorBody(msgspec.Struct):
    """Any JSON error body.

    - OpenAI, llama.cpp, LiteLLM, newer vLLM: `{"error": {"message", "type", "param", "code"}}`
    - vLLM (flat, integer code): `{"object": "error", "message", "type", "param", "code"}`
    - TGI: `{"error": "text", "error_type": "validation"}`
    - FastAPI: `{"detail": "text"}` or `{"detail": [{"loc", "msg", "type"}, ...]}`
    """

    error: Any = None
    error_type: Any = None
    object: Any = None
    message: Any = None
    type: Any = None
    param: Any = None
    code: Any = None
    detail: Any = None
