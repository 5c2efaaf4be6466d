"""bai and Backend.AI's real CLI (backend.ai-client 26.9.6) taking turns on one store.

Both run as real processes on one ~/.backend.ai/deployment_chat, against tests/echo_server.py
(which answers from what it was sent, so each tool's request shows what context it replayed).
Backend.AI runs here without a manager because cache.json holds a fresh `endpoint_url` for the
deployment, as its manager would have left it; bai uses that endpoint too.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.echo_server import EchoServer

from .helpers import bai as run_bai, bai_env

U = "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"  # a deployment of Backend.AI's
OTHER = "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b"
BA_TIMEOUT = 90


@pytest.fixture
def world(tmp_path, backendai_cli):
    home = tmp_path / "home"
    store = home / ".backend.ai" / "deployment_chat"
    with EchoServer() as server:
        yield World(home, store, server, backendai_cli)


class World:
    def __init__(self, home: Path, store: Path, server: EchoServer, cli: str) -> None:
        self.home, self.store, self.server, self.cli = home, store, server, cli
        self.outputs: list[str] = []  # everything Backend.AI printed
        store.mkdir(parents=True)
        entry = {"endpoint_url": server.root_url, "default_model": None,
                 "last_synced_at": datetime.now(timezone.utc).isoformat()}
        (store / "cache.json").write_text(json.dumps({"deployments": {U: entry, OTHER: entry}}))

    def ba(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKEND_", "BAI_"))}
        env.update(HOME=str(self.home), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        done = subprocess.run([self.cli, "v2", "deployment", *args], env=env, capture_output=True, text=True,
                              timeout=BA_TIMEOUT, stdin=subprocess.DEVNULL)
        self.outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done

    def bai(self, *args: str, code: int = 0):
        r = run_bai(self.store, *args)
        assert r.code == code, r
        assert "Traceback" not in r.err and "warning" not in r.err, r  # ordinary mixed use: nothing to warn about
        return r

    def sent(self) -> list[str]:
        """The contents of the last chat request's messages, as sent."""
        return [m["content"] for m in self.server.chat_requests()[-1]["messages"]]

    def bai_history(self, dep: str) -> list[str]:
        doc = json.loads(self.bai("deployment", "chat-history", "show", dep, "--json").out)
        return [m["content"] for m in doc["messages"]]

    def no_backend_ai_complaint(self) -> None:
        for out in self.outputs:
            assert "invalid format" not in out and "WARNING" not in out, out

    def no_kept_copies(self) -> None:
        kept = self.store / "bai" / "kept"
        assert not kept.exists() or not list(kept.iterdir()), list(kept.iterdir())
        assert not [p for p in self.store.rglob("*") if ".corrupt-" in p.name]


def _echo(text: str, n: int) -> str:
    return f"echo: {text} [{n} messages]"


def test_one_conversation_across_both_tools_in_both_directions(world):
    world.bai("deployment", "chat", U, "one")  # the endpoint Backend.AI cached is enough
    world.ba("chat", U, "two")
    assert world.sent() == ["one", _echo("one", 1), "two"]  # Backend.AI replayed bai's round
    world.bai("deployment", "chat", U.upper(), "three")  # any spelling of the UUID is the deployment
    assert world.sent() == ["one", _echo("one", 1), "two", _echo("two", 3), "three"]  # ...and bai Backend.AI's
    world.ba("chat", U, "four")
    assert world.sent()[-3:] == ["three", _echo("three", 5), "four"]
    assert world.bai_history(U) == ["one", _echo("one", 1), "two", _echo("two", 3), "three", _echo("three", 5),
                                    "four", _echo("four", 7)]
    shown = world.ba("chat-history", "show", U).stdout
    assert "8 persisted" in shown and "three" in shown
    world.no_backend_ai_complaint()
    world.no_kept_copies()


def test_a_clear_by_either_tool_holds_for_both(world):
    world.bai("deployment", "chat", U, "secret one")
    world.ba("chat-history", "clear", U)
    assert world.bai_history(U) == []
    world.bai("deployment", "chat", U, "after")
    assert world.sent() == ["after"]
    world.ba("chat", U, "theirs")
    assert world.sent() == ["after", _echo("after", 1), "theirs"]
    world.bai("deployment", "chat-history", "clear", U)
    assert "No chat history" in world.ba("chat-history", "show", U).stdout
    world.ba("chat", U, "fresh")
    assert world.sent() == ["fresh"]
    assert world.bai_history(U) == ["fresh", _echo("fresh", 1)]
    for path in world.store.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"secret one" not in data and b"theirs" not in data, path  # cleared: in no file at all
    world.no_backend_ai_complaint()
    world.no_kept_copies()


