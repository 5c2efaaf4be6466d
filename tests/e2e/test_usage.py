"""The command line itself: usage errors, where the message comes from, help, version, colour,
and what `bai` imports for commands that never talk to an endpoint."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from importlib import metadata

import pytest

from eventlog import Store

from .helpers import (BAI, PYTHON, M, assert_one_line_error, bai, bai_env, chat, chat_posts, closed_port, configure,
                      files_under, log_rounds)

DEAD = lambda: f"http://127.0.0.1:{closed_port()}"  # noqa: E731 - an endpoint bai must not reach


# --- usage errors: exit 2, one line, nothing sent, nothing written --------------------------

def test_unknown_deployment_says_how_to_configure_it(home):
    r = chat(home, "nobody", "hi")
    line = assert_one_line_error(r, code=2)
    assert "no endpoint" in line and "bai deployment chat-config set nobody --endpoint URL" in line


@pytest.mark.parametrize("bad_id", ["bad id", "../x", "a/b", "", "x" * 129, "-"])
@pytest.mark.parametrize("command", [
    ("chat", "{id}", "hi", "--endpoint", "http://127.0.0.1:9"),
    ("chat-config", "set", "{id}", "--endpoint", "http://127.0.0.1:9"),
    ("chat-history", "show", "{id}"),
    ("chat-history", "clear", "{id}"),
    ("chat-cache", "clear", "{id}"),
])
def test_invalid_deployment_id_is_a_usage_error_before_any_file(home, bad_id, command):
    args = [a.replace("{id}", bad_id) for a in command]
    r = bai(home, "deployment", *args)
    assert_one_line_error(r, code=2)
    assert not home.exists()  # not even the store's directory was created


@pytest.mark.parametrize("params,words", [
    ("{bad json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"temperature"', "must be a JSON object"),
])
def test_malformed_params_is_a_usage_error(home, params, words):
    configure(home, "d", DEAD())  # were anything sent, this would be exit 1, not 2
    r = chat(home, "d", "hi", "--params", params)
    line = assert_one_line_error(r, code=2)
    assert "--params" in line and words in line


@pytest.mark.parametrize("message,stdin", [(("",), None), (("   ",), None), (("-",), ""), ((), "\n\n")])
def test_empty_message_is_a_usage_error(home, message, stdin):
    configure(home, "d", DEAD())
    r = chat(home, "d", *message, input=stdin)
    line = assert_one_line_error(r, code=2)
    assert "empty" in line
    assert not (home / "logs").exists() or log_rounds(home, "d") == []


def test_no_message_and_no_stdin_is_a_usage_error(home):
    configure(home, "d", DEAD())
    r = chat(home, "d")  # stdin is /dev/null: not a terminal, and empty
    assert_one_line_error(r, code=2)


@pytest.mark.parametrize("how", ["dash", "piped"])
def test_message_from_stdin(home, litellm_dep, how):
    text = "first line\nsecond line with \u2028 in it\n"
    r = chat(home, M, *(["-"] if how == "dash" else []), "--model", "mock-echo", input=text)
    assert r.code == 0, r
    # The final newline is the shell's, not the message's; the rest arrives as it was.
    assert chat_posts(litellm_dep)[-1].json["messages"] == [
        {"role": "user", "content": "first line\nsecond line with \u2028 in it"}]
    assert log_rounds(home, M)[0]["user"] == "first line\nsecond line with \u2028 in it"


def test_words_are_joined_with_spaces(home, litellm_dep):
    assert chat(home, M, "two", "words", "--model", "mock-echo").code == 0
    assert chat_posts(litellm_dep)[-1].json["messages"][-1]["content"] == "two words"


# --- help, version ----------------------------------------------------------------------------

COMMANDS = [
    (), ("deployment",), ("deployment", "chat"),
    ("deployment", "chat-config"), ("deployment", "chat-config", "set"), ("deployment", "chat-config", "show"),
    ("deployment", "chat-config", "clear"),
    ("deployment", "chat-cache"), ("deployment", "chat-cache", "show"), ("deployment", "chat-cache", "clear"),
    ("deployment", "chat-history"), ("deployment", "chat-history", "show"), ("deployment", "chat-history", "list"),
    ("deployment", "chat-history", "clear"), ("deployment", "chat-history", "compact"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "bai")
def test_help_exits_0_and_writes_nothing(home, command):
    r = bai(home, *command, "--help")
    assert r.code == 0 and r.err == "", r
    assert r.out.startswith("Usage: bai") and "Traceback" not in r.out
    assert not home.exists()


@pytest.mark.parametrize("command", [(), ("deployment", "chat"), ("deployment", "chat-config", "set"),
                                     ("deployment", "chat-history", "show")], ids=lambda c: " ".join(c) or "bai")
def test_main_helps_show_an_example(home, command):
    r = bai(home, *command, "--help")
    assert r.code == 0 and "Example" in r.out and "bai deployment chat" in r.out, r


def test_every_help_shows_an_example(home):
    missing = [" ".join(c) for c in COMMANDS if "Example" not in bai(home, *c, "--help").out]
    assert missing == []


def test_version(home):
    r = bai(home, "--version")
    assert r.code == 0 and r.out == f"bai {metadata.version('bai-chat')}\n", r


# --- colour -------------------------------------------------------------------------------------

def _run_in_pty(home, args, **env) -> tuple[int, bytes]:
    """Run bai with stdout and stderr on a pseudo-terminal (colour is only ever used there)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([BAI, *args], env=bai_env(home, **env), stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    return code, out


@pytest.mark.parametrize("args", [("deployment", "chat", "bad id", "hi"),             # an error
                                  ("deployment", "chat-history", "show", "d")])       # coloured headers
def test_no_color_means_no_escapes_even_on_a_terminal(home, args):
    Store(home).record_round("d", "hello", "world")
    code, coloured = _run_in_pty(home, args)
    assert b"\x1b[" in coloured, coloured  # the control: on a terminal bai does use colour
    code_nc, plain = _run_in_pty(home, args, NO_COLOR="1")
    assert code_nc == code and b"\x1b" not in plain, plain
    assert plain.replace(b"\r\n", b"\n").strip() != b""


# --- what is imported -----------------------------------------------------------------------------

def _imports_httpx(home, argv: list[str]) -> bool:
    code = ("import sys; from cli.main import run; code = run(sys.argv[1:]); "
            "print('\\nIMPORTED-HTTPX' if 'httpx' in sys.modules else '\\nNO-HTTPX', code)")
    proc = subprocess.run([PYTHON, "-c", code, *argv], env=bai_env(home), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    last = proc.stdout.strip().splitlines()[-1]
    assert last.split()[0] in ("IMPORTED-HTTPX", "NO-HTTPX"), proc
    return last.split()[0] == "IMPORTED-HTTPX"


@pytest.mark.parametrize("argv", [
    ["--help"], ["deployment", "chat", "--help"], ["--version"],
    ["deployment", "chat-history", "show", "d"], ["deployment", "chat-history", "show", "d", "--json"],
    ["deployment", "chat-history", "list"], ["deployment", "chat-config", "show", "d"],
    ["deployment", "chat-cache", "show", "d"],
], ids=" ".join)
def test_commands_that_never_talk_to_an_endpoint_do_not_import_httpx(home, argv):
    Store(home).record_round("d", "hello", "world")
    assert not _imports_httpx(home, argv)


def test_a_chat_does_import_httpx(home):
    # The control for the test above: the check does see httpx when it is loaded.
    assert _imports_httpx(home, ["deployment", "chat", "d", "hi", "--endpoint", DEAD(), "--model", "m"])


def test_usage_error_writes_no_files(home):
    # Nothing to do with the store: an unconfigured deployment is refused without creating it.
    assert chat(home, "nobody", "hi").code == 2
    assert not home.exists(), files_under(home)
