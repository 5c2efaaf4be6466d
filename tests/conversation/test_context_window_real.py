"""Context-window safety against llama-server run with -c 512: a long conversation keeps
working turn after turn, the new message is never cut, and trimming changes only what is
sent, never what is recorded."""

import json
import os

import pytest
import subprocess
import sys
from pathlib import Path

BAI = str(Path(sys.executable).with_name("bai"))


def _bai(env, *args):
    return subprocess.run([BAI, "deployment", *args], env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("window", ["from-props", "from-refusal"])
def test_a_long_conversation_keeps_working_in_a_small_window(tmp_path, llama_server_small_ctx, recording_proxy, window):
    proxy = recording_proxy(llama_server_small_ctx)
    env = {**os.environ, "BAI_CHAT_HOME": str(tmp_path / "home")}
    # A configured window that is too large (and a configured model, so the server is not asked)
    # is corrected by the first refusal; otherwise llama.cpp's /props gives the window up front.
    model = ["--model", "gemma-3-270m", "--context-window", "100000"] if window == "from-refusal" else []
    assert _bai(env, "chat-config", "set", "small", "--endpoint", proxy.root_url, "--history-limit", "100", *model).returncode == 0
    notes = []
    sent = []
    for turn in range(8):
        # About 100 tokens per message: five rounds already overflow 512 tokens.
        message = f"Turn {turn}: " + " ".join(f"word{turn}x{i}" for i in range(25))
        proxy.clear()
        done = _bai(env, "chat", "small", message, "--max-tokens", "16")
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        notes.append(done.stderr)
        chats = [r for r in proxy.requests if r.path.endswith("/chat/completions")]
        for r in chats:
            assert r.json["messages"][-1] == {"role": "user", "content": message}  # never cut
        sent.append(len(chats[-1].json["messages"]) - 1)  # replayed messages in the request that succeeded
    history = json.loads(_bai(env, "chat-history", "show", "small", "--json").stdout)["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == [
        f"Turn {t}: " + " ".join(f"word{t}x{i}" for i in range(25)) for t in range(8)]  # all recorded
    assert max(sent) < 2 * 7  # later turns did not replay everything they could have
    assert sent[-1] >= 2  # but still replayed what fits
    said = "\n".join(notes)
    assert "left out" in said  # the user was told
    if window == "from-refusal":
        assert "too long for the model; retrying with" in said  # the one retry happened
        assert sum("too long" in n for n in notes) == 1  # and then the window was known
    else:
        assert "too long" not in said  # trimmed up front, never refused
    cache = json.loads((tmp_path / "home" / "bai" / "cache.json").read_text())
    assert cache["deployments"]["small"].get("context_window") == 512


def test_a_message_too_long_by_itself_is_an_error_and_nothing_is_saved(tmp_path, llama_server_small_ctx):
    env = {**os.environ, "BAI_CHAT_HOME": str(tmp_path / "home")}
    _bai(env, "chat-config", "set", "small", "--endpoint", llama_server_small_ctx.root_url)
    done = _bai(env, "chat", "small", "word " * 2000, "--max-tokens", "8", "--history-limit", "0")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "512" in done.stderr
    assert json.loads(_bai(env, "chat-history", "show", "small", "--json").stdout)["messages"] == []
