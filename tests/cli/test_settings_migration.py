"""Settings of bai 0.1, which kept everything in Backend.AI's config.json and cache.json, are
moved out on first use: Backend.AI refused both files over a non-UUID key or a cache entry
without `endpoint_url`, and its next save dropped every key it does not know."""

import json

from .helpers import bai
from .test_commands import home  # noqa: F401 - the fixture

U = "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"
OTHER = "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b"
SYNCED = "2026-01-01T00:00:00+00:00"


def _write(home, name, doc):
    path = home / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _read(home, name):
    return json.loads((home / name).read_text())["deployments"]


def test_bai_0_1_settings_are_moved_where_each_tool_keeps_them(home):
    _write(home, "config.json", {"deployments": {
        "my-llm": {"endpoint": "http://127.0.0.1:9", "token": "t1", "model": "m1", "system": "s"},
        U.upper(): {"endpoint": "http://127.0.0.1:8", "token": "t2", "model": "m2", "history_cap": 40},
        "not an id!": {"token": "x"},
    }})
    _write(home, "cache.json", {"deployments": {
        "my-llm": {"default_model": "m1", "max_model_len": 2048, "last_synced_at": SYNCED},
        U: {"default_model": "m2", "last_synced_at": SYNCED},  # no endpoint_url: Backend.AI refuses it
        OTHER: {"endpoint_url": "http://127.0.0.1:7", "default_model": None, "last_synced_at": SYNCED,
                "max_model_len": 4096},  # Backend.AI's own, with a key bai 0.1 added
    }})
    code, out, err = bai("deployment", "chat-config", "show", "my-llm", "--json")
    assert code == 0, err
    assert json.loads(out)["endpoint"] == "http://127.0.0.1:9" and json.loads(out)["token"] == "********"
    assert "1 entry that names no deployment left out" in err
    assert _read(home, "config.json") == {U: {"token": "t2", "model": "m2"}}
    assert _read(home, "bai/config.json") == {
        "my-llm": {"endpoint": "http://127.0.0.1:9", "token": "t1", "model": "m1", "system": "s"},
        U: {"endpoint": "http://127.0.0.1:8", "history_cap": 40}}
    assert _read(home, "cache.json") == {
        OTHER: {"endpoint_url": "http://127.0.0.1:7", "default_model": None, "last_synced_at": SYNCED}}
    assert _read(home, "bai/cache.json") == {
        "my-llm": {"default_model": "m1", "max_model_len": 2048, "last_synced_at": SYNCED},
        U: {"default_model": "m2", "last_synced_at": SYNCED}, OTHER: {"max_model_len": 4096}}
    kept = sorted(p.name for p in (home / "bai" / "kept").iterdir())
    assert [k.split(".json.")[0] for k in kept] == ["cache", "config"]  # the files as they were
    doc = json.loads(bai("deployment", "chat-config", "show", U, "--json")[1])
    assert doc["model"] == "m2" and doc["endpoint"] == "http://127.0.0.1:8" and doc["history_cap"] == 40
    # done once: the next command finds nothing to move and says nothing
    code, _, err = bai("deployment", "chat-config", "show", U)
    assert code == 0 and err == ""


def test_the_endpoint_backend_ai_cached_is_used_when_none_is_set(home):
    _write(home, "cache.json", {"deployments": {
        U: {"endpoint_url": "http://127.0.0.1:7/route", "default_model": None, "last_synced_at": SYNCED}}})
    from cli._app import App
    from cli._chat import ChatRequest, resolve_target

    assert resolve_target(App(), ChatRequest(U)).endpoint == "http://127.0.0.1:7/route"
    bai("deployment", "chat-config", "set", U, "--endpoint", "http://127.0.0.1:8")
    assert resolve_target(App(), ChatRequest(U)).endpoint == "http://127.0.0.1:8"  # a configured one wins


def test_a_cached_model_is_valid_only_for_its_endpoint(home):
    from cli._settings import CacheEntry

    entry = CacheEntry(endpoint="http://a", default_model="m", last_synced_at=SYNCED)
    assert entry.for_endpoint("http://a").default_model == "m"
    assert entry.for_endpoint("http://b").default_model is None
