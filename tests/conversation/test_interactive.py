"""The interactive mode as a person uses it: a real pseudo-terminal (pexpect) running the real
`bai` against the real llama-server."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

BAI = str(Path(sys.executable).with_name("bai"))
PROMPT = "you> "


@pytest.fixture
def home(tmp_path, llama_server):
    home = tmp_path / "home"
    env = {**os.environ, "BAI_CHAT_HOME": str(home), "NO_COLOR": "1"}
    subprocess.run([BAI, "deployment", "chat-config", "set", "g", "--endpoint", llama_server.root_url],
                   env=env, check=True, timeout=60, capture_output=True)
    return env


def _history(env, deployment="g"):
    out = subprocess.run([BAI, "deployment", "chat-history", "show", deployment, "--json"], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)["messages"]


def _spawn(env, *args):
    child = pexpect.spawn(BAI, ["deployment", "chat", "g", *args], env=env, encoding="utf-8", timeout=120,
                          dimensions=(40, 200))
    child.expect(PROMPT)
    return child


def test_a_conversation_at_the_prompt_is_recorded_and_seen_by_other_commands(home):
    child = _spawn(home, "--max-tokens", "8")
    try:
        child.sendline("My name is Ada.")
        child.expect(PROMPT)
        assert [m["content"] for m in _history(home)][:1] == ["My name is Ada."]  # saved at once
        child.sendline("What is my name?")
        child.expect(PROMPT)
        child.sendline("/history 4")
        child.expect("My name is Ada.")
        child.expect(PROMPT)
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    messages = _history(home)
    assert [m["content"] for m in messages if m["role"] == "user"] == ["My name is Ada.", "What is my name?"]
    # A one-shot call continues the same conversation.
    done = subprocess.run([BAI, "deployment", "chat", "g", "and now?", "--max-tokens", "4", "-v"], env=home,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "replayed 4 message(s)" in done.stderr


def test_ctrl_c_cancels_the_answer_and_keeps_the_session(home):
    child = _spawn(home, "--max-tokens", "400")
    try:
        child.sendline("Tell me a very long story about prime numbers.")
        child.expect(r"\S")  # the answer has started
        time.sleep(0.3)
        child.sendintr()
        child.expect("interrupted; nothing was saved")
        child.expect(PROMPT)
        assert _history(home) == []  # the cancelled round is not recorded
        child.sendline("/limit 0")
        child.expect("last 0 message")
        child.expect(PROMPT)
        child.sendintr()  # Ctrl-C at the prompt: just a new prompt
        child.expect(PROMPT)
        child.sendeof()  # Ctrl-D leaves
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_multi_line_input_slash_commands_and_errors_keep_the_session(home, tmp_path):
    child = _spawn(home, "--max-tokens", "4")
    try:
        child.sendline("first line \\")
        child.expect(r"\.\.\.> ")
        child.sendline("second line")
        child.expect(PROMPT)
        child.sendline('"""')
        child.sendline("alpha")
        child.sendline("beta")
        child.sendline('"""')
        child.expect(PROMPT)
        child.sendline("/bogus")
        child.expect("unknown command /bogus")
        child.expect(PROMPT)
        child.sendline("/help")
        child.expect("/history")
        child.expect(PROMPT)
        child.sendline("/model no-such-model-but-llama-ignores-it")
        child.expect(PROMPT)
        child.sendline("/system You are terse.")
        child.expect("system prompt set")
        child.expect(PROMPT)
        child.sendline("/clear")
        child.expect(r"Forget the \d+ saved round")  # asks first
        child.sendline("n")
        child.expect("nothing was cleared")
        child.expect(PROMPT)
        child.sendline("/clear")
        child.expect("Forget the")
        child.sendline("y")
        child.expect("message\\(s\\) removed")
        child.expect(PROMPT)
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert _history(home) == []
    assert (Path(home["BAI_CHAT_HOME"]) / "bai" / "input_history").stat().st_mode & 0o777 == 0o600


def test_an_error_is_shown_and_the_session_goes_on(tmp_path, llama_server):
    env = {**os.environ, "BAI_CHAT_HOME": str(tmp_path / "h"), "NO_COLOR": "1"}
    child = pexpect.spawn(BAI, ["deployment", "chat", "g", "-i", "--endpoint", "http://127.0.0.1:9", "--model", "m"],
                          env=env, encoding="utf-8", timeout=60)
    try:
        child.expect(PROMPT)
        child.sendline("hello?")
        child.expect("cannot connect")
        child.expect(PROMPT)  # still there
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "Traceback" not in (child.before or "")
