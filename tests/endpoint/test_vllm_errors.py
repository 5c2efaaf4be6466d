"""vLLM's context errors as vLLM 0.32 sends them (tests/realservers/README.md, "Quirks seen"), and
the older 0.25 wording: their numbers are read, so a retry leaves out enough (not half)."""

from __future__ import annotations

import json

import pytest

from cli.endpoint._error_body import http_error
from cli.endpoint._errors import ContextLengthExceeded

URL = "http://127.0.0.1:8000/v1/chat/completions"


def body(message: str, param: str, shape: str = "flat") -> bytes:
    error = {"message": message, "type": "BadRequestError", "param": param, "code": 400}
    return json.dumps({"object": "error", **error} if shape == "flat" else {"error": error}).encode()


@pytest.mark.parametrize("shape", ["flat", "nested"])
def test_prompt_over_the_window_counted_up_to_the_window_plus_one(shape: str) -> None:
    message = ("This model's maximum context length is 2048 tokens. However, your prompt contains at least 2049 "
               "input tokens, which exceeds this limit even without any output tokens. Please reduce the length "
               "of the input prompt.")
    error = http_error(URL, 400, None, body(message, "input_tokens", shape), "application/json")
    assert isinstance(error, ContextLengthExceeded)
    known = error.context_length
    assert (known.context_window, known.prompt_tokens, known.at_least) == (2048, 2049, True)
    assert known.excess == 1 and not known.answer_alone_too_long
    assert "prompt tokens at least 2049, window 2048" in str(error)


def test_prompt_counted_exactly() -> None:
    message = ("This model's maximum context length is 2048 tokens. However, your prompt contains 3000 input "
               "tokens, which exceeds this limit even without any output tokens.")
    known = http_error(URL, 400, None, body(message, "input_tokens"), "application/json").context_length
    assert (known.prompt_tokens, known.at_least, known.excess) == (3000, False, 952)


def test_prompt_refused_by_its_length_in_characters() -> None:
    message = ("This model's maximum context length is 2048 tokens. However, your prompt contains 100000 "
               "characters (more than 8128 characters, which is the upper bound for 2032 input tokens). Please "
               "reduce the length of the input prompt.")
    known = http_error(URL, 400, None, body(message, "input_text"), "application/json").context_length
    assert (known.context_window, known.prompt_tokens, known.at_least) == (2048, 2033, True)


def test_older_wording_with_output_tokens_and_a_total() -> None:
    message = ("This model's maximum context length is 8192 tokens. However, you requested 64 output tokens and "
               "your prompt contains at least 8129 input tokens, for a total of at least 8193 tokens. Please "
               "reduce the length of the input prompt or the number of requested output tokens.")
    known = http_error(URL, 400, None, body(message, "input_tokens", "nested"), "application/json").context_length
    assert (known.context_window, known.prompt_tokens, known.completion_tokens, known.requested_tokens) == \
        (8192, 8129, 64, 8193)
    assert known.at_least and known.excess == 1


@pytest.mark.parametrize("message, asked, window", [
    ("max_tokens=4096 cannot be greater than max_model_len=2048. Please request fewer output tokens.", 4096, 2048),
    ("max_completion_tokens=131072 cannot be greater than max_model_len=max_total_tokens=65536", 131072, 65536),
])
def test_max_tokens_over_the_whole_window(message: str, asked: int, window: int) -> None:
    error = http_error(URL, 400, None, body(message, "max_tokens", "nested"), "application/json")
    assert isinstance(error, ContextLengthExceeded)
    known = error.context_length
    assert (known.completion_tokens, known.context_window) == (asked, window)
    assert known.answer_alone_too_long and known.excess is None
    assert f"max_tokens {asked} is more than the model's whole context window ({window} tokens)" in str(error)
