"""Every recorded body in fixtures/ gives exactly the outcome its INDEX.md row names."""

from __future__ import annotations

import json

import msgspec
import pytest

from cli.endpoint._content import NoText
from cli.endpoint._errors import APIError, HTTPStatusError, InvalidResponse, StreamErrorEvent
from cli.endpoint._error_body import http_error
from cli.endpoint._response import parse_chat_response
from cli.endpoint._sse import SSEDecoder
from cli.endpoint._results import StreamResult
from cli.endpoint._stream import StreamAccumulator
from cli.endpoint._wire import ChatCompletionChunk, ChatCompletionResponse

from .conftest import FIXTURES, fixture_bytes

# file -> (outcome, detail). outcome: "text" (detail: the exact text, or (prefix, suffix)),
# a NoText member (detail: checked below per file), or "reject".
EXPECT = {
    "openai_basic.json": ("text", "I'm unable to provide real-time weather updates. To get the current weather in San"
                          " Francisco, I recommend checking a reliable weather website or app like the Weather"
                          " Channel or a local news station."),
    "openai_refusal.json": (NoText.REFUSAL, "I'm very sorry, but I can't assist with that."),
    "openai_tool_calls_parallel.json": (NoText.TOOL_CALLS, ["GetWeatherArgs", "get_stock_price"]),
    "openai_n3_choices.json": ("text", '{"city":"San Francisco","temperature":64,"units":"f"}'),
    "openai_length.json": ("text", '{"'),
    "sse_openai_basic_usage.txt": ("text", ("I'm unable to provide real-time weather updates.", "or a weather app.")),
    "sse_openai_tool_call.txt": (NoText.TOOL_CALLS, ["GetWeatherArgs"]),
    "sse_openai_refusal.txt": (NoText.REFUSAL, "I'm sorry, I can't assist with that request."),
    "sse_openai_n3_interleaved.txt": ("text", '{"city":"San Francisco","temperature":65,"units":"f"}'),
    "azure_function_call_finish_no_call.json": (NoText.EMPTY, None),
    "vllm_basic_v0_6.json": ("text", "Random Number Generator Produces Smallest Possible Result"),
    "sse_vllm_continuous_usage.txt": ("text", "Hello Sam. It's nice to meet you. Is there something I can help you"
                                      " with or would you like to chat?"),
    "vllm_basic_v0_8.json": ("text", ("I don't have the capability", "I hope you enjoy the chat with me!")),
    "vllm_error_404_v0_8.json": ("reject", "The model `openai/whisper-tiny.en` does not exist."),
    "tgi_basic_length.json": ("text", ("As of your last question, the weather in Brooklyn", "around 73°F or 23°C")),
    "tgi_tool_call.json": (NoText.TOOL_CALLS, ["get_current_weather"]),
    "tgi_tool_call_legacy_v2_0.json": (NoText.TOOL_CALLS, ["get_current_weather"]),
    "tgi_stream_tool_call_legacy_v2_0_chunk.json": (NoText.TOOL_CALLS, [None]),
    "sse_tgi_error_midstream_v2_1.txt": ("reject", "Input validation error"),
}


def test_every_fixture_has_an_expectation_and_an_index_row() -> None:
    files = {p.name for p in FIXTURES.iterdir() if p.name != "INDEX.md"}
    assert files == set(EXPECT)
    index = (FIXTURES / "INDEX.md").read_text()
    for name in files:
        assert f"| {name} |" in index


def run_stream(body: bytes) -> StreamResult:
    """Decode and accumulate a whole SSE body as the transport does, without the network."""
    decoder, acc = SSEDecoder(), StreamAccumulator("test")
    for event in [*decoder.feed(body), *decoder.flush()]:
        if acc.feed(event):
            return acc.result("done")
    return acc.end_of_body()


def outcome(name: str):
    body = fixture_bytes(name)
    if name.startswith("sse_"):
        return run_stream(body).content
    if name == "tgi_stream_tool_call_legacy_v2_0_chunk.json":  # a chunk, not a reply: see below
        return run_stream(b"data: " + json.dumps(json.loads(body)).encode() + b"\n\n").content
    return parse_chat_response(body).content


@pytest.mark.parametrize("name", sorted(n for n, (kind, _) in EXPECT.items() if kind == "text"))
def test_text_fixtures(name: str) -> None:
    expected = EXPECT[name][1]
    content = outcome(name)
    assert content.no_text is None
    if isinstance(expected, tuple):
        assert content.text.startswith(expected[0]) and content.text.endswith(expected[1])
    else:
        assert content.text == expected
    assert content.reasoning is None


def test_length_fixtures_are_flagged_truncated_but_kept() -> None:
    for name in ("openai_length.json", "tgi_basic_length.json"):
        content = outcome(name)
        assert content.truncated and content.text
    assert not outcome("openai_basic.json").truncated


@pytest.mark.parametrize("name", ["openai_refusal.json", "sse_openai_refusal.txt"])
def test_refusal_fixtures(name: str) -> None:
    content = outcome(name)
    assert content.no_text is NoText.REFUSAL and content.text is None
    assert content.refusal == EXPECT[name][1]
    assert EXPECT[name][1] in content.explain()