def test_backend_ai_accepts_every_file_bai_writes(world):
    world.bai("deployment", "chat-config", "set", "my-llm", "--endpoint", world.server.root_url, "--system", "Be brief.")
    world.bai("deployment", "chat-config", "set", U, "--token", "tok", "--model", "echo-model", "--history-limit", "6",
              "--history-cap", "40", "--context-window", "4096")
    world.bai("deployment", "chat", "my-llm", "named")
    world.bai("deployment", "chat", U, "hello")
    world.bai("deployment", "chat-cache", "clear", OTHER)
    config = world.ba("chat-config", "show", U).stdout
    assert "echo-model" in config and "********" in config
    assert world.server.root_url in world.ba("chat-cache", "show", U).stdout
    assert "hello" in world.ba("chat-history", "show", U).stdout
    world.no_backend_ai_complaint()
    shared = {n: json.loads((world.store / n).read_text()) for n in ("history.json", "config.json", "cache.json")}
    for doc in shared.values():
        assert set(doc["deployments"]) <= {U, OTHER}  # "my-llm" lives in bai's own files only
    assert shared["config.json"]["deployments"][U] == {"token": "tok", "model": "echo-model"}


def test_bais_deployments_and_settings_survive_backend_ai_saves(world):
    world.bai("deployment", "chat-config", "set", "my-llm", "--endpoint", world.server.root_url, "--system", "Be brief.")
    world.bai("deployment", "chat-config", "set", U, "--system", "Sys.", "--history-limit", "4")
    world.bai("deployment", "chat", "my-llm", "named")
    world.bai("deployment", "chat", U, "q1")
    world.ba("chat-config", "set", U, "--token", "t2")  # rewrites config.json its way
    world.ba("chat", U, "q2")  # rewrites history.json (and may refresh cache.json)
    world.ba("chat", OTHER, "q3")
    world.ba("chat-history", "clear", OTHER)
    named = json.loads(world.bai("deployment", "chat-config", "show", "my-llm", "--json").out)
    assert named["endpoint"] == world.server.root_url and named["system"] == "Be brief."
    mine = json.loads(world.bai("deployment", "chat-config", "show", U, "--json").out)
    assert mine["system"] == "Sys." and mine["history_limit"] == 4 and mine["token"] == "********"
    assert world.bai_history("my-llm") == ["named", _echo("named", 2)]  # the system prompt counts as a message
    world.bai("deployment", "chat", U, "q4")
    assert world.server.chat_requests()[-1]["messages"][0] == {"role": "system", "content": "Sys."}
    assert world.server.chat_requests()[-1]["messages"][1:] == [  # history_limit 4: the last two rounds
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": _echo("q1", 2)},
        {"role": "user", "content": "q2"}, {"role": "assistant", "content": _echo("q2", 3)},
        {"role": "user", "content": "q4"}]
    world.no_backend_ai_complaint()
    world.no_kept_copies()


def test_reasoning_stays_in_bais_log_and_backend_ai_reads_and_saves_history_json(world):
    world.server.reasoning_next("The user says one; I will echo.")
    world.bai("deployment", "chat", U, "one")
    history = (world.store / "history.json").read_text()
    assert "reasoning" not in history and "I will echo" not in history  # Backend.AI's models have no such field
    world.ba("chat", U, "two")  # loads, replays and saves history.json with bai's round in it
    assert world.sent() == ["one", _echo("one", 1), "two"]  # the answer alone is replayed
    assert "one" in world.ba("chat-history", "show", U).stdout
    world.no_backend_ai_complaint()
    shown = world.bai("deployment", "chat-history", "show", U, "--reasoning").out  # after Backend.AI's save
    assert "The user says one; I will echo." in shown and shown.index("I will echo") < shown.index(_echo("one", 1))
    doc = json.loads(world.bai("deployment", "chat-history", "show", U, "--json").out)
    assert [m.get("reasoning") for m in doc["messages"]] == [None, "The user says one; I will echo.", None, None]
