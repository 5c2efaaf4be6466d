"""Failures of real servers: every one is exit 1, exactly one line on stderr, no traceback,
and nothing saved (DESIGN.md, "Errors and exit codes")."""

from __future__ import annotations

import pytest

from tests.realservers.fixtures import LLAMA_TEST_API_KEY

from .helpers import (M, assert_one_line_error, chat, chat_posts, closed_port, configure, files_under,
                      log_records, log_rounds, projection)


def assert_nothing_saved(home, dep):
    assert log_records(home, dep) == [] and projection(home, dep) == []


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
@pytest.mark.parametrize("model,status,posts,words", [
    ("mock-ratelimit", 429, 3, "gave up after 3 attempts"),   # retried, a bounded number of times
    ("mock-internal", 500, 1, "HTTP 500"),                     # never retried
    ("mock-context", 400, 1, "context window"),                # recognised as a context error
])
def test_litellm_http_errors(home, litellm_dep, model, status, posts, words, stream):
    r = chat(home, M, "hi", "--model", model, stream)
    line = assert_one_line_error(r)
    assert f"HTTP {status}" in line and words in line
    assert r.out == ""
    assert len(chat_posts(litellm_dep)) == posts
    assert [p.status for p in chat_posts(litellm_dep)] == [status] * posts
    assert_nothing_saved(home, M)


@pytest.mark.parametrize("how", ["no token", "wrong token in config", "wrong token flag"])
def test_401_says_how_to_set_a_token_and_never_shows_it(home, llama_server_with_key, recording_proxy, how):
    proxy = recording_proxy(llama_server_with_key)
    secret = "sk-wrong-Secret-4711"
    configure(home, "k", proxy.root_url, "--model", "gemma-3-270m",
              *(["--token", secret] if how == "wrong token in config" else []))
    r = chat(home, "k", "hi", "--max-tokens", "4", *(["--token", secret] if how == "wrong token flag" else []))
    line = assert_one_line_error(r)
    assert "HTTP 401" in line and "bai deployment chat-config set k --token" in line
    assert secret not in r.err + r.out
    assert chat_posts(proxy)[-1].status == 401
    if how != "no token":  # it was sent, and it is in config.json only if the user put it there
        assert chat_posts(proxy)[-1].headers["authorization"] == f"Bearer {secret}"
    assert_nothing_saved(home, "k")


def test_right_token_works_and_is_stored_nowhere_but_config(home, llama_server_with_key, recording_proxy):
    proxy = recording_proxy(llama_server_with_key)
    configure(home, "k", proxy.root_url, "--token", LLAMA_TEST_API_KEY)
    r = chat(home, "k", "hi", "--max-tokens", "4", "--json")
    assert r.code == 0, r
    assert {p.headers["authorization"] for p in proxy.requests} == {f"Bearer {LLAMA_TEST_API_KEY}"}
    assert len(log_rounds(home, "k")) == 1
    holders = [name for name, data in files_under(home).items() if LLAMA_TEST_API_KEY.encode() in data]
    assert holders == ["bai/config.json"]  # "k" is no UUID: bai's own settings file
    assert LLAMA_TEST_API_KEY not in r.out + r.err


def test_context_overflow_of_the_message_itself(home, llama_server_small_ctx, recording_proxy):
    proxy = recording_proxy(llama_server_small_ctx)
    configure(home, "c", proxy.root_url)
    r = chat(home, "c", "apple banana cherry " * 300, "--history-limit", "0", "--max-tokens", "4")
    line = assert_one_line_error(r)
    assert "HTTP 400" in line and "context window" in line and "window 512" in line
    # The new message is never cut, and with nothing replayed there is nothing to drop: one try.
    assert len(chat_posts(proxy)) == 1
    assert_nothing_saved(home, "c")


@pytest.mark.parametrize("with_model", [False, True])
def test_unreachable_endpoint(home, with_model):
    configure(home, "u", f"http://127.0.0.1:{closed_port()}")
    r = chat(home, "u", "hi", *(["--model", "m"] if with_model else []), timeout=30)
    line = assert_one_line_error(r)
    assert "cannot connect" in line and "127.0.0.1" in line
    assert_nothing_saved(home, "u")
