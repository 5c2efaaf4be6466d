"""Generated bodies (random extras, nulls, missing keys, wrong types, garbage bytes) never raise
anything but the hierarchy's errors, and the SSE decoder does not care where reads split."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.endpoint._content import NoText, classify
from cli.endpoint._error_body import http_error, parse_error_body
from cli.endpoint._errors import APIError, EndpointError, UnexpectedEventStream
from cli.endpoint._response import parse_chat_response, parse_model_list
from cli.endpoint._sse import SSEDecoder
from cli.endpoint._stream import StreamAccumulator

from .conftest import FIXTURES, fixture_bytes

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaves = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
KEYS = ["choices", "message", "delta", "content", "index", "finish_reason", "tool_calls", "function", "arguments",
        "name", "id", "refusal", "reasoning_content", "reasoning", "usage", "prompt_tokens", "error", "type", "text",
        "data", "model", "max_model_len", "function_call", "thinking", "code", "message"]


def mutate(data: st.DataObject, value: Any) -> Any:
    """Walk a real body, now and then dropping keys, nulling, retyping, or adding extras."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            action = data.draw(st.sampled_from(["keep"] * 4 + ["walk"] * 4 + ["drop", "null", "retype"]))
            if action == "drop":
                continue
            out[key] = {"keep": item, "null": None}.get(action) if action in ("keep", "null") else (
                mutate(data, item) if action == "walk" else data.draw(json_values))
        if data.draw(st.integers(0, 4)) == 0:
            out[data.draw(st.sampled_from(KEYS) | st.text(max_size=6))] = data.draw(json_values)
        return out
    if isinstance(value, list):
        out_list = [mutate(data, item) for item in value if data.draw(st.integers(0, 6))]
        if data.draw(st.integers(0, 5)) == 0:
            out_list.append(data.draw(json_values))
        return out_list
    return data.draw(json_values) if data.draw(st.integers(0, 8)) == 0 else value


JSON_BODIES = [json.loads(p.read_bytes()) for p in sorted(FIXTURES.glob("*.json"))]
CHUNKS = [json.loads(line[6:]) for p in sorted(FIXTURES.glob("sse_*.txt"))
          for line in p.read_text().splitlines() if line.startswith("data: {")]


@PROPERTY
@given(st.data(), st.sampled_from(JSON_BODIES))
def test_mutated_replies_give_a_result_or_a_hierarchy_error(data: st.DataObject, body: dict) -> None:
    raw = msgspec.json.encode(mutate(data, body))
    try:
        result = parse_chat_response(raw, "application/json", url="u")
    except EndpointError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    content = result.content
    assert (content.text is None) == (content.no_text is not None)
    assert content.text is None or content.text.strip()
    assert content.explain() == "" if content.text else content.explain()


@PROPERTY
@given(st.data(), st.lists(st.sampled_from(CHUNKS), min_size=1, max_size=8), st.booleans())
def test_mutated_streams_give_a_result_or_a_hierarchy_error(data: st.DataObject, chunks: list, done: bool) -> None:
    body = b"".join(b"data: " + msgspec.json.encode(mutate(data, c)) + b"\n\n" for c in chunks)
    body += b"data: [DONE]\n\n" if done else b""
    pieces: list[str] = []
    decoder, acc = SSEDecoder(), StreamAccumulator("u", on_text=pieces.append)
    try:
        for event in [*decoder.feed(body), *decoder.flush()]:
            if acc.feed(event):
                break
        else:
            acc.end_of_body()
        result = acc.result("done")
    except EndpointError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert "".join(pieces) == (result.body["choices"][0]["message"]["content"] or "")


def is_error_body(value: Any) -> bool:
    """A 2xx body that reports an error instead of an answer (vLLM's flat shape, OpenAI's nested one)."""
    return isinstance(value, dict) and "choices" not in value and bool(value.get("error") or value.get("object") == "error")


