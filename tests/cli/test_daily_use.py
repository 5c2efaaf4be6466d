"""Issue 12's daily-use items, as a user meets them: the real `bai` in a subprocess (real pipes,
sockets, a pseudo-terminal) or in-process through CliRunner, against the echo server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from cli._turn_notes import describe_turn
from cli._interactive import limit_note
from eventlog import Store
from tests.echo_server import MODEL, EchoServer

from .helpers import bai

BAI = str(Path(sys.executable).with_name("bai"))
TIMEOUT = 60
U1 = "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BAI_CHAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "BAI_TOKEN", "BAI_DEPLOYMENT", "BAI_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def run(*args: str, stdin=subprocess.DEVNULL, input: str | None = None, env: dict | None = None):
    """The real console script, under a timeout."""
    kw = {"input": input} if input is not None else {"stdin": stdin}
    return subprocess.run([BAI, *args], capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, **(env or {})}, **kw)


def users(server) -> list[str]:
    return [r["messages"][-1]["content"] for r in server.chat_requests()]


def auth_headers(server) -> list[str | None]:
    return [h.get("Authorization") for m, p, _, h in server.requests if m == "POST"]


def configure(dep: str, url: str, *extra: str) -> None:
    code, _, err = bai("deployment", "chat-config", "set", dep, "--endpoint", url, *extra)
    assert code == 0, err


# -- 1. piped stdin plus a MESSAGE -----------------------------------------------------------


def test_piped_stdin_and_a_message_are_both_sent(home, server):
    configure("d1", server.root_url, "--model", "m")
    done = run("deployment", "chat", "d1", "Explain", "this:", input="line one\nline two\n")
    assert done.returncode == 0, done.stderr
    assert users(server) == ["Explain this:\n\nline one\nline two"]


def test_dash_alone_reads_stdin_only_and_a_last_dash_asks_for_it(home, server, tmp_path):
    configure("d1", server.root_url, "--model", "m")
    assert run("deployment", "chat", "d1", "-", input="only stdin\n").returncode == 0
    # a last "-" reads stdin whatever it is (here a regular file, read anyway)
    text = tmp_path / "notes.txt"
    text.write_text("from a file\n")
    with open(text) as f:
        assert run("deployment", "chat", "d1", "Summarize:", "-", stdin=f).returncode == 0
    assert users(server) == ["only stdin", "Summarize:\n\nfrom a file"]


def test_an_idle_socket_or_dev_null_on_stdin_is_not_waited_for(home, server):
    """Under a service manager or a test runner stdin may be a socket (or /dev/null) open and
    silent forever: with a MESSAGE, bai sends the MESSAGE and does not read it."""
    configure("d1", server.root_url, "--model", "m")
    ours, theirs = socket.socketpair()
    try:
        done = run("deployment", "chat", "d1", "hello", stdin=theirs)  # never written, never closed
    finally:
        ours.close()
        theirs.close()
    assert done.returncode == 0, done.stderr
    assert run("deployment", "chat", "d1", "again", stdin=subprocess.DEVNULL).returncode == 0
    assert users(server) == ["hello", "again"]


# -- 2. the cached model is tied to its endpoint, refreshed once when the server drops it ----

VLLM_404 = {"object": "error", "message": "The model `old-model` does not exist.", "type": "NotFoundError",
            "param": None, "code": 404}  # as tests/endpoint/fixtures/vllm_error_404_v0_8.json
LITELLM_400 = {"error": {"message": "litellm.BadRequestError: Invalid model name passed in model=old-model. Call "
                                    "`/v1/models` to view available models for your key.",
                         "type": "invalid_request_error", "param": "model", "code": "400"}}


def _cache_model(home: Path, dep: str, endpoint: str, model: str) -> None:
    from cli._settings import now_iso

    (home / "bai").mkdir(parents=True, exist_ok=True)
    (home / "bai" / "cache.json").write_text(json.dumps({"deployments": {dep: {
        "endpoint": endpoint, "default_model": model, "last_synced_at": now_iso(),
        "window_checked_at": now_iso()}}}))


@pytest.mark.parametrize("body,status", [(VLLM_404, 404), (LITELLM_400, 400)])
def test_a_cached_model_the_server_no_longer_knows_is_refreshed_once(home, server, body, status):
    configure("d1", server.root_url)
    _cache_model(home, "d1", server.root_url, "old-model")
    server.fail_next(status, body)
    code, out, err = bai("deployment", "chat", "d1", "hi")
    assert code == 0, err
    assert "no longer knows the cached model old-model" in err and MODEL in err
    assert [r["model"] for r in server.chat_requests()] == ["old-model", MODEL]
    cache = json.loads((home / "bai" / "cache.json").read_text())["deployments"]["d1"]
    assert cache["default_model"] == MODEL


def test_a_configured_model_not_found_is_not_replaced(home, server):
    configure("d1", server.root_url, "--model", "old-model")
    server.fail_next(404, VLLM_404)
    code, _, err = bai("deployment", "chat", "d1", "hi")
    assert code == 1 and "does not exist" in err
    assert len(server.chat_requests()) == 1  # the user's own choice: said, not swapped


def test_a_one_off_endpoint_leaves_the_deployments_cache_alone(home, server):
    with EchoServer() as other:
        configure("d1", other.root_url)
        _cache_model(home, "d1", other.root_url, "configured-model")
        before = (home / "bai" / "cache.json").read_bytes()
        assert bai("deployment", "chat", "d1", "hi", "--endpoint", server.root_url)[0] == 0
        assert (home / "bai" / "cache.json").read_bytes() == before
        assert server.chat_requests()[0]["model"] == MODEL  # asked of the one-off endpoint, not the cache
        assert bai("deployment", "chat", "d1", "again")[0] == 0
        assert other.chat_requests()[0]["model"] == "configured-model"


def test_after_an_endpoint_change_the_old_model_is_not_sent(home, server):
    configure("d1", "http://127.0.0.1:9")
    _cache_model(home, "d1", "http://127.0.0.1:9", "old-model")
    configure("d1", server.root_url)
    assert bai("deployment", "chat", "d1", "hi")[0] == 0
    assert server.chat_requests()[0]["model"] == MODEL


# -- 3. a group alone prints its help ---------------------------------------------------------


@pytest.mark.parametrize("words", [(), ("deployment",), ("deployment", "chat-config"), ("deployment", "chat-cache"),
                                   ("deployment", "chat-history")])
def test_a_group_alone_prints_its_help(home, words):
    done = run(*words)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"Usage: bai {' '.join(words)}".rstrip() + " [OPTIONS] COMMAND") and "Commands:" in done.stdout


# -- 5. --token - on a terminal ---------------------------------------------------------------


def test_token_dash_on_a_terminal_prompts_without_echo(home, tmp_path):
    child = pexpect.spawn(BAI, ["deployment", "chat-config", "set", "d1", "--token", "-"], encoding="utf-8",
                          timeout=TIMEOUT, env={**os.environ, "BAI_CHAT_HOME": str(home)})
    try:
        child.expect("Token: ")
        child.sendline("s3cret-tok")
        child.expect(pexpect.EOF)
        seen = child.before
    finally:
        child.close(force=True)
    assert child.exitstatus == 0 and "Updated d1: token" in seen
    assert "s3cret" not in seen  # not echoed
    assert json.loads((home / "bai" / "config.json").read_text())["deployments"]["d1"]["token"] == "s3cret-tok"


def test_chat_token_dash_reads_a_line_from_a_pipe(home, server):
    configure("d1", server.root_url, "--model", "m")
    done = run("deployment", "chat", "d1", "--token", "-", "-", input="tok-1\nthe message\n")
    assert done.returncode == 0, done.stderr
    assert auth_headers(server) == ["Bearer tok-1"] and users(server) == ["the message"]


# -- 8. a default deployment, the token from the environment, list, models, completion ---------


def test_default_deployment_and_the_first_word_rule(home, server, monkeypatch):
    configure("d1", server.root_url, "--model", "m")
    configure("d2", server.root_url, "--model", "m2")
    code, _, err = bai("deployment", "chat", "hello", "there")
    assert code == 2 and "no endpoint is set for deployment hello" in err  # no default: the first word is the deployment
    assert bai("deployment", "chat-config", "default", "d1")[0] == 0
    assert bai("deployment", "chat-config", "default")[1] == "d1\n"
    assert "default_deployment" not in json.loads((home / "bai" / "config.json").read_text())["deployments"]
    assert bai("deployment", "chat", "hello", "there")[0] == 0  # unknown first word: all of it is the message
    assert bai("deployment", "chat", "d2", "to two")[0] == 0  # a known deployment
    code, _, err = bai("deployment", "chat", U1, "to a uuid")
    assert code == 2 and f"no endpoint is set for deployment {U1}" in err  # a UUID is always a deployment
    monkeypatch.setenv("BAI_DEPLOYMENT", "d2")
    assert bai("deployment", "chat", "via env")[0] == 0
    monkeypatch.delenv("BAI_DEPLOYMENT")
    assert [(r["model"], r["messages"][-1]["content"]) for r in server.chat_requests()] == [
        ("m", "hello there"), ("m2", "to two"), ("m2", "via env")]
    assert bai("deployment", "chat-config", "default", "--unset")[0] == 0
    assert bai("deployment", "chat-config", "default")[1] == ""
    assert bai("deployment", "chat-config", "default", "d2")[0] == 0
    assert bai("deployment", "chat-config", "default", "")[0] == 0  # "" clears too
    code, _, err = bai("deployment", "chat")
    assert code == 2 and "no DEPLOYMENT given and no default" in err


def test_token_from_the_environment(home, server, monkeypatch):
    configure("d1", server.root_url, "--model", "m", "--token", "stored")
    assert bai("deployment", "chat", "d1", "a")[0] == 0
    assert bai("deployment", "chat-config", "set", "d1", "--token-env", "MY_TOKEN")[0] == 0
    monkeypatch.setenv("MY_TOKEN", "from-my-var")
    assert bai("deployment", "chat", "d1", "b")[0] == 0
    monkeypatch.setenv("BAI_TOKEN", "from-bai-token")
    assert bai("deployment", "chat", "d1", "c")[0] == 0
    assert bai("deployment", "chat", "d1", "d", "--token", "flag")[0] == 0
    assert auth_headers(server) == ["Bearer stored", "Bearer from-my-var", "Bearer from-bai-token", "Bearer flag"]
    _, out, _ = bai("deployment", "chat-config", "show", "d1", "--json")
    assert json.loads(out)["token_env"] == "MY_TOKEN" and "from-my-var" not in out and "stored" not in out
    assert "from-my-var" not in (home / "bai" / "config.json").read_text()
    assert bai("deployment", "chat-config", "set", "d1", "--token-env", "not a name")[0] == 2


def test_config_list(home):
    configure("d1", "http://127.0.0.1:9", "--token", "t", "--model", "m")
    configure(U1, "http://127.0.0.1:8")
    bai("deployment", "chat-config", "default", "d1")
    code, out, _ = bai("deployment", "chat-config", "list")
    assert code == 0 and "t\n" not in out
    lines = out.splitlines()
    assert lines[0].split() == ["DEPLOYMENT", "ENDPOINT", "MODEL", "TOKEN"]
    assert lines[1].split() == [U1, "http://127.0.0.1:8", "-", "no"]
    assert lines[2].split() == ["d1", "*", "http://127.0.0.1:9", "m", "yes"]
    doc = json.loads(bai("deployment", "chat-config", "list", "--json")[1])
    assert [(r["deployment"], r["token"], r["default"]) for r in doc] == [(U1, False, False), ("d1", True, True)]


def test_models_lists_the_servers_models(home, server):
    configure("d1", server.root_url)
    code, out, _ = bai("deployment", "models", "d1")
    assert code == 0 and out == f"{MODEL}\n"
    doc = json.loads(bai("deployment", "models", "d1", "--json")[1])
    assert [m["id"] for m in doc["models"]] == [MODEL] and doc["endpoint"] == server.root_url


def _complete(home: Path, words: str) -> list[str]:
    env = {"BAI_CHAT_HOME": str(home), "_BAI_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}
    done = run(env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines()]


def test_shell_completion_of_deployment_ids(home):
    configure("alpha", "http://127.0.0.1:9")
    Store(home).record_round("beta", "q", "a")
    assert _complete(home, "bai deployment chat ") == ["alpha", "beta"]
    assert _complete(home, "bai deployment chat-config show al") == ["alpha"]
    (home / "bai" / "config.json").write_text("{not json")  # a damaged file completes nothing from it, quietly
    assert _complete(home, "bai deployment chat ") == ["beta"]


# -- 11, 13. what is replayed and what is saved, said as it is --------------------------------


def test_an_odd_limit_says_it_rounds_down(home, server):
    configure("d1", server.root_url, "--model", "m")
    assert bai("deployment", "chat", "d1", "one")[0] == 0
    code, _, err = bai("deployment", "chat", "d1", "two", "--history-limit", "1", "-v")
    assert code == 0 and "replayed 0 message(s) (limit 1, rounded down to whole rounds)" in err
    assert limit_note(1) == ("replaying the last 0 message(s) (no history) from now on "
                             "(1 rounds down: history is replayed in whole rounds of 2)")
    assert limit_note(3).startswith("replaying the last 2 message(s) from now on (3 rounds down")
    assert limit_note(4) == "replaying the last 4 message(s) from now on"


def test_a_round_over_the_cap_is_not_called_round_0(home, server):
    configure("d1", server.root_url, "--model", "m", "--history-cap", "1")
    code, _, err = bai("deployment", "chat", "d1", "hi", "-v")
    assert code == 4 and "saved as round" not in err and "· not saved" in err
    assert describe_turn(2, "m", None, 3).endswith("saved as round 3")


def test_lowering_the_cap_says_what_it_hides(home, server):
    configure("d1", server.root_url, "--model", "m")
    for word in ("one", "two", "three"):
        assert bai("deployment", "chat", "d1", word)[0] == 0
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--history-cap", "2")
    assert code == 0 and "keeps 2 of the 6 saved message(s): the oldest 4" in err
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--history-cap", "10")
    assert code == 0 and "keeps" not in err  # raising it hides nothing


# -- 15. the 401 hint, BAI_DEBUG, Ctrl-C before the first token --------------------------------


def test_the_401_hint_keeps_the_token_out_of_shell_history(home, server):
    configure("d1", server.root_url, "--model", "m")
    server.fail_next(401, {"error": {"message": "Invalid API Key", "type": "invalid_request_error"}})
    code, _, err = bai("deployment", "chat", "d1", "hi")
    assert code == 1 and "chat-config set d1 --token - (or BAI_TOKEN for one call)" in err and "--token T" not in err


def test_bai_debug_adds_a_traceback_to_a_known_error(home):
    configure("d1", "http://127.0.0.1:9", "--model", "m")
    plain = run("deployment", "chat", "d1", "hi")
    debug = run("deployment", "chat", "d1", "hi", env={"BAI_DEBUG": "1"})
    assert plain.returncode == debug.returncode == 1
    assert plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr
    first, rest = debug.stderr.split("\n", 1)
    assert first == plain.stderr.rstrip("\n") and rest.startswith("Traceback") and "ConnectError" in rest


PARTIAL = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
           b'data: {"id":"x","object":"chat.completion.chunk","created":0,"model":"m",'
           b'"choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}\n\n')


@pytest.mark.parametrize("sent,expected", [
    (b"", "^C\r\nbai: interrupted; nothing was saved"),  # before the first token: ^C, then a line of its own
    (PARTIAL, "^C\r\nbai: interrupted; nothing was saved"),  # after "partial": the answer's newline, no blank line
])
def test_ctrl_c_is_said_on_its_own_line(home, sent, expected):
    """A server that takes the request and says nothing more (or a piece of an answer); Ctrl-C then."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    configure("d1", url, "--model", "m", "--context-window", "4096")  # no /props to ask first
    child = pexpect.spawn(BAI, ["deployment", "chat", "d1", "hi"], encoding="utf-8", timeout=TIMEOUT,
                          env={**os.environ, "BAI_CHAT_HOME": str(home), "NO_COLOR": "1"})
    try:
        conn, _ = listener.accept()
        conn.settimeout(TIMEOUT)
        got = b""
        for _ in range(1000):  # until the whole request arrived: bai now waits for the answer
            got += conn.recv(65536)
            if b"\r\n\r\n" in got and b'"messages"' in got:
                break
        if sent:
            conn.sendall(sent)
            child.expect("partial")
        child.sendintr()
        child.expect(pexpect.EOF)
        seen = child.before
        conn.close()
    finally:
        child.close(force=True)
        listener.close()
    assert child.exitstatus == 130
    assert seen.startswith(expected), repr(seen)


# -- 15. the demo cleans up after itself -------------------------------------------------------


@pytest.mark.realserver
def test_the_demo_leaves_no_server_folder_behind(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    done = subprocess.run([sys.executable, "-m", "tests.demo"], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).parents[2],
                          env={**os.environ, "TMPDIR": str(temp), "BAI_CHAT_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(temp.iterdir()) == []


@pytest.mark.realserver
def test_real_litellm_model_not_found_is_refreshed_once(home, litellm_server):
    """LiteLLM's own "model not found" (a 400), for a cached model it does not serve."""
    url = litellm_server.root_url
    configure("d1", url, "--token", litellm_server.api_key, "--context-window", "4096")
    _cache_model(home, "d1", url, "no-such-model")
    done = run("deployment", "chat", "d1", "hi", "--no-stream")
    assert done.returncode == 0, done.stderr
    assert "no longer knows the cached model no-such-model" in done.stderr
    cache = json.loads((home / "bai" / "cache.json").read_text())["deployments"]["d1"]
    assert cache["default_model"] == litellm_server.models[0]
