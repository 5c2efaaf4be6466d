"""A reasoning model's thinking on a real terminal (pexpect): shown dim while it streams, before
the answer, and a terminal with stdout redirected to a file still sees it while the file gets
only the answer. The servers: tests/endpoint/server.py playing a scripted `reasoning_content`
stream (held at a gate until the test has seen the thinking on screen: it is shown as it comes,
not after), and tests/echo_server.py for the interactive mode."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from pathlib import Path

import pexpect
import pytest

from tests.echo_server import EchoServer
from tests.endpoint.server import Reply, ScriptedServer

BAI = str(Path(sys.executable).with_name("bai"))
DIM = "\x1b[2m"
THOUGHTS = ["Let me ", "think", " \x1b]0;pwned\x07about it."]
ANSWER = ["The answer", " is 42."]


def _events() -> list[bytes]:
    deltas = [{"role": "assistant", "content": ""}] + [{"reasoning_content": t} for t in THOUGHTS] + \
        [{"content": t} for t in ANSWER]
    events = [{"choices": [{"index": 0, "delta": d}]} for d in deltas]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


@pytest.fixture
def scripted(tmp_path):
    """(server, gate, env): one streamed reply that stops before its answer until `gate` is set."""
    server = ScriptedServer()
    gate = threading.Event()
    pieces = _events()
    server.reply = Reply(body=b"".join(pieces), pieces=pieces, content_type="text/event-stream", gate=gate,
                         gate_after=1 + len(THOUGHTS))
    server.add("/v1/chat/completions", server.reply)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "BAI_DEBUG")}
    env.update(BAI_CHAT_HOME=str(tmp_path / "home"), TERM="xterm", NO_PROXY="127.0.0.1")
    try:
        yield server, gate, env
    finally:
        gate.set()
        server.stop()


def _spawn(args: list[str], env: dict[str, str]) -> pexpect.spawn:
    return pexpect.spawn(args[0], args[1:], env=env, encoding="utf-8", timeout=30, dimensions=(40, 200))


def _chat_args(server: ScriptedServer, *extra: str) -> list[str]:
    return [BAI, "deployment", "chat", "d", "what is it?", "--endpoint", server.url, "--model", "m", *extra]


def test_thinking_is_shown_dim_as_it_streams_then_the_answer(scripted):
    server, gate, env = scripted
    child = _spawn(_chat_args(server), env)
    try:
        child.expect("thinking…")
        seen = child.before + child.after
        child.expect("about it.")  # on screen while the answer is still held back by the server
        seen += child.before + child.after
        gate.set()
        child.expect(pexpect.EOF)
        seen += child.before
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, seen
    assert server.reply.gate_opened == [True]  # the thinking was on screen before the server sent the answer
    assert "pwned" not in seen and "\x07" not in seen  # the OSC title sequence was removed
    plain = re.sub(r"\x1b\[[0-9;]*m", "", seen).replace("\r\n", "\n")
    assert plain.endswith("thinking…\nLet me think about it.\n…done thinking\n\nThe answer is 42.\n"), repr(seen)
    assert f"{DIM}Let me " in seen and f"{DIM}The answer" not in seen  # the thinking dim, the answer not


def test_with_stdout_redirected_the_terminal_shows_the_thinking_and_the_file_gets_the_answer(scripted, tmp_path):
    server, gate, env = scripted
    gate.set()
    out = tmp_path / "out.txt"
    script = " ".join(f"'{a}'" for a in _chat_args(server)) + f" > '{out}'"
    child = _spawn(["/bin/sh", "-c", f"exec {script}"], env)
    try:
        child.expect(pexpect.EOF)
        seen = child.before
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, seen
    assert out.read_text() == "The answer is 42.\n"
    assert "thinking…" in seen and "about it." in seen and "The answer" not in seen


@pytest.mark.parametrize("setting", [["--hide-reasoning"], ["NO_COLOR"]])
def test_hidden_when_asked_and_plain_under_no_color(scripted, setting):
    server, gate, env = scripted
    gate.set()
    if setting == ["NO_COLOR"]:
        env["NO_COLOR"] = "1"
        setting = []
    child = _spawn(_chat_args(server, *setting), env)
    try:
        child.expect(pexpect.EOF)
        seen = child.before
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, seen
    assert "The answer is 42." in seen and "\x1b[" not in seen
    assert ("thinking…" in seen) == (setting == [])


def test_the_interactive_mode_shows_it_too(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "BAI_DEBUG")}
    env.update(BAI_CHAT_HOME=str(tmp_path / "home"), TERM="xterm", NO_PROXY="127.0.0.1", NO_COLOR="1")
    with EchoServer() as server:
        server.reasoning_next("The user greets me.")
        child = _spawn([BAI, "deployment", "chat", "d", "--endpoint", server.root_url, "--model", "m"], env)
        try:
            child.expect("you> ")
            child.sendline("hello")
            child.expect("you> ")
            seen = child.before.replace("\r\n", "\n")
            child.sendline("/exit")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
    assert "thinking…\nThe user greets me.\n…done thinking\n\necho: hello [1 messages]\n" in seen, repr(seen)
