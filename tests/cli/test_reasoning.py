"""A reasoning model's thinking: shown apart from the answer (or not), never saved as the answer,
recorded in bai's log only, shown again by `chat-history show --reasoning`; `-v` says tokens/s.

The real `bai` runs against tests/echo_server.py (its `reasoning_next` answers like vLLM's and
llama.cpp's reasoning parsers: `reasoning_content` deltas, then the answer). Here stderr is a
pipe; the terminal itself is in tests/conversation/test_reasoning_pty.py.
"""

from __future__ import annotations

import json
import re

import click
import pytest

from cli._turn_notes import describe_turn, tokens_per_second
from cli._reasoning import FOOTER, HEADER, MAX_SAVED, ReasoningView, saved_form, wanted
from tests.e2e.helpers import bai, log_rounds, projection
from tests.endpoint.server import Reply, ScriptedServer


U = "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"
THOUGHT = "The user says hi.\nI should greet them back."
SHOWN = f"{HEADER}\n{THOUGHT}\n{FOOTER}\n\n"


@pytest.fixture
def home(tmp_path, server):
    home = tmp_path / "home"
    r = bai(home, "deployment", "chat-config", "set", "d", "--endpoint", server.root_url, "--model", "m")
    assert r.code == 0, r
    return home


def chat(home, *args, **kw):
    return bai(home, "deployment", "chat", "d", *args, **kw)


# -- when it is shown ----------------------------------------------------------------------------


def test_on_a_pipe_it_is_not_shown_by_default_but_it_is_saved(home, server):
    server.reasoning_next(THOUGHT)
    r = chat(home, "hi")
    assert (r.code, r.out, r.err) == (0, "echo: hi [1 messages]\n", ""), r
    assert log_rounds(home, "d")[-1]["reasoning"] == THOUGHT


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_asked_for_it_is_on_stderr_apart_from_the_answer(home, server, stream):
    server.reasoning_next(THOUGHT)
    r = chat(home, "hi", stream, "--show-reasoning")
    assert r.code == 0, r
    assert r.out == "echo: hi [1 messages]\n"  # stdout: the answer only
    assert r.err == SHOWN  # no colour codes: stderr is no terminal


def test_the_setting_shows_or_hides_it_and_the_flags_win(home, server):
    r = bai(home, "deployment", "chat-config", "set", "d", "--reasoning", "show")
    assert r.code == 0 and "reasoning" in r.err, r
    assert re.search(r"^reasoning +show$", bai(home, "deployment", "chat-config", "show", "d").out, re.M)
    server.reasoning_next(THOUGHT)
    assert chat(home, "one").err == SHOWN
    server.reasoning_next(THOUGHT)
    assert chat(home, "two", "--hide-reasoning").err == ""
    assert bai(home, "deployment", "chat-config", "set", "d", "--reasoning", "hide").code == 0
    server.reasoning_next(THOUGHT)
    assert chat(home, "three").err == ""
    server.reasoning_next(THOUGHT)
    assert chat(home, "four", "--show-reasoning").err == SHOWN
    assert bai(home, "deployment", "chat-config", "set", "d", "--reasoning", "").code == 0  # unset: the default
    assert json.loads(bai(home, "deployment", "chat-config", "show", "d", "--json").out).get("reasoning") is None
    server.reasoning_next(THOUGHT)
    assert chat(home, "five").err == ""  # a pipe


def test_a_bad_setting_is_a_usage_error(home):
    r = bai(home, "deployment", "chat-config", "set", "d", "--reasoning", "loud")
    assert r.code == 2 and "'loud' is not one of 'show', 'hide'" in r.err, r


def test_the_setting_is_bais_own_not_in_backend_ais_config(tmp_path, server):
    home = tmp_path / "home"
    assert bai(home, "deployment", "chat-config", "set", U, "--reasoning", "show", "--token", "t").code == 0
    shared = json.loads((home / "config.json").read_text())["deployments"][U]
    assert shared == {"token": "t"}  # Backend.AI's file: only the keys it knows
    assert json.loads((home / "bai" / "config.json").read_text())["deployments"][U]["reasoning"] == "show"


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_control_sequences_are_removed_unless_raw(home, server, stream):
    server.reasoning_next("a\x1b]0;pwned\x07b\x1b[2Jc")
    assert f"{HEADER}\nabc\n" in chat(home, "hi", stream, "--show-reasoning").err
    server.reasoning_next("a\x1b]0;pwned\x07b")
    assert "a\x1b]0;pwned\x07b" in chat(home, "hi", stream, "--show-reasoning", "--raw").err
    assert log_rounds(home, "d")[-1]["reasoning"] == "a\x1b]0;pwned\x07b"  # saved as sent, like the answer


