"""The stream accumulator: how each server's streams end, fail and carry text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.endpoint._content import NoText
from cli.endpoint._errors import InvalidResponse, StreamErrorEvent, StreamInterrupted
from cli.endpoint._sse import SSEDecoder
from cli.endpoint._results import StreamResult
from cli.endpoint._stream import StreamAccumulator


def sse(*items: Any) -> bytes:
    """An SSE body: dicts become `data: <json>`, bytes are sent as they are."""
    out = b""
    for item in items:
        out += item if isinstance(item, bytes) else b"data: " + json.dumps(item).encode() + b"\n\n"
    return out


def chunk(content: str | None = None, *, index: int = 0, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    if content is not None:
        delta["content"] = content
    return {"object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


DONE = b"data: [DONE]\n\n"


def run(body: bytes, pieces: list[str] | None = None, reasoning: list[str] | None = None) -> StreamResult:
    decoder = SSEDecoder()
    acc = StreamAccumulator("http://h/v1/chat/completions", on_text=None if pieces is None else pieces.append,
                            on_reasoning=None if reasoning is None else reasoning.append)
    for event in [*decoder.feed(body), *decoder.flush()]:
        if acc.feed(event):
            return acc.result("done")
    return acc.end_of_body()


def test_text_is_handed_on_piece_by_piece() -> None:
    pieces: list[str] = []
    result = run(sse(chunk("", role="assistant"), chunk("Hel"), chunk("lo"), chunk(finish="stop")) + DONE, pieces)
    assert pieces == ["Hel", "lo"] and result.text == "Hello" and result.ended == "done"


def test_close_after_finish_reason_without_done_is_normal() -> None:
    result = run(sse(chunk("Hi"), chunk(finish="stop", usage=None)))
    assert result.ended == "closed" and result.ok and result.text == "Hi"


def test_close_without_done_or_finish_is_interrupted() -> None:
    with pytest.raises(StreamInterrupted, match="after 2 characters"):
        run(sse(chunk("Hi")))


def test_cut_off_last_event_is_interrupted_not_invalid() -> None:
    with pytest.raises(StreamInterrupted, match="cut off"):
        run(sse(chunk("Hi")) + b'data: {"choices": [{"ind')


def test_non_json_event_mid_stream_is_invalid() -> None:
    with pytest.raises(InvalidResponse, match="not JSON"):
        run(sse(chunk("Hi")) + b"data: keep-alive\n\n" + DONE)


def test_vllm_error_event_then_done() -> None:
    error = {"error": {"object": "error", "message": "Internal server error", "type": "InternalServerError",
                       "param": None, "code": 500}}
    with pytest.raises(StreamErrorEvent) as caught:
        run(sse(chunk("Par"), error) + DONE)
    assert caught.value.status == 500 and caught.value.info.message == "Internal server error"
    assert "after 3 characters" in str(caught.value)


def test_llama_cpp_error_line_and_event_error() -> None:
    line = b'error: {"code":500,"message":"slot unavailable","type":"server_error"}\n\n'
    with pytest.raises(StreamErrorEvent, match="slot unavailable"):
        run(sse(chunk("a")) + line)
    with pytest.raises(StreamErrorEvent, match="overloaded"):
        run(sse(chunk("a")) + b'event: error\ndata: {"message": "overloaded"}\n\n')
    with pytest.raises(StreamErrorEvent, match="plain words"):
        run(b"event: error\ndata: plain words\n\n")


def test_usage_only_chunks_empty_and_litellm_shape() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    openai = run(sse(chunk("ok"), chunk(finish="stop"), {"choices": [], "usage": usage}) + DONE)
    litellm = run(sse(chunk("ok"), chunk(finish="stop"), {"choices": [{"index": 0, "delta": {}}], "usage": usage})
                  + DONE)
    for result in (openai, litellm):
        assert result.text == "ok" and result.usage.total_tokens == 7 and result.finish_reason == "stop"


def test_azure_empty_first_chunk_and_filter_chunk_without_delta() -> None:
    first = {"id": "", "object": "", "created": 0, "model": "", "choices": [],
             "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}
    filtered = {"choices": [{"index": 0, "finish_reason": None, "content_filter_results": {}}]}
    result = run(sse(first, chunk("Hi"), filtered, chunk(finish="stop")) + DONE)
    assert result.text == "Hi" and result.model == "m"
    assert result.body["prompt_filter_results"][0]["prompt_index"] == 0


def test_interleaved_choices_only_index_zero_is_text() -> None:
    pieces: list[str] = []
    result = run(sse(chunk("A", index=0), chunk("X", index=1), chunk("B", index=0), chunk("Y", index=2),
                     chunk(index=1, finish="stop"), chunk(index=0, finish="length")) + DONE, pieces)
    assert pieces == ["A", "B"] and result.text == "AB" and result.finish_reason == "length"


def test_reasoning_streams_apart_and_counts_once() -> None:
    pieces: list[str] = []
    thoughts: list[str] = []
    body = sse(chunk(reasoning_content="Let", reasoning="Let"), chunk(reasoning="me"), chunk("42"),
               chunk(finish="stop")) + DONE
    result = run(body, pieces, thoughts)
    assert pieces == ["42"] and thoughts == ["Let", "me"] and result.content.reasoning == "Letme"
    only = run(sse(chunk(reasoning_content="hmm"), chunk(finish="length")) + DONE)
    assert only.content.no_text is NoText.REASONING_ONLY


def test_refusal_and_whitespace_streams_have_no_text() -> None:
    refused = run(sse(chunk(None, refusal="No"), chunk(None, refusal="pe"), chunk(finish="stop")) + DONE)
    assert refused.content.no_text is NoText.REFUSAL and refused.content.refusal == "Nope"
    blank = run(sse(chunk("\n"), chunk("  "), chunk(finish="stop")) + DONE)
    assert blank.content.no_text is NoText.EMPTY and blank.body["choices"][0]["message"]["content"] == "\n  "


def test_tool_call_fragments_assembled_by_index() -> None:
    frag = lambda i, **f: {"index": i, "function": f}  # noqa: E731
    body = sse(
        chunk(tool_calls=[{**frag(0, name="a", arguments=""), "id": "c0", "type": "function"}]),
        chunk(tool_calls=[{**frag(1, name="b", arguments='{"y"'), "id": 7}]),
        chunk(tool_calls=[frag(0, arguments='{"x": 1}')]),
        chunk(tool_calls=[frag(1, arguments=": 2}")]),
        chunk(finish="tool_calls"),
    ) + DONE
    result = run(body)
    calls = [(c.id, c.name, c.arguments) for c in result.content.tool_calls]
    assert calls == [("c0", "a", '{"x": 1}'), ("7", "b", '{"y": 2}')]
    assert result.body["choices"][0]["message"]["tool_calls"][1]["function"]["name"] == "b"


def test_legacy_function_call_stream() -> None:
    result = run(sse(chunk(function_call={"name": "f", "arguments": "{"}), chunk(function_call={"arguments": "}"}),
                     chunk(finish="function_call")) + DONE)
    assert result.content.no_text is NoText.TOOL_CALLS and result.content.tool_calls[0].arguments == "{}"


def test_assembled_body_keeps_the_extras() -> None:
    last = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            "timings": {"predicted_n": 1}, "system_fingerprint": "b11434", "id": "chatcmpl-1"}
    result = run(sse(chunk("x"), chunk(finish="stop"), last) + DONE)
    assert result.body["timings"] == {"predicted_n": 1} and result.body["id"] == "chatcmpl-1"
    assert result.body["object"] == "chat.completion" and result.chunks == 3


def test_chunk_of_the_wrong_shape_is_invalid() -> None:
    with pytest.raises(InvalidResponse, match="chat.completion.chunk"):
        run(sse({"choices": [{"index": 0, "delta": {"content": 3}}]}) + DONE)


def test_a_long_stream_keeps_every_piece_in_order():
    # More pieces than one block holds: the text is kept in joined blocks, none lost or reordered.
    import json as _json

    from cli.endpoint._sse import SSEDecoder
    from cli.endpoint._stream import StreamAccumulator

    pieces = [f"<{i}>" for i in range(1000)]
    seen = []
    acc = StreamAccumulator("http://127.0.0.1/v1/chat/completions", on_text=seen.append)
    decoder = SSEDecoder()
    for i, piece in enumerate(pieces):
        chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": "stop" if i == 999 else None}]}
        for event in decoder.feed(f"data: {_json.dumps(chunk)}\n\n".encode()):
            acc.feed(event)
    for event in decoder.feed(b"data: [DONE]\n\n"):
        assert acc.feed(event)
    result = acc.result("done")
    assert seen == pieces and result.text == "".join(pieces)
    assert acc.received == len("".join(pieces))
