"""What a person types or pastes at the interactive prompt, in a real pseudo-terminal, against
the project's echo server: a paste of several lines is one message, `//` escapes a slash, a
\"\"\" block is a message whatever it starts with."""

import os
import sys
from pathlib import Path

import pexpect
import pytest

from cli._interactive import classify
from tests.echo_server import EchoServer

BAI = str(Path(sys.executable).with_name("bai"))
PROMPT = "you> "
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"  # what a terminal wraps a paste in


@pytest.fixture
def chat(tmp_path):
    # Where readline does not turn bracketed paste on by itself (older readline, an inputrc
    # that says so), a terminal sends a paste as lines, each one Enter: bai must ask for it.
    inputrc = tmp_path / "inputrc"
    inputrc.write_text("set enable-bracketed-paste off\n")
    with EchoServer() as server:
        env = {**os.environ, "BAI_CHAT_HOME": str(tmp_path / "home"), "NO_COLOR": "1", "TERM": "xterm",
               "INPUTRC": str(inputrc)}
        child = pexpect.spawn(BAI, ["deployment", "chat", "d", "--endpoint", server.root_url, "--model", "m"],
                              env=env, encoding="utf-8", timeout=30, dimensions=(40, 200))
        child.expect(PROMPT)
        try:
            yield child, server
        finally:
            child.close(force=True)


def _users(server):
    return [r["messages"][-1]["content"] for r in server.chat_requests()]


def test_a_paste_of_several_lines_is_one_message(chat):
    child, server = chat
    child.sendline("hello")
    child.expect(r"\x1b\[\?2004h")  # bai asked the terminal to mark pastes (before each prompt)
    child.expect(PROMPT)
    child.send(f"{PASTE_START}first line\nsecond line\nthird line{PASTE_END}")
    child.send("\r")
    child.expect(r"\[3 messages\]")
    child.expect(PROMPT)
    assert _users(server) == ["hello", "first line\nsecond line\nthird line"]


def test_double_slash_and_blocks_send_what_starts_with_a_slash(chat):
    child, server = chat
    child.sendline("//usr/bin is a folder")
    child.expect(PROMPT)
    child.sendline('"""')
    child.sendline("/etc/hosts holds names")
    child.sendline("and addresses")
    child.sendline('"""')
    child.expect(PROMPT)
    child.sendline("/nosuchcommand")
    child.expect("unknown command /nosuchcommand")
    child.expect(PROMPT)
    assert _users(server) == ["/usr/bin is a folder", "/etc/hosts holds names\nand addresses"]


@pytest.mark.parametrize("text, want", [
    ("/history 3", ("command", "/history 3")),
    ("  /exit  ", ("command", "/exit")),
    ("//not a command", ("message", "/not a command")),
    ("/two\nlines", ("message", "/two\nlines")),
    ("plain", ("message", "plain")),
])
def test_classify(text, want):
    assert classify(text) == want