def test_an_answer_of_reasoning_only_shows_it_and_saves_nothing(home, server):
    server.reasoning_next(THOUGHT, answer=False)
    r = chat(home, "hi", "--show-reasoning")
    assert r.code == 3, r
    assert r.out == ""
    assert r.err.startswith(SHOWN) and "nothing saved: the model only reasoned" in r.err, r
    assert log_rounds(home, "d") == []


def test_json_output_is_the_whole_body_and_nothing_else(home, server):
    server.reasoning_next(THOUGHT)
    r = chat(home, "hi", "--json", "--show-reasoning")
    assert r.code == 0 and r.err == "", r
    assert json.loads(r.out)["choices"][0]["message"]["reasoning_content"] == THOUGHT


# -- what is saved -------------------------------------------------------------------------------


def test_never_the_answer_never_replayed_never_in_history_json(tmp_path, server):
    home = tmp_path / "home"
    assert bai(home, "deployment", "chat-config", "set", U, "--endpoint", server.root_url, "--model", "m").code == 0
    server.reasoning_next(THOUGHT)
    assert bai(home, "deployment", "chat", U, "hi").code == 0
    assert bai(home, "deployment", "chat", U, "again").code == 0
    sent = server.chat_requests()[-1]["messages"]
    assert sent[1] == {"role": "assistant", "content": "echo: hi [1 messages]"}  # the answer only
    assert THOUGHT not in json.dumps(server.chat_requests()[-1])
    messages = projection(home, U)
    assert [m["content"] for m in messages][:2] == ["hi", "echo: hi [1 messages]"]
    assert "reasoning" not in (home / "history.json").read_text() and THOUGHT not in (home / "history.json").read_text()
    assert log_rounds(home, U)[0]["assistant"] == "echo: hi [1 messages]"
    assert log_rounds(home, U)[0]["reasoning"] == THOUGHT


def test_show_prints_it_only_when_asked_and_json_carries_it(home, server):
    assert chat(home, "plain").code == 0
    server.reasoning_next(THOUGHT)
    assert chat(home, "hi").code == 0
    out = bai(home, "deployment", "chat-history", "show", "d").out
    assert "thinking" not in out and "greet" not in out
    out = bai(home, "deployment", "chat-history", "show", "d", "--reasoning").out
    assert out.count(HEADER) == 1  # the round without reasoning shows none
    lines = out.splitlines()
    at = lines.index(HEADER)
    assert lines[at - 1].startswith("--- m · ") and lines[at + 1 : at + 5] == [*THOUGHT.splitlines(), FOOTER,
                                                                              "echo: hi [3 messages]"]
    doc = json.loads(bai(home, "deployment", "chat-history", "show", "d", "--json").out)
    assert [m.get("reasoning") for m in doc["messages"]] == [None, None, None, THOUGHT]


def test_show_removes_control_sequences_from_it(home, server):
    server.reasoning_next("x\x1b]52;c;Y2xpcA==\x07y")
    assert chat(home, "hi").code == 0
    out = bai(home, "deployment", "chat-history", "show", "d", "--reasoning").out
    assert "\x1b" not in out and "\nxy\n" in out


def test_long_reasoning_is_saved_bounded_with_a_marker(home, server):
    thought = "a" * MAX_SAVED + "b" * 5000
    server.reasoning_next(thought)
    assert chat(home, "hi").code == 0
    saved = log_rounds(home, "d")[-1]["reasoning"]
    half = MAX_SAVED // 2
    assert saved == "a" * half + "\n[… 5000 characters of reasoning not saved …]\n" + "a" * (half - 5000) + "b" * 5000


def test_reasoning_too_large_for_the_cap_is_dropped_not_the_answer(home, server):
    assert bai(home, "deployment", "chat-config", "set", "d", "--history-max-bytes", "3000").code == 0
    server.reasoning_next("r" * 5000)
    r = chat(home, "hi")
    assert r.code == 0, r
    assert "the model's reasoning was not saved" in r.err and "the answer is saved" in r.err, r
    assert [(x["assistant"], x.get("reasoning")) for x in log_rounds(home, "d")] == [("echo: hi [1 messages]", None)]


