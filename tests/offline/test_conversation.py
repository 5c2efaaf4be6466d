"""The seed's acceptance criteria, offline: two `bai deployment chat` calls form one conversation,
and the history limit, the caps and streaming shape what is sent and what is kept.

The real `bai` runs as a subprocess against tests/echo_server.py; every assertion is on the
request the server received, what bai printed, and the store's real files.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import bai, chat, configure, log_records, log_rounds, projection, show

from .conftest import D


def sent(echo) -> list[dict]:
    """The messages of the last chat request the server received."""
    return echo.chat_requests()[-1]["messages"]


def talk(home, dep, *texts: str, flags: tuple[str, ...] = ()) -> None:
    """One call per text, each answered and saved."""
    for text in texts:
        r = chat(home, dep, text, *flags)
        assert r.code == 0, r


def as_wire(saved: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in saved]


def test_two_calls_share_context(home, echo, dep):
    first = chat(home, dep, "Name three prime numbers.")
    assert first.code == 0, first
    assert first.out == "echo: Name three prime numbers. [1 messages]\n"
    second = chat(home, dep, "Now add them up.")
    assert second.code == 0, second
    assert sent(echo) == [
        {"role": "user", "content": "Name three prime numbers."},
        {"role": "assistant", "content": "echo: Name three prime numbers. [1 messages]"},
        {"role": "user", "content": "Now add them up."},
    ]
    assert second.out == "echo: Now add them up. [3 messages]\n"
    saved = show(home, dep)
    assert as_wire(saved) == sent(echo) + [{"role": "assistant", "content": "echo: Now add them up. [3 messages]"}]
    assert as_wire(projection(home, dep)) == as_wire(saved)  # Backend.AI's history.json sees the same


def test_history_limit_zero_sends_no_history_and_still_records(home, echo, dep):
    talk(home, dep, "one", "two")
    r = chat(home, dep, "three", "--history-limit", "0")
    assert r.code == 0, r
    assert sent(echo) == [{"role": "user", "content": "three"}]
    assert r.out == "echo: three [1 messages]\n"
    assert [m["content"] for m in show(home, dep) if m["role"] == "user"] == ["one", "two", "three"]
    assert [x["user"] for x in log_rounds(home, dep)] == ["one", "two", "three"]
    # The round sent alone is part of the conversation from now on.
    talk(home, dep, "four", flags=("--history-limit", "2"))
    assert sent(echo)[0] == {"role": "user", "content": "three"}


def test_odd_limit_replays_whole_rounds_only(home, echo, dep):
    talk(home, dep, "one", "two", "three")
    for limit, rounds in ((1, 0), (3, 1), (5, 2), (7, 3)):
        talk(home, dep, f"limit {limit}", flags=("--history-limit", str(limit), "--no-stream"))
        messages = sent(echo)
        assert len(messages) == 2 * rounds + 1, (limit, messages)
        assert [m["role"] for m in messages] == ["user", "assistant"] * rounds + ["user"]  # never an assistant first
        # the newest whole rounds: the K messages before this turn, rounded down to a round
        assert messages[:-1] == as_wire(show(home, dep)[-2 * rounds - 2 : -2] if rounds else [])


def test_replay_is_oldest_first_and_the_newest_rounds(home, echo, dep):
    texts = [f"question {i}" for i in range(7)]
    talk(home, dep, *texts, flags=("--history-limit", "0"))
    saved = as_wire(show(home, dep))
    assert [m["content"] for m in saved[::2]] == texts  # chronological on disk
    talk(home, dep, "next")  # the default limit: 10 messages, the newest 5 rounds
    assert sent(echo) == saved[-10:] + [{"role": "user", "content": "next"}]
    assert [m["content"] for m in sent(echo)[:-1:2]] == texts[2:]  # oldest of them first


def test_history_limit_from_config_and_the_flag_wins(home, echo, dep):
    talk(home, dep, "one", "two", "three")
    configure(home, D, echo.root_url, "--history-limit", "2")
    talk(home, dep, "four")
    assert [m["content"] for m in sent(echo)] == ["three", "echo: three [5 messages]", "four"]
    talk(home, dep, "five", flags=("--history-limit", "4"))  # the flag over the config
    assert [m["content"] for m in sent(echo) if m["role"] == "user"] == ["three", "four", "five"]


def test_an_empty_history_limit_unsets_the_configured_one(home, echo, dep):
    talk(home, dep, "one", "two", "three")
    configure(home, D, echo.root_url, "--history-limit", "2")
    r = bai(home, "deployment", "chat-config", "set", D, "--history-limit", "")
    assert r.code == 0, r
    talk(home, dep, "four")  # the default limit again: 10 messages, all three rounds
    assert [m["content"] for m in sent(echo) if m["role"] == "user"] == ["one", "two", "three", "four"]


def test_history_cap_from_the_settings_is_applied(home, echo, dep):
    configure(home, D, echo.root_url, "--history-cap", "5")  # odd: two whole rounds
    assert json.loads((home / "bai" / "config.json").read_text())["deployments"][D]["history_cap"] == 5
    talk(home, dep, *(f"turn {i}" for i in range(5)))
    kept = [f"turn {i}" for i in (3, 4)]
    assert [m["content"] for m in show(home, dep) if m["role"] == "user"] == kept
    assert [x["user"] for x in log_records(home, dep) if x["type"] == "round"] == kept  # the log file itself
    assert [m["content"] for m in projection(home, dep) if m["role"] == "user"] == kept  # and history.json
    talk(home, dep, "turn 5")
    assert [m["content"] for m in sent(echo) if m["role"] == "user"] == [*kept, "turn 5"]


def test_history_max_bytes_from_the_settings_is_applied(home, echo, dep):
    configure(home, D, echo.root_url, "--history-max-bytes", "3000")
    for i in range(8):
        talk(home, dep, f"turn {i} " + "x" * 400, flags=("--history-limit", "0"))
        assert (home / "bai" / "logs" / f"{D}.jsonl").stat().st_size <= 3000
        assert len(json.dumps(projection(home, dep), separators=(",", ":"), ensure_ascii=False).encode()) <= 3000
    users = [m["content"].split(" ")[1] for m in show(home, dep) if m["role"] == "user"]
    assert users and users[-1] == "7" and len(users) < 8  # the newest kept, the oldest dropped
    assert users == [str(n) for n in range(8 - len(users), 8)]


def test_stream_options_are_sent_when_streaming_and_the_usage_is_kept(home, echo, dep):
    r = chat(home, dep, "streamed")
    assert r.code == 0 and r.out == "echo: streamed [1 messages]\n", r
    body = echo.chat_requests()[-1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    (rnd,) = log_rounds(home, dep)
    assert rnd["usage"] == {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}  # the stream's last chunk
    for flag in ("--no-stream", "--json"):
        assert chat(home, dep, "whole", flag).code == 0
        body = echo.chat_requests()[-1]
        assert not body.get("stream") and "stream_options" not in body, (flag, body)
    # A user's own stream_options (--params) are sent as given.
    talk(home, dep, "mine", flags=("--params", '{"stream_options": {"include_usage": false}}'))
    assert echo.chat_requests()[-1]["stream_options"] == {"include_usage": False}


def test_in_process_two_calls_share_context(home, echo, monkeypatch):
    # The same through click's CliRunner, in process: what the commands do, without a subprocess.
    from tests.cli.helpers import bai as run_in_process

    monkeypatch.setenv("BAI_CHAT_HOME", str(home))
    assert run_in_process("deployment", "chat-config", "set", D, "--endpoint", echo.root_url)[0] == 0
    code, out, _ = run_in_process("deployment", "chat", D, "hello", "--no-stream")
    assert (code, out) == (0, "echo: hello [1 messages]\n")
    code, out, _ = run_in_process("deployment", "chat", D, "again", "--no-stream")
    assert (code, out) == (0, "echo: again [3 messages]\n")
    assert [m["content"] for m in sent(echo)] == ["hello", "echo: hello [1 messages]", "again"]
    assert bai(home, "deployment", "chat-history", "show", D, "--json").code == 0
