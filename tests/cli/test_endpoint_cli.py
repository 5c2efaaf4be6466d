"""The endpoint side of issues 9 and 12, through the `bai` command (in-process, CliRunner) against
servers on 127.0.0.1: what a user sees of vLLM's context errors, an answer cut short, the
deadline, and a server's terminal escape sequences."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cli import main as cli_main
from eventlog import Store
from tests.echo_server import EchoServer
from tests.endpoint.server import Reply, ScriptedServer

CHAT = "/v1/chat/completions"
SSE = "text/event-stream"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BAI_CHAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


@click.command(add_help_option=False, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def _entry(ctx):
    ctx.exit(cli_main.run(ctx.args))


class Run:
    def __init__(self, result) -> None:
        self.code, self.out_bytes, self.err = result.exit_code, result.stdout_bytes, result.stderr
        self.out = self.out_bytes.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"Run(code={self.code}, out={self.out[-500:]!r}, err={self.err[-800:]!r})"


def bai(*args: str) -> Run:
    return Run(CliRunner().invoke(_entry, list(args), catch_exceptions=False))


def configure(dep: str, url: str, *extra: str) -> None:
    r = bai("deployment", "chat-config", "set", dep, "--endpoint", url, *extra)
    assert r.code == 0, r


def one_line_error(r: Run, code: int = 1) -> str:
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert r.code == code and len(lines) == 1 and lines[0].startswith("bai: error: "), r
    return lines[0]


@pytest.fixture
def echo():
    with EchoServer() as server:
        yield server


@pytest.fixture
def scripted():
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.stop()


# --- vLLM's context errors (real vLLM 0.32 bodies, tests/realservers/README.md) --------------

VLLM_OVER_WINDOW = ("This model's maximum context length is 2048 tokens. However, your prompt contains at least "
                    "2049 input tokens, which exceeds this limit even without any output tokens. Please reduce the "
                    "length of the input prompt.")
VLLM_MAX_TOKENS = "max_tokens=4096 cannot be greater than max_model_len=2048. Please request fewer output tokens."


def _vllm_body(message: str, param: str, shape: str) -> dict:
    error = {"message": message, "type": "BadRequestError", "param": param, "code": 400}
    return {"object": "error", **error} if shape == "flat" else {"error": error}


def _seed(home, dep: str, rounds: int, user: str = "hello") -> None:
    store = Store(home)
    for n in range(rounds):
        store.record_round(dep, f"{user} {n}", f"answer {n}")


@pytest.mark.parametrize("shape", ["flat", "nested"])
def test_vllm_over_the_window_is_retried_with_enough_left_out_by_its_numbers(home, echo, shape):
    # A wrong (too large) configured window: bai sends all 10 rounds and vLLM refuses. Its numbers
    # (at least 2049 of 2048) say one token too many: one round goes, not half of them.
    configure("v", echo.root_url, "--model", "m", "--context-window", "100000", "--history-limit", "20")
    _seed(home, "v", 10)
    echo.fail_next(400, _vllm_body(VLLM_OVER_WINDOW, "input_tokens", shape))
    r = bai("deployment", "chat", "v", "hi")
    assert r.code == 0, r
    sent = [len(b["messages"]) for b in echo.chat_requests()]
    assert sent == [21, 19], (sent, r)
    assert "retrying with 2 fewer replayed message(s) (18 left)" in r.err, r
    cache = json.loads(bai("deployment", "chat-cache", "show", "v", "--json").out)
    assert cache["context_window"] == 2048


def test_vllm_count_that_stops_at_the_window_is_a_lower_bound(home, echo):
    # "at least 2049": the prompt may be far larger. With the window now known, bai's own
    # estimate decides too: rounds of ~1000 tokens each, so one fits and nine do not.
    configure("v", echo.root_url, "--model", "m", "--context-window", "100000", "--history-limit", "20")
    _seed(home, "v", 10, user="apple banana cherry " * 150)
    echo.fail_next(400, _vllm_body(VLLM_OVER_WINDOW, "input_tokens", "flat"))
    r = bai("deployment", "chat", "v", "hi")
    assert r.code == 0, r
    sent = [len(b["messages"]) for b in echo.chat_requests()]
    assert sent[0] == 21 and sent[1] <= 5, (sent, r)


def test_vllm_max_tokens_over_max_model_len_is_said_and_not_retried(home, echo):
    configure("v", echo.root_url, "--model", "m")
    _seed(home, "v", 4)
    echo.fail_next(400, _vllm_body(VLLM_MAX_TOKENS, "max_tokens", "nested"))
    r = bai("deployment", "chat", "v", "hi", "--max-tokens", "4096")
    line = one_line_error(r)
    assert "max_tokens 4096 is more than the model's whole context window (2048 tokens)" in line, line
    assert len(echo.chat_requests()) == 1 and "retrying" not in r.err  # fewer rounds cannot help
    cache = json.loads(bai("deployment", "chat-cache", "show", "v", "--json").out)
    assert cache["context_window"] == 2048  # learned for next time


# --- what cut an answer short (issue 12, item 12) ----------------------------------------------

def _cut_stream(completion: int, prompt: int = 10) -> Reply:
    body = (b'data: {"choices":[{"index":0,"delta":{"content":"cut sh"}}]}\n\n'
            b'data: {"choices":[{"index":0,"delta":{"content":"ort"},"finish_reason":"length"}]}\n\n'
            b'data: {"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}\n\n'
            b"data: [DONE]\n\n") % (prompt, completion, prompt + completion)
    return Reply(200, body, content_type=SSE)


@pytest.mark.parametrize("args, window, prompt, completion, said", [
    ((), None, 10, 500, "cut at 500 tokens, by the server's own limit on an answer or the context window "
                        "(no max_tokens was asked for)"),
    ((), 4096, 10, 500, "cut at 500 tokens, by the server's own limit on an answer (no max_tokens was asked for)"),
    (("--max-tokens", "64"), None, 10, 64, "cut at --max-tokens 64 (finish_reason: length)"),
    (("--params", '{"max_tokens": 64}'), None, 10, 64, "cut at --params max_tokens 64"),
    ((), 512, 500, 12, "cut at the end of the model's context window (500 prompt + 12 answer tokens of 512)"),
    (("--max-tokens", "64"), 512, 500, 12, "cut at the end of the model's context window"),
], ids=["server-limit", "server-limit-window-known", "max-tokens", "params", "window", "window-before-max-tokens"])
def test_an_answer_cut_short_says_what_cut_it(home, scripted, args, window, prompt, completion, said):
    extra = ("--context-window", str(window)) if window else ()
    configure("c", scripted.url, "--model", "m", *extra)
    scripted.add(CHAT, _cut_stream(completion, prompt))
    r = bai("deployment", "chat", "c", "hi", *args)
    assert r.code == 0 and r.out == "cut short\n", r
    assert said in r.err and "saved as it is" in r.err, r
    if not args:
        assert "max_tokens (finish_reason" not in r.err, r  # the old "cut at max_tokens" with none given


# --- the deadline ------------------------------------------------------------------------------

def _trickle(pieces: int = 40, delay: float = 0.1) -> Reply:
    events = [b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'] * pieces
    body = b"".join(events) + b"data: [DONE]\n\n"
    return Reply(200, body, content_type=SSE, pieces=events + [b"data: [DONE]\n\n"], delay=delay, framing="chunked")


def test_deadline_flag_ends_a_trickling_answer(home, scripted):
    configure("t", scripted.url, "--model", "m")
    scripted.add(CHAT, _trickle())
    r = bai("deployment", "chat", "t", "hi", "--deadline", "0.5", "--timeout", "30")
    line = one_line_error(r)
    assert "after 0.5 s, the deadline for a whole request" in line and "--deadline" in line, line
    assert Store(home).rounds("t") == []


def test_deadline_from_the_config_and_the_flag_wins(home, scripted):
    configure("t", scripted.url, "--model", "m", "--deadline", "0.5")
    assert json.loads(bai("deployment", "chat-config", "show", "t", "--json").out)["deadline"] == 0.5
    scripted.add(CHAT, _trickle(), _trickle(pieces=5, delay=0.05))
    assert "the deadline for a whole request" in one_line_error(bai("deployment", "chat", "t", "hi"))
    r = bai("deployment", "chat", "t", "hi", "--deadline", "60")
    assert r.code == 0 and r.out == "aaaaa\n", r
    assert bai("deployment", "chat-config", "set", "t", "--deadline", "").code == 0
    assert json.loads(bai("deployment", "chat-config", "show", "t", "--json").out)["deadline"] is None


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "1e308", "soon"])
def test_deadline_must_be_a_sensible_number(home, value):
    configure("t", "http://127.0.0.1:9", "--model", "m")
    line = one_line_error(bai("deployment", "chat", "t", "hi", "--deadline", value), code=2)
    assert "--deadline" in line, line
    assert bai("deployment", "chat-config", "set", "t", "--deadline", value).code == 2


def test_deadline_default_in_help_is_the_clients(home):
    from cli.endpoint import DEFAULT_DEADLINE, MAX_DEADLINE
    from cli._cmd_chat import MAX_DEADLINE as CHECKED

    assert f"default {DEFAULT_DEADLINE:g}" in bai("deployment", "chat", "--help").out
    assert CHECKED == MAX_DEADLINE


# --- terminal escape sequences from a server ----------------------------------------------------

HOSTILE = "A\x1b]52;c;ZWNobyBwd25lZA==\x07B\x1b]0;title\x1b\\C\x1b[2J\x1b[31mD\x9b1;1HE\x9d8;;x\x9cF\rG\x00H\tI"
SHOWN = "ABCDEFGH\tI"  # what a terminal may see of it


def _controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f]


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_an_answer_is_shown_without_control_sequences_and_saved_as_sent(home, echo, stream):
    # The echo server answers with the message: every escape comes back from the server, split
    # across 7-character stream chunks.
    configure("e", echo.root_url, "--model", "m")
    r = bai("deployment", "chat", "e", HOSTILE, stream)
    assert r.code == 0, r
    assert r.out == f"echo: {SHOWN} [1 messages]\n", r
    assert Store(home).rounds("e")[0].assistant == f"echo: {HOSTILE} [1 messages]"  # saved as received


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_raw_prints_the_answer_as_sent(home, echo, stream):
    configure("e", echo.root_url, "--model", "m")
    r = bai("deployment", "chat", "e", HOSTILE, stream, "--raw")
    assert r.code == 0 and r.out == f"echo: {HOSTILE} [1 messages]\n", r


def test_json_output_escapes_every_control_character(home, echo):
    configure("e", echo.root_url, "--model", "m")
    r = bai("deployment", "chat", "e", HOSTILE, "--json")
    assert r.code == 0 and not _controls(r.out.replace("\n", "")), r
    assert json.loads(r.out)["choices"][0]["message"]["content"] == f"echo: {HOSTILE} [1 messages]"


def test_history_show_strips_what_was_saved_as_received(home):
    Store(home).record_round("h", "question", HOSTILE, model="m\x1b]0;x\x07odel")
    r = bai("deployment", "chat-history", "show", "h")
    assert r.code == 0 and not _controls(r.out.replace("\n", "")) and SHOWN in r.out and "model" in r.out, r
    r = bai("deployment", "chat-history", "show", "h", "--json")
    assert not _controls(r.out.replace("\n", "")) and json.loads(r.out)["messages"][1]["content"] == HOSTILE


@pytest.mark.parametrize("status", [200, 400])
def test_error_messages_carry_no_control_sequences(home, echo, status):
    configure("e", echo.root_url, "--model", "m")
    echo.fail_next(status, {"error": {"message": f"bad {HOSTILE}", "type": "x\x1b[5mblink"}})
    line = one_line_error(bai("deployment", "chat", "e", "hi"))
    assert not _controls(line) and "bad ABCDEF GH I" in line, line  # \r and \t: whitespace, collapsed


def test_help_still_imports_only_click():
    code = ("import sys; from cli.main import run\n"
            "for argv in (['--help'], ['deployment', 'chat', '--help'], ['deployment', 'chat-config', 'set', '--help']):\n"
            "    run(argv)\n"
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('msgspec', 'httpx', 'eventlog')"
            " or m.startswith('cli.endpoint') or m in ('cli._chat', 'cli._settings')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "LOADED []", out


# --- a hostile server's body and a wrong scheme, as the user sees them ---------------------------

def test_deeply_nested_props_do_not_stop_a_chat(home, scripted):
    # llama.cpp's /props is asked when the window is unknown; 100,000 levels of it used to end
    # the command in "internal error: RecursionError".
    configure("n", scripted.url)
    scripted.add("/v1/models", Reply(200, b'{"data":[{"id":"m"}]}'))
    scripted.add("/props", Reply(200, b"[" * 100_000 + b"]" * 100_000))
    scripted.add(CHAT, Reply(200, b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}'
                                  b"\n\ndata: [DONE]\n\n", content_type=SSE))
    r = bai("deployment", "chat", "n", "hi")
    assert r.code == 0 and r.out == "ok\n", r


def test_a_deeply_nested_answer_is_a_one_line_error(home, scripted):
    configure("n", scripted.url, "--model", "m")
    scripted.add(CHAT, Reply(200, b'{"choices":' + b"[" * 100_000 + b"]" * 100_000 + b"}"))
    line = one_line_error(bai("deployment", "chat", "n", "hi", "--no-stream"))
    assert "nested too deeply" in line, line


def test_https_to_a_plain_http_server_is_one_line_at_once(home, echo):
    https = echo.root_url.replace("http://", "https://")
    configure("p", https, "--model", "m")
    line = one_line_error(bai("deployment", "chat", "p", "hi"))
    assert f"answers in plain HTTP, not TLS: use {echo.root_url}" in line, line