def test_saved_form():
    assert saved_form(None) is None and saved_form("") is None
    assert saved_form("short") == "short"
    assert saved_form("x" * 10, limit=10) == "x" * 10
    assert saved_form("abcdefghijkl", limit=4) == "ab\n[… 8 characters of reasoning not saved …]\nkl"


# -- the view ------------------------------------------------------------------------------------


def test_the_rule_for_showing():
    assert wanted(None, None, stderr_is_tty=True) and not wanted(None, None, stderr_is_tty=False)
    assert wanted(None, "show", stderr_is_tty=False) and not wanted(None, "hide", stderr_is_tty=True)
    assert wanted(True, "hide", stderr_is_tty=False) and not wanted(False, "show", stderr_is_tty=True)
    assert not wanted(None, "bogus", stderr_is_tty=False)  # a setting bai does not know: the default


def test_the_view_ends_cleanly_and_shows_nothing_after_the_answer_began():
    out: list[str] = []
    view = ReasoningView(True, write=out.append)
    view.piece("one ")
    view.piece("two")
    view.answer_begins()
    view.piece("late thought")  # would cut into the answer on screen
    view.end()
    assert click.unstyle("".join(out)) == f"{HEADER}\none two\n{FOOTER}\n\n"
    out.clear()
    view = ReasoningView(True, write=out.append)
    view.piece("cut short by Ctrl-C\n")
    view.end()
    view.end()
    assert click.unstyle("".join(out)) == f"{HEADER}\ncut short by Ctrl-C\n{FOOTER}\n\n"
    out.clear()
    view = ReasoningView(False, write=out.append)
    view.piece("x")
    view.whole("y")
    view.end()
    assert out == []


def test_a_control_sequence_split_across_pieces_is_removed():
    out: list[str] = []
    view = ReasoningView(True, write=out.append)
    for piece in ("a\x1b]0;ti", "tle\x07b\x1b[", "31mc"):
        view.piece(piece)
    view.end()
    assert click.unstyle("".join(out)) == f"{HEADER}\nabc\n{FOOTER}\n\n"


# -- -v: tokens per second -----------------------------------------------------------------------


def test_tokens_per_second():
    assert tokens_per_second({"completion_tokens": 50}, (10.0, 12.0)) == "25.0"
    assert tokens_per_second({"completion_tokens": 50}, None) is None  # not streamed
    assert tokens_per_second(None, (10.0, 12.0)) is None  # no token count
    assert tokens_per_second({"completion_tokens": True}, (10.0, 12.0)) is None
    assert tokens_per_second({"completion_tokens": 5}, (10.0, 10.0)) is None  # one piece: no time
    assert "· 25.0 tokens/s ·" in describe_turn(2, "m", {"prompt_tokens": 1, "completion_tokens": 50}, 3, rate="25.0")
    assert "· tokens/s n/a ·" in describe_turn(2, "m", None, 3)


def test_verbose_says_tokens_per_second_when_streamed_and_na_when_not(tmp_path):
    def sse(*deltas: dict, usage: dict) -> list[bytes]:
        events = [{"choices": [{"index": 0, "delta": d}]} for d in deltas]
        events += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, {"choices": [], "usage": usage}]
        return [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]

    usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    pieces = sse({"reasoning_content": "hm"}, {"content": "Hel"}, {"content": "lo"}, usage=usage)
    whole = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
             "usage": usage}
    server = ScriptedServer()
    try:
        # pieces apart in time (no time is asserted: a rate needs the first and last piece apart)
        server.add("/v1/chat/completions", Reply(body=b"".join(pieces), pieces=pieces, delay=0.02,
                                                 content_type="text/event-stream"),
                   Reply(body=json.dumps(whole).encode()))
        home = tmp_path / "home"
        r = bai(home, "deployment", "chat", "d", "hi", "-v", "--endpoint", server.url, "--model", "m")
        assert r.code == 0 and r.out == "Hello\n", r
        assert re.search(r"5 prompt \+ 4 completion tokens · \d+\.\d tokens/s · saved as round 1", r.err), r
        r = bai(home, "deployment", "chat", "d", "hi", "-v", "--no-stream", "--endpoint", server.url, "--model", "m")
        assert r.code == 0 and "4 completion tokens · tokens/s n/a · saved as round 2" in r.err, r
    finally:
        server.stop()
