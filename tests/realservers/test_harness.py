"""The harness works: real servers start, answer in the OpenAI shape, fail as documented.

Assertions are on protocol shape, status codes, finish_reason and usage; never on
Gemma's text (a base model that mostly echoes). LiteLLM's mock text is exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.realservers import install, servers

pytestmark = pytest.mark.realserver

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


def test_installer_fast_when_complete(llama_server, litellm_server):
    t0 = time.monotonic()
    install.ensure_installed()
    assert time.monotonic() - t0 < 0.5
    proc = subprocess.run([sys.executable, "-m", "tests.realservers.install", "--check"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
