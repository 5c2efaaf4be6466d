"""`chat-history clear`, offline: the transcript goes from every file on disk, raw bytes included,
and the settings (config.json, cache.json, bai/config.json, bai/cache.json) stay byte for byte."""

from __future__ import annotations

import json

import pytest

from eventlog import Store
from tests.e2e.helpers import bai, chat, configure, files_under, log_records, projection, show

from .conftest import D, D2

SETTINGS = ("config.json", "cache.json", "bai/config.json", "bai/cache.json")
SIDE = "side-deployment"  # not a UUID: its history is in its log only, never in history.json


def settings_bytes(home) -> dict[str, bytes]:
    return {name: (home / name).read_bytes() for name in SETTINGS if (home / name).exists()}


def files_holding(home, text: str) -> list[str]:
    """Every file under home whose raw bytes hold `text` (UTF-8, as the store writes it)."""
    return [name for name, data in files_under(home).items() if text.encode() in data]


@pytest.fixture
def conversations(home, echo, dep):
    """D with two rounds ("forget-me ..."), D2 and a non-UUID deployment with one each ("keep-me ...");
    every settings file present: a token in config.json, Backend.AI's cache.json, bai's own two."""
    configure(home, D, echo.root_url, "--token", "tok-d", "--history-limit", "6")
    configure(home, D2, echo.root_url, "--token", "tok-d2")
    configure(home, SIDE, echo.root_url, "--system", "be brief")
    (home / "cache.json").write_text(json.dumps({"deployments": {D: {
        "endpoint_url": echo.root_url, "default_model": None, "last_synced_at": "2026-01-01T00:00:00Z"}}}))
    for dep_id, text in ((D, "forget-me one"), (D2, "keep-me two"), (D, "forget-me three"), (SIDE, "keep-me side")):
        r = chat(home, dep_id, text)
        assert r.code == 0, r
    assert set(settings_bytes(home)) == set(SETTINGS)
    assert files_holding(home, "forget-me")  # in the log and history.json, before the clear
    return home


def test_clear_removes_the_text_from_every_file_and_leaves_the_settings(conversations, echo):
    home = conversations
    settings = settings_bytes(home)
    r = bai(home, "deployment", "chat-history", "clear", D)
    assert r.code == 0 and "4 message(s) removed" in r.err, r
    assert settings_bytes(home) == settings  # byte for byte
    assert files_holding(home, "forget-me") == []  # the raw log, history.json, anything
    # The log itself was compacted, not just tombstoned: no round and no clear record left in it.
    assert [rec["type"] for rec in log_records(home, D)] in ([], ["base"])
    assert show(home, D) == [] and projection(home, D) == []
    # The other deployments are untouched, in their logs and in history.json.
    assert [m["content"] for m in show(home, D2)] == ["keep-me two", "echo: keep-me two [1 messages]"]
    assert [m["content"] for m in projection(home, D2)][0] == "keep-me two"
    assert [m["content"] for m in show(home, SIDE)][0] == "keep-me side"
    # And the next turn starts a new conversation.
    r = chat(home, D, "fresh start")
    assert r.code == 0 and r.out == "echo: fresh start [1 messages]\n", r
    assert echo.chat_requests()[-1]["messages"] == [{"role": "user", "content": "fresh start"}]


def test_clear_all_removes_every_transcript_and_leaves_the_settings(conversations):
    home = conversations
    settings = settings_bytes(home)
    r = bai(home, "deployment", "chat-history", "clear", "--all")
    assert r.code == 0, r
    assert settings_bytes(home) == settings
    assert files_holding(home, "forget-me") == [] and files_holding(home, "keep-me") == []
    for dep_id in (D, D2, SIDE):
        assert [rec["type"] for rec in log_records(home, dep_id)] in ([], ["base"])
    assert json.loads(bai(home, "deployment", "chat-history", "list", "--json").out) == []


@pytest.mark.parametrize("deployment", [D, SIDE])
def test_store_clear_compacts_the_log(tmp_path, deployment):
    # The store's own promise, for a UUID (also in history.json) and any other id: once clear
    # returns, the log's raw bytes hold one base record and nothing of what was cleared.
    root = tmp_path / "store"
    store = Store(root, warn=lambda m: None, refresh_share=0)
    for i in range(3):
        store.record_round(deployment, f"secret question {i}", f"secret answer {i}")
    assert store.clear(deployment) == 6
    (line,) = (root / "bai" / "logs" / f"{deployment}.jsonl").read_bytes().splitlines()
    assert json.loads(line)["type"] == "base" and json.loads(line)["seq"] == 4  # after rounds 1-3 and the clear
    assert files_holding(root, "secret") == []
    assert store.record_round(deployment, "next", "answer").seq == 5


def test_clear_removes_the_text_from_kept_copies_too(home, echo, dep):
    r = chat(home, dep, "forget-me one")
    assert r.code == 0, r
    log = home / "bai" / "logs" / f"{dep}.jsonl"
    log.write_bytes(b"garbage that is no record\n" + log.read_bytes())  # damage: the next writer keeps a copy
    r = chat(home, dep, "forget-me two")
    assert r.code == 0 and "warning" in r.err, r
    assert any(name.startswith("bai/kept/") for name in files_holding(home, "forget-me one"))
    assert bai(home, "deployment", "chat-history", "clear", dep).code == 0
    assert files_holding(home, "forget-me") == []
