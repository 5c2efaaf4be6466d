"""assistant_content: every rule of DESIGN.md, on hand-made replies."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from cli.endpoint._content import NoText, assistant_content
from cli.endpoint._response import parse_chat_response
from cli.endpoint._wire import ChatCompletionResponse, ModelList


def reply(*choices: dict[str, Any], **extra: Any) -> ChatCompletionResponse:
    return msgspec.convert({"choices": list(choices), **extra}, ChatCompletionResponse)


def choice(index: int | None = 0, finish: str | None = "stop", **message: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"message": {"role": "assistant", **message}, "finish_reason": finish}
    if index is not None:
        c["index"] = index
    return c


def test_string_content_is_the_text_unchanged() -> None:
    out = assistant_content(reply(choice(content="  Hello\n")))
    assert out.text == "  Hello\n" and out.no_text is None and out.explain() == ""


def test_choice_index_zero_not_list_position() -> None:
    out = assistant_content(reply(choice(1, content="one"), choice(0, content="zero"), choice(2, content="two")))
    assert out.text == "zero"


def test_choices_without_index_take_their_position() -> None:
    assert assistant_content(reply(choice(None, content="first"), choice(None, content="second"))).text == "first"


def test_no_choice_with_index_zero() -> None:
    out = assistant_content(reply(choice(1, content="one")))
    assert out.no_text is NoText.NO_CHOICE_ZERO and out.text is None and "index 0" in out.explain()


def test_empty_choices() -> None:
    out = assistant_content(reply())
    assert out.no_text is NoText.NO_CHOICES and "no choices" in out.explain()


@pytest.mark.parametrize(("content", "words"), [(None, "no content"), ("", "empty content"),
                                                ("  \n\t ", "only whitespace")])
def test_null_empty_and_whitespace_are_no_text(content: str | None, words: str) -> None:
    out = assistant_content(reply(choice(content=content)))
    assert out.no_text is NoText.EMPTY and out.text is None and words in out.explain()


def test_missing_content_key_is_null() -> None:
    assert assistant_content(reply(choice())).no_text is NoText.EMPTY


def test_text_parts_are_joined_other_parts_ignored() -> None:
    parts = [{"type": "text", "text": "Hello, "}, {"type": "image_url", "image_url": {"url": "x"}},
             {"type": "text", "text": "world"}]
    assert assistant_content(reply(choice(content=parts))).text == "Hello, world"


def test_thinking_parts_are_reasoning_not_text() -> None:
    parts = [{"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},  # Mistral
             {"type": "thinking", "thinking": "more"},
             {"type": "text", "text": "Answer"}]
    out = assistant_content(reply(choice(content=parts)))
    assert out.text == "Answer" and out.reasoning == "hmmmore"


def test_only_thinking_parts_is_reasoning_only() -> None:
    out = assistant_content(reply(choice(content=[{"type": "thinking", "thinking": "deep"}], finish="length")))
    assert out.no_text is NoText.REASONING_ONLY and "max_tokens" in out.explain()


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "thinking"])
def test_reasoning_fields_are_never_the_answer(field: str) -> None:
    out = assistant_content(reply(choice(content="Paris", **{field: "The capital of France..."})))
    assert out.text == "Paris" and out.reasoning == "The capital of France..."
    only = assistant_content(reply(choice(content=None, **{field: "thinking out loud"})))
    assert only.no_text is NoText.REASONING_ONLY and only.text is None


def test_vllm_reasoning_under_both_names_counts_once() -> None:
    out = assistant_content(reply(choice(content="4", reasoning_content="2+2", reasoning="2+2")))
    assert out.reasoning == "2+2"


def test_refusal_field_and_refusal_part() -> None:
    out = assistant_content(reply(choice(content=None, refusal="No.")))
    assert out.no_text is NoText.REFUSAL and out.explain() == "the model refused: No."
    part = assistant_content(reply(choice(content=[{"type": "refusal", "refusal": "Nope."}])))
    assert part.no_text is NoText.REFUSAL and part.refusal == "Nope."


def test_tool_calls_only() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    out = assistant_content(reply(choice(content=None, tool_calls=[call], finish="tool_calls")))
    assert out.no_text is NoText.TOOL_CALLS
    assert out.explain() == 'the model asked to call a tool instead of answering: f({"a": 1}) (bai runs no tools)'


def test_text_beside_tool_calls_is_still_text() -> None:
    call = {"id": "c1", "function": {"name": "f", "arguments": "{}"}}
    out = assistant_content(reply(choice(content="Let me look.", tool_calls=[call])))
    assert out.text == "Let me look." and out.tool_calls[0].name == "f"


def test_legacy_function_call() -> None:
    out = assistant_content(reply(choice(content=None, function_call={"name": "g", "arguments": "{}"})))
    assert out.no_text is NoText.TOOL_CALLS and out.tool_calls[0].name == "g"


def test_empty_tool_call_list_is_not_a_tool_call() -> None:  # vLLM sends tool_calls: []
    assert assistant_content(reply(choice(content="hi", tool_calls=[]))).tool_calls == ()
    assert assistant_content(reply(choice(content="", tool_calls=[]))).no_text is NoText.EMPTY


def test_content_filter() -> None:
    out = assistant_content(reply(choice(content=None, finish="content_filter")))
    assert out.no_text is NoText.CONTENT_FILTER


def test_long_tool_arguments_are_shortened_in_the_message() -> None:
    call = {"function": {"name": "f", "arguments": "x" * 500}}
    assert len(assistant_content(reply(choice(tool_calls=[call]))).explain()) < 200


@pytest.mark.parametrize("bad", [
    {"choices": [{"index": 0, "message": {"content": 5}}]},
    {"choices": [{"index": 0, "message": {"content": [{"type": "text", "text": 3}]}}]},
    {"choices": [{"index": 0, "delta": {"content": "x"}}]},
    {"choices": None},
    {"choices": [{"index": "0", "message": {"content": "x"}}]},
])
def test_strict_on_the_content_path(bad: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(bad, ChatCompletionResponse)


def test_extras_anywhere_are_ignored_by_the_struct_and_kept_in_the_body() -> None:
    body = msgspec.json.encode({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok", "x_extra": {"a": 1}},
                     "finish_reason": "stop", "stop_reason": 128009}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "prompt_tokens_details": None},
        "timings": {"predicted_per_second": 88.1}, "system_fingerprint": "b11434",
    })
    result = parse_chat_response(body)
    assert result.text == "ok" and result.body["timings"] == {"predicted_per_second": 88.1}
    assert result.body["choices"][0]["message"]["x_extra"] == {"a": 1}


def test_model_list_with_and_without_max_model_len() -> None:
    vllm = msgspec.convert({"object": "list", "data": [{"id": "m", "object": "model", "max_model_len": 8192}]},
                           ModelList)
    assert vllm.first_id == "m" and vllm.max_model_len() == 8192 and vllm.max_model_len("other") is None
    llama = msgspec.convert({"data": [{"id": "gemma-3-270m", "owned_by": "llamacpp", "meta": {"n_ctx_train": 1}}]},
                            ModelList)
    assert llama.first_id == "gemma-3-270m" and llama.max_model_len() is None
    assert ModelList().first_id is None