@pytest.mark.parametrize("name", sorted(n for n, (kind, _) in EXPECT.items() if kind is NoText.TOOL_CALLS))
def test_tool_call_fixtures(name: str) -> None:
    content = outcome(name)
    assert content.no_text is NoText.TOOL_CALLS and content.text is None
    assert [call.name for call in content.tool_calls] == EXPECT[name][1]
    assert "bai runs no tools" in content.explain()


def test_tool_call_details() -> None:
    streamed = outcome("sse_openai_tool_call.txt").tool_calls[0]
    assert streamed.id == "call_c91SqDXlYFuETYv8mUHzz6pp"
    assert streamed.arguments == '{"city":"Edinburgh","country":"UK","units":"c"}'
    legacy = outcome("tgi_tool_call_legacy_v2_0.json").tool_calls[0]
    assert legacy.id == "0"  # integer id
    assert json.loads(legacy.arguments) == {"format": "celsius", "location": "Brooklyn"}  # object arguments
    assert outcome("tgi_tool_call.json").tool_calls[0].id == "0"
    eos = outcome("tgi_stream_tool_call_legacy_v2_0_chunk.json")
    assert eos.tool_calls[0].arguments == "</s>" and eos.finish_reason == "eos_token"


def test_azure_function_call_finish_without_call_is_empty() -> None:
    content = outcome("azure_function_call_finish_no_call.json")
    assert content.no_text is NoText.EMPTY and content.tool_calls == ()
    assert content.finish_reason == "function_call"
    assert "empty" in content.explain()


def test_chunk_given_to_response_type_raises_validation_error() -> None:
    chunk = fixture_bytes("tgi_stream_tool_call_legacy_v2_0_chunk.json")
    with pytest.raises(msgspec.ValidationError, match="message"):
        msgspec.json.decode(chunk, type=ChatCompletionResponse)
    assert msgspec.json.decode(chunk, type=ChatCompletionChunk).choices[0].finish_reason == "eos_token"
    with pytest.raises(InvalidResponse, match="not a chat completion"):
        parse_chat_response(chunk)


def test_vllm_flat_error_is_rejected_both_as_200_and_as_404() -> None:
    body = fixture_bytes("vllm_error_404_v0_8.json")
    with pytest.raises(APIError) as in_200:
        parse_chat_response(body)
    assert in_200.value.info.kind == "flat" and in_200.value.info.code == 404
    err = http_error("http://h/v1/chat/completions", 404, "Not Found", body, "application/json")
    assert type(err) is HTTPStatusError and err.status == 404
    assert str(err) == ("HTTP 404 Not Found from http://h/v1/chat/completions: "
                        "The model `openai/whisper-tiny.en` does not exist.")


def test_tgi_error_midstream_is_rejected_with_the_text_so_far() -> None:
    with pytest.raises(StreamErrorEvent) as caught:
        run_stream(fixture_bytes("sse_tgi_error_midstream_v2_1.txt"))
    err = caught.value
    assert err.info.kind == "tgi" and err.info.type == "validation"
    assert "Input validation error" in str(err) and "after 4 characters" in str(err)
    assert err.context_length is not None
    assert (err.context_length.context_window, err.context_length.prompt_tokens,
            err.context_length.completion_tokens) == (4096, 6, 4091)


def test_whole_body_rides_through() -> None:
    result = parse_chat_response(fixture_bytes("openai_basic.json"))
    assert result.body == json.loads(fixture_bytes("openai_basic.json"))
    assert result.body["system_fingerprint"] == "fp_b40fb1c6fb"
    assert result.body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 0}
    assert result.usage.prompt_tokens == 14 and result.model == "gpt-4o-2024-08-06"
    vllm = parse_chat_response(fixture_bytes("vllm_basic_v0_6.json"))
    assert vllm.body["choices"][0]["stop_reason"] is None and "prompt_logprobs" in vllm.body
    azure = parse_chat_response(fixture_bytes("azure_function_call_finish_no_call.json"))
    assert azure.body["prompt_filter_results"][0]["prompt_index"] == 0


def _reference_text(body: bytes) -> str:
    """An independent oracle: stdlib json over the `data: {...}` lines, index 0 content only."""
    out = []
    for line in body.decode().splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:]).get("choices", []):
                if choice["index"] == 0 and choice["delta"].get("content"):
                    out.append(choice["delta"]["content"])
    return "".join(out)


@pytest.mark.parametrize("name", sorted(n for n in EXPECT if n.startswith("sse_") and EXPECT[n][0] != "reject"))
def test_streams_end_with_done_and_match_the_oracle(name: str) -> None:
    body = fixture_bytes(name)
    result = run_stream(body)
    assert result.ended == "done" and result.ok
    assert (result.text or "") == _reference_text(body)
    last_usage = [json.loads(l[6:])["usage"] for l in body.decode().splitlines()
                  if l.startswith("data: {") and json.loads(l[6:]).get("usage")][-1]
    assert msgspec.to_builtins(result.usage) == {k: last_usage[k] for k in ("prompt_tokens", "completion_tokens",
                                                                            "total_tokens")}
    assert result.body["usage"] == last_usage  # usage details ride through as sent
