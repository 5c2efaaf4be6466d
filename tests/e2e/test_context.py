"""Two `bai` calls form one conversation: what goes on the wire, what is recorded, what is cached,
and how the replay is cut to the history limit and the context window.

The real servers (llama-server with Gemma 270M, LiteLLM) sit behind a recording proxy, so every
assertion is on the request bai actually sent and on the store's real files, never on the
model's words.
"""

from __future__ import annotations

import json

import pytest

from eventlog import Store
from tests.realservers.servers import MOCK_ECHO_TEXT

from .helpers import G, M, bai, chat, chat_posts, configure, log_rounds, model_gets, printed, show

MAX = ("--max-tokens", "4")
WIRE_KEYS = {"role", "content"}  # only these go on the wire (created_at, seq stay on disk)


def test_second_call_replays_the_first_round(home, llama_dep):
    proxy = llama_dep
    first = chat(home, G, "Name three prime numbers.", *MAX)
    assert first.code == 0, first
    saved = show(home, G)
    assert [m["role"] for m in saved] == ["user", "assistant"]
    answer = saved[1]["content"]
    # What was printed is exactly what was saved (plus the newline bai ends the line with).
    assert first.out == printed(answer) and saved[0]["content"] == "Name three prime numbers."

    second = chat(home, G, "Now add them up.", *MAX, "--json")
    assert second.code == 0, second
    sent = chat_posts(proxy)[-1].json["messages"]
    assert sent == [
        {"role": "user", "content": "Name three prime numbers."},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "Now add them up."},
    ]
    with_history = json.loads(second.out)["usage"]["prompt_tokens"]

    alone = chat(home, G, "Now add them up.", *MAX, "--json", "--history-limit", "0")
    assert alone.code == 0, alone
    assert chat_posts(proxy)[-1].json["messages"] == [{"role": "user", "content": "Now add them up."}]
    without = json.loads(alone.out)["usage"]["prompt_tokens"]
    # The server really saw the replayed round: it cost prompt tokens.
    assert with_history > without > 0

    # The usage each answer came with is kept with its round in the log.
    rounds = log_rounds(home, G)
    assert [r["usage"]["prompt_tokens"] for r in rounds[1:]] == [with_history, without]


def test_history_limit_zero_sends_nothing_old_but_records(home, llama_dep):
    for text in ("one", "two"):
        assert chat(home, G, text, *MAX).code == 0
    r = chat(home, G, "three", *MAX, "--history-limit", "0")
    assert r.code == 0, r
    assert chat_posts(llama_dep)[-1].json["messages"] == [{"role": "user", "content": "three"}]
    assert [m["content"] for m in show(home, G) if m["role"] == "user"] == ["one", "two", "three"]