def check_result(value: Any, result) -> None:
    """What any accepted reply must be: a JSON object with a list of choices, kept whole, whose
    text is there exactly when there is no reason for its absence."""
    assert isinstance(value, dict) and isinstance(value.get("choices"), list), value
    assert not is_error_body(value)
    assert result.body == value  # the whole body, server extras included (--json prints it)
    content = result.content
    assert (content.text is None) == (content.no_text is not None)
    assert content.text is None or (isinstance(content.text, str) and content.text.strip())
    assert (content.explain() == "") == (content.text is not None)
    if not value["choices"]:
        assert content.no_text is NoText.NO_CHOICES


# Objects with the keys replies use (an "error", a model "id", "data", "choices"...) and values
# that matter for them, besides any JSON value: random keys alone would almost never meet them.
reply_objects = st.dictionaries(
    st.sampled_from([*KEYS, "object"]) | st.text(max_size=6),
    json_values | st.sampled_from(["error", "list", "chat.completion", "m1"]) | st.lists(st.fixed_dictionaries({"id": st.text(max_size=4)}), max_size=3),
    max_size=5)


@PROPERTY
@given(json_values | reply_objects)
def test_any_json_value_as_a_reply(value: Any) -> None:
    raw = msgspec.json.encode(value)
    try:
        result = parse_chat_response(raw, "application/json")
    except APIError as exc:
        assert is_error_body(value) and "\n" not in str(exc)  # an error only when the body says so
    except EndpointError as exc:
        assert str(exc) and "\n" not in str(exc) and not is_error_body(value)
    else:
        check_result(value, result)
    try:
        models = parse_model_list(raw, "application/json")
    except EndpointError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(value, dict) and not is_error_body(value)
        cards = value["data"] if "data" in value else [value] if isinstance(value.get("id"), str) else []
        assert [m.id for m in models.data] == [c["id"] for c in cards]
        assert models.first_id == (cards[0]["id"] if cards else None)


