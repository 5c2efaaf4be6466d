"""Answers that are not a plain answer, offline: a context-length refusal is retried once with
fewer replayed rounds, but never once answer text was printed; an answer without text (no
choices, only a tool call) saves nothing and exits 3."""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import assert_one_line_error, chat, files_under, log_rounds, show

# vLLM's 400 for a prompt over max_model_len (the flat `{"object": "error"}` shape).
CONTEXT_400 = {
    "object": "error", "type": "BadRequestError", "param": None, "code": 400,
    "message": "This model's maximum context length is 2048 tokens. However, you requested 2100 tokens "
               "(2000 in the messages, 100 in the completion). Please reduce the length of the messages or completion.",
}


def posts(echo) -> list[dict]:
    return echo.chat_requests()


def saved_rounds(home, dep, *texts: str) -> None:
    for text in texts:
        r = chat(home, dep, text)
        assert r.code == 0, r


def test_context_refusal_is_retried_once_with_fewer_rounds(home, echo, dep):
    saved_rounds(home, dep, "one", "two", "three")
    before = len(posts(echo))
    echo.fail_next(400, CONTEXT_400)
    r = chat(home, dep, "four")
    assert r.code == 0, r
    refused, retried = posts(echo)[before:]
    assert len(refused["messages"]) == 7
    fewer = retried["messages"]
    assert fewer[-1] == {"role": "user", "content": "four"}  # the new message is never cut
    assert 1 <= len(fewer) < 7 and len(fewer) % 2 == 1
    assert fewer == refused["messages"][len(refused["messages"]) - len(fewer):]  # the oldest rounds went
    assert r.out == f"echo: four [{len(fewer)} messages]\n"
    assert "retrying with" in r.err and "Traceback" not in r.err, r
    # Trimming changes only what was sent: the saved history keeps every round.
    assert [m["content"] for m in show(home, dep) if m["role"] == "user"] == ["one", "two", "three", "four"]
    # The window the refusal named is remembered for the next turns.
    assert json.loads((home / "bai" / "cache.json").read_text())["deployments"][dep]["context_window"] == 2048


def test_a_second_refusal_is_an_error_and_saves_nothing(home, echo, dep):
    saved_rounds(home, dep, "one", "two")
    log = home / "bai" / "logs" / f"{dep}.jsonl"
    log_before, history_before = log.read_bytes(), (home / "history.json").read_bytes()
    before = len(posts(echo))
    echo.fail_next(400, CONTEXT_400)
    echo.fail_next(400, CONTEXT_400)
    r = chat(home, dep, "three")
    assert r.code == 1 and r.out == "" and "Traceback" not in r.err, r
    note, error = r.err.splitlines()  # what was tried, then the one error line
    assert "retrying with" in note and error.startswith("bai: error: ") and "maximum context length is 2048" in error
    assert len(posts(echo)) - before == 2  # retried once, not again
    assert log.read_bytes() == log_before and (home / "history.json").read_bytes() == history_before


def test_a_refusal_with_nothing_replayed_is_not_retried(home, echo, dep):
    echo.fail_next(400, CONTEXT_400)
    r = chat(home, dep, "alone")
    assert "maximum context length" in assert_one_line_error(r, 1)
    assert len(posts(echo)) == 1  # nothing to leave out: sending again would get the same refusal
    assert log_rounds(home, dep) == []


@pytest.mark.parametrize("after", [1, 3])
def test_no_retry_once_answer_text_was_printed(home, echo, dep, after):
    # The stream prints the start of an answer, then breaks off with a context-length error: a
    # retry would print a second answer after the first, so bai stops there.
    saved_rounds(home, dep, "one", "two")
    log_before = (home / "bai" / "logs" / f"{dep}.jsonl").read_bytes()
    history_before = (home / "history.json").read_bytes()
    before = len(posts(echo))
    echo.stream_error_next(CONTEXT_400, after=after)
    r = chat(home, dep, "three")
    line = assert_one_line_error(r, 1)
    assert "broke off" in line and "maximum context length" in line
    assert len(posts(echo)) - before == 1  # sent once
    assert r.out == "echo: three [5 messages]"[: 7 * after] + "\n"  # what arrived was printed, and only that
    assert (home / "bai" / "logs" / f"{dep}.jsonl").read_bytes() == log_before  # nothing saved
    assert (home / "history.json").read_bytes() == history_before
    assert [m["content"] for m in show(home, dep) if m["role"] == "user"] == ["one", "two"]


@pytest.mark.parametrize("flag", ["--no-stream", "--stream"])
def test_no_choices_saves_nothing(home, echo, dep, flag):
    saved_rounds(home, dep, "one")
    files = files_under(home)
    echo.no_choices_next()
    r = chat(home, dep, "two", flag)
    assert r.code == 3, r
    assert r.out == "" and r.err.startswith("bai: nothing saved: ") and r.err.count("\n") == 1, r
    if flag == "--no-stream":
        assert "no choices" in r.err
    assert files_under(home) == files  # not a byte changed on disk
    saved_rounds(home, dep, "three")
    assert [m["content"] for m in posts(echo)[-1]["messages"] if m["role"] == "user"] == ["one", "three"]


def test_tool_call_only_answer_saves_nothing(home, echo, dep):
    saved_rounds(home, dep, "one")
    files = files_under(home)
    echo.tool_call_next("get_weather", '{"city": "Paris"}')
    r = chat(home, dep, "weather in Paris?", "--no-stream")
    assert r.code == 3, r
    assert r.out == ""
    assert r.err == ('bai: nothing saved: the model asked to call a tool instead of answering: '
                     'get_weather({"city": "Paris"}) (bai runs no tools)\n')
    assert files_under(home) == files
    saved_rounds(home, dep, "two")
    assert [m["content"] for m in posts(echo)[-1]["messages"] if m["role"] == "user"] == ["one", "two"]