def test_history_limit_replays_whole_rounds_only(home, llama_dep):
    for text in ("one", "two", "three"):
        assert chat(home, G, text, *MAX).code == 0
    # K=3 rounds down to one whole round: the replay never starts with an assistant message.
    assert chat(home, G, "four", *MAX, "--history-limit", "3").code == 0
    sent = chat_posts(llama_dep)[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "three" and sent[-1]["content"] == "four"
    assert all(set(m) == WIRE_KEYS for m in sent)


SETTINGS = ("config.json", "cache.json", "bai/config.json", "bai/cache.json")


def test_clear_wipes_the_transcript_and_nothing_else(home, llama_dep):
    assert chat(home, G, "remember me", *MAX).code == 0
    assert chat(home, G, "and me", *MAX, "--model", "gemma-3-270m").code == 0
    settings = {name: (home / name).read_bytes() for name in SETTINGS if (home / name).exists()}
    assert {"bai/config.json", "bai/cache.json"} <= set(settings), settings
    r = bai(home, "deployment", "chat-history", "clear", G)
    assert r.code == 0 and "4 message(s) removed" in r.err, r
    assert show(home, G) == [] and log_rounds(home, G) == []
    assert {name: (home / name).read_bytes() for name in SETTINGS if (home / name).exists()} == settings
    for path in home.rglob("*"):  # the cleared text is in no file at all, not even in the raw log
        if path.is_file():
            data = path.read_bytes()
            assert b"remember me" not in data and b"and me" not in data, path
    # And the next turn starts a new conversation on the wire.
    assert chat(home, G, "fresh start", *MAX).code == 0
    assert chat_posts(llama_dep)[-1].json["messages"] == [{"role": "user", "content": "fresh start"}]


def test_system_prompt_goes_first_and_is_not_recorded(home, llama_dep):
    assert chat(home, G, "hello", *MAX).code == 0
    r = chat(home, G, "again", *MAX, "--system", "Answer briefly.")
    assert r.code == 0, r
    sent = chat_posts(llama_dep)[-1].json["messages"]
    assert sent[0] == {"role": "system", "content": "Answer briefly."}
    assert [m["role"] for m in sent[1:]] == ["user", "assistant", "user"]
    saved = show(home, G)
    assert len(saved) == 4 and all(m["role"] != "system" for m in saved)
    assert "Answer briefly." not in (home / "history.json").read_text()
    assert "Answer briefly." not in (home / "bai" / "logs" / f"{G}.jsonl").read_text()


def test_configured_system_prompt_is_sent_and_a_flag_overrides_it(home, llama_dep):
    configure(home, G, llama_dep.root_url, "--system", "From config.")
    assert chat(home, G, "hi", *MAX).code == 0
    assert chat_posts(llama_dep)[-1].json["messages"][0] == {"role": "system", "content": "From config."}
    assert chat(home, G, "hi", *MAX, "--system", "From flag.").code == 0
    assert chat_posts(llama_dep)[-1].json["messages"][0] == {"role": "system", "content": "From flag."}


def test_params_reach_the_wire_but_model_and_messages_stay_bais(home, llama_dep):
    params = json.dumps({"temperature": 0, "top_k": 1, "model": "not-this", "messages": []})
    r = chat(home, G, "hi", *MAX, "--params", params, "--model", "gemma-3-270m")
    assert r.code == 0, r
    body = chat_posts(llama_dep)[-1].json
    assert body["temperature"] == 0 and body["top_k"] == 1 and body["max_tokens"] == int(MAX[1])
    assert body["model"] == "gemma-3-270m"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["stream"] is True


def test_model_flag_is_sent_without_asking_the_server(home, llama_dep):
    # llama-server serves whatever is loaded under any name; the name on the wire is ours.
    r = chat(home, G, "hi", *MAX, "--model", "my-alias")
    assert r.code == 0, r
    assert chat_posts(llama_dep)[-1].json["model"] == "my-alias"
    assert model_gets(llama_dep) == []


def test_default_model_comes_from_v1_models_once_then_the_cache(home, llama_dep):
    assert chat(home, G, "hi", *MAX).code == 0
    assert len(model_gets(llama_dep)) == 1
    assert chat_posts(llama_dep)[-1].json["model"] == "gemma-3-270m"
    cache = json.loads((home / "bai" / "cache.json").read_text())["deployments"][G]
    assert cache["default_model"] == "gemma-3-270m" and cache["last_synced_at"]

    llama_dep.clear()
    assert chat(home, G, "hi again", *MAX).code == 0
    assert model_gets(llama_dep) == []  # the cached default was used
    assert chat_posts(llama_dep)[-1].json["model"] == "gemma-3-270m"


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/v1/chat/completions"])
def test_endpoint_url_forms_all_reach_v1_chat_completions(home, litellm_server, recording_proxy, suffix):
    # Users paste the root, the OpenAI base URL or the full chat URL: the path is added once.
    proxy = recording_proxy(litellm_server)
    configure(home, M, proxy.root_url + suffix, "--token", litellm_server.api_key)
    r = chat(home, M, "hi", "--no-stream")  # no --model: GET /v1/models too
    assert r.code == 0, r
    assert [q.path for q in model_gets(proxy)] == ["/v1/models"]
    assert [q.path for q in chat_posts(proxy)] == ["/v1/chat/completions"]
    # (and llama.cpp's /props, beside /v1, for the context window)
    assert {q.path for q in proxy.requests} <= {"/v1/models", "/v1/chat/completions", "/props"}


# --- how much is replayed ----------------------------------------------------------------

@pytest.mark.parametrize("stored", [
    1, 2,
    3,
    4,
    5, 6,
])
def test_default_limit_replays_every_stored_round_up_to_five(home, litellm_dep, stored):
    # --history-limit defaults to 10 messages: min(stored, 5) whole rounds, newest, in order.
    store = Store(home, warn=lambda message: None)
    for n in range(stored):
        store.record_round(M, f"q{n}", f"a{n}")
    r = chat(home, M, "next", "--model", "mock-echo", "--no-stream")
    assert r.code == 0, r
    sent = chat_posts(litellm_dep)[-1].json["messages"]
    kept = range(max(stored - 5, 0), stored)
    assert sent == [m for n in kept for m in ({"role": "user", "content": f"q{n}"},
                                               {"role": "assistant", "content": f"a{n}"})] + [
        {"role": "user", "content": "next"}]


def test_configured_limit_and_model_are_used_and_flags_win(home, litellm_dep):
    configure(home, M, litellm_dep.root_url, "--history-limit", "2", "--model", "mock-echo")
    for text in ("one", "two"):
        assert chat(home, M, text, "--no-stream").code == 0
    assert model_gets(litellm_dep) == []  # the configured model: no need to ask
    assert chat_posts(litellm_dep)[-1].json["model"] == "mock-echo"
    assert [m["content"] for m in chat_posts(litellm_dep)[-1].json["messages"]] == ["one", MOCK_ECHO_TEXT, "two"]
    assert chat(home, M, "three", "--no-stream", "--history-limit", "4").code == 0
    assert [m["content"] for m in chat_posts(litellm_dep)[-1].json["messages"] if m["role"] == "user"] == [
        "one", "two", "three"]


# --- the context window (llama-server -c 512) ----------------------------------------------

# About 269 prompt tokens each with Gemma's tokenizer: one fits the 512-token window with
# plenty of room, two replayed together do not.
BIG = [f"round {i}: " + "apple banana cherry " * 85 for i in range(2)]


def _two_big_rounds(home, dep):
    for body in BIG:
        r = chat(home, dep, body, "--history-limit", "0", "--max-tokens", "4")
        assert r.code == 0, r
    assert all(x["usage"]["prompt_tokens"] >= 250 for x in log_rounds(home, dep))


def test_replay_is_trimmed_to_the_window_oldest_first(home, llama_server_small_ctx, recording_proxy):
    proxy = recording_proxy(llama_server_small_ctx)
    configure(home, "c", proxy.root_url)
    _two_big_rounds(home, "c")
    proxy.clear()
    r = chat(home, "c", "hi", "--max-tokens", "4")
    assert r.code == 0, r
    posts = chat_posts(proxy)
    assert [p.status for p in posts] == [200]  # trimmed before sending: no refusal needed
    sent = posts[-1].json["messages"]
    # The newest round fits (about 290 of 512 tokens) and is kept; the oldest is left out.
    newest = log_rounds(home, "c")[1]
    assert sent == [{"role": "user", "content": BIG[1]}, {"role": "assistant", "content": newest["assistant"]},
                    {"role": "user", "content": "hi"}]
    assert "left out the 2 oldest replayed message(s)" in r.err
    # Trimming changes only what is sent: every round is still recorded.
    assert [m["content"] for m in show(home, "c") if m["role"] == "user"] == [*BIG, "hi"]


def test_context_refusal_is_retried_once_with_fewer_rounds(home, llama_server_small_ctx, recording_proxy):
    # A configured window that is wrong (too large) lets both rounds through: the server refuses
    # with 400 exceed_context_size_error, and bai sends again with the oldest round(s) dropped.
    # (The model is configured too, so bai never asks the server for its window up front.)
    proxy = recording_proxy(llama_server_small_ctx)
    configure(home, "c", proxy.root_url, "--context-window", "100000", "--model", "gemma-3-270m")
    _two_big_rounds(home, "c")
    proxy.clear()
    r = chat(home, "c", "hi", "--max-tokens", "4")
    assert r.code == 0, r
    assert "Traceback" not in r.err and "retrying with" in r.err
    posts = chat_posts(proxy)
    assert [p.status for p in posts] == [400, 200]
    assert len(posts[0].json["messages"]) == 5
    second = posts[1].json["messages"]
    assert len(second) < 5 and second[-1] == {"role": "user", "content": "hi"}
    assert [m["content"] for m in second[:-1] if m["role"] == "user"] == BIG[2 - (len(second) - 1) // 2:]
    assert [m["content"] for m in show(home, "c") if m["role"] == "user"] == [*BIG, "hi"]