# Bodies shaped like chat completions, with the choice at index 0 anywhere in the list (or
# none), string, null or blank content, tool calls and refusals beside it, and extra keys.
CONTENTS = st.none() | st.text(max_size=8) | st.sampled_from(["", "  ", "\n", "answer", " spaced "])
MESSAGES = st.fixed_dictionaries({"role": st.just("assistant"), "content": CONTENTS}, optional={
    "refusal": st.none() | st.text(max_size=5), "reasoning_content": st.none() | st.text(max_size=5),
    "tool_calls": st.just([{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]),
    "extra": json_values})
CHOICES = st.fixed_dictionaries({"message": MESSAGES}, optional={
    "index": st.none() | st.integers(0, 3), "finish_reason": st.none() | st.sampled_from(["stop", "length", "tool_calls"]),
    "logprobs": json_values})
CHAT_BODIES = st.fixed_dictionaries({"choices": st.lists(CHOICES, max_size=4)}, optional={
    "model": st.none() | st.text(max_size=6), "id": st.text(max_size=6), "system_fingerprint": json_values})


def expected_text(body: dict) -> str | None:
    """The rules, said again plainly: the choice whose index is 0 (its position when it has none)
    is the answer; its string content is the text unless blank."""
    for pos, choice in enumerate(body["choices"]):
        index = choice.get("index")
        if (pos if index is None else index) == 0:
            content = choice["message"]["content"]
            return content if isinstance(content, str) and content.strip() else None
    return None


@PROPERTY
@given(CHAT_BODIES)
def test_chat_shaped_replies_give_the_text_of_choice_zero(body: dict) -> None:
    result = parse_chat_response(msgspec.json.encode(body), "application/json")  # valid: must not raise
    check_result(body, result)
    assert result.text == expected_text(body)
    assert result.model == body.get("model")


MODEL_CARDS = st.fixed_dictionaries({"id": st.text(max_size=6)}, optional={
    "object": st.just("model"), "owned_by": st.none() | st.text(max_size=4), "max_model_len": st.none() | st.integers(1, 10**6),
    "created": st.integers(0, 10**10)})
MODEL_BODIES = st.fixed_dictionaries({"data": st.lists(MODEL_CARDS, max_size=3)}, optional={"object": st.just("list")}) | MODEL_CARDS


@PROPERTY
@given(MODEL_BODIES)
def test_model_lists_give_their_ids_in_order(body: dict) -> None:
    models = parse_model_list(msgspec.json.encode(body), "application/json")  # valid: must not raise
    cards = body["data"] if "data" in body else [body]  # TGI answers with the one model object
    assert [m.id for m in models.data] == [c["id"] for c in cards]
    assert models.first_id == (cards[0]["id"] if cards else None)
    assert models.max_model_len() == (cards[0].get("max_model_len") if cards else None)


@PROPERTY
@given(st.binary(max_size=300), st.sampled_from([None, "application/json", "text/html", "text/event-stream"]))
def test_any_bytes_as_a_reply_or_an_error_body(raw: bytes, content_type: str | None) -> None:
    try:
        result = parse_chat_response(raw, content_type)
    except UnexpectedEventStream as exc:
        assert "try --stream" in str(exc) and "\n" not in str(exc)
    except EndpointError as exc:
        assert str(exc) and "\n" not in str(exc)
        # An event stream where JSON was expected is always told apart from garbage.
        assert content_type != "text/event-stream"
    else:
        assert content_type != "text/event-stream"
        check_result(msgspec.json.decode(raw), result)  # only a JSON object with choices is an answer
    info = parse_error_body(raw, content_type, status_phrase="Bad Request")
    assert info.message and "\n" not in info.message
    err = http_error("http://h/v1/chat/completions", 400, None, raw, content_type)
    assert "\n" not in str(err) and len(str(err)) < 600


@PROPERTY
@given(json_values)
def test_any_json_error_body(value: Any) -> None:
    for body in (value, {"error": value}, {"detail": value}, {"object": "error", "message": value, "code": value}):
        err = http_error("http://h/x", 400, "Bad Request", msgspec.json.encode(body), "application/json")
        assert str(err).startswith("HTTP 400 Bad Request from http://h/x: ") and "\n" not in str(err)


def test_absurd_nesting_is_a_hierarchy_error() -> None:
    with pytest.raises(EndpointError):
        parse_chat_response(b"[" * 100_000 + b"]" * 100_000)
    assert parse_error_body(b"[" * 100_000).kind == "text"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_sse_decoder_never_raises_and_ignores_split_points(raw: bytes, cuts: list[int]) -> None:
    whole = SSEDecoder()
    expected = whole.feed(raw) + whole.flush()
    bounds = [0, *sorted(c for c in cuts if c < len(raw)), len(raw)]
    split = SSEDecoder()
    got = [e for a, b in zip(bounds, bounds[1:]) for e in split.feed(raw[a:b])] + split.flush()
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(p.name for p in FIXTURES.glob("sse_*.txt"))),
       st.lists(st.integers(min_value=1, max_value=13000), max_size=20))
def test_fixture_streams_split_anywhere(name: str, cuts: list[int]) -> None:
    raw = fixture_bytes(name)
    bounds = [0, *sorted(c for c in cuts if c < len(raw)), len(raw)]
    decoder = SSEDecoder()
    got = [e for a, b in zip(bounds, bounds[1:]) for e in decoder.feed(raw[a:b])] + decoder.flush()
    whole = SSEDecoder()
    assert got == whole.feed(raw) + whole.flush()


@given(st.one_of(st.none(), st.text(max_size=20)), st.text(max_size=5), st.text(max_size=5))
def test_text_is_there_exactly_when_content_is_not_blank(content: str | None, refusal: str, reasoning: str) -> None:
    out = classify(content, refusal=refusal, reasoning=reasoning)
    if content is not None and content.strip():
        assert out.text == content and out.no_text is None
    else:
        assert out.text is None and out.no_text in set(NoText)
