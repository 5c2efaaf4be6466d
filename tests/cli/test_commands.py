"""The commands through click's CliRunner, with the store in a temporary BAI_CHAT_HOME."""

import io
import json
import os

import pytest
from click.testing import CliRunner

from cli import main as cli_main
from cli._chat import ChatRequest, ChatUsageError, build_messages, build_payload, read_message
from eventlog import Store

from .helpers import bai, entry


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BAI_CHAT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path / "home"




U1 = "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"  # a Backend.AI deployment id


def test_config_set_show_masks_the_token(home):
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--endpoint", "http://127.0.0.1:9", "--token", "s3cr3t-token", "--history-limit", "4")
    assert code == 0 and "Updated d1" in err
    code, out, _ = bai("deployment", "chat-config", "show", "d1")
    assert code == 0 and "http://127.0.0.1:9" in out and "s3cr3t" not in out and "********" in out
    code, out, _ = bai("deployment", "chat-config", "show", "d1", "--json")
    doc = json.loads(out)
    assert doc["token"] == "********" and doc["history_limit"] == 4  # fixed mask: not even the length shows
    assert (home / "bai" / "config.json").stat().st_mode & 0o777 == 0o600
    assert not (home / "config.json").exists()  # Backend.AI would refuse the whole file over "d1"


def test_uuid_settings_are_split_between_backend_ai_and_bai(home):
    """Backend.AI reads token and model of a UUID deployment from config.json and drops any
    other key when it saves: everything else of bai's goes to bai/config.json."""
    assert bai("deployment", "chat-config", "set", U1.upper(), "--token", "t", "--model", "m",
               "--endpoint", "http://127.0.0.1:9", "--history-cap", "8")[0] == 0
    shared = json.loads((home / "config.json").read_text())
    assert shared == {"deployments": {U1: {"token": "t", "model": "m"}}}  # canonical key, Backend.AI's keys only
    own = json.loads((home / "bai" / "config.json").read_text())
    assert own == {"deployments": {U1: {"endpoint": "http://127.0.0.1:9", "history_cap": 8}}}
    doc = json.loads(bai("deployment", "chat-config", "show", U1, "--json")[1])
    assert doc["model"] == "m" and doc["endpoint"] == "http://127.0.0.1:9" and doc["history_cap"] == 8


def test_config_empty_value_unsets_and_unknown_keys_survive(home):
    home.mkdir(parents=True)
    (home / "config.json").write_text(json.dumps({"deployments": {U1: {"model": "m", "backend_ai_key": 7}}, "other": 1}))
    assert bai("deployment", "chat-config", "set", U1, "--model", "")[0] == 0
    doc = json.loads((home / "config.json").read_text())
    assert doc == {"deployments": {U1: {"backend_ai_key": 7}}, "other": 1}


def test_config_token_from_stdin(home):
    assert bai("deployment", "chat-config", "set", U1, "--token", "-", input="tok-from-stdin\n")[0] == 0
    assert json.loads((home / "config.json").read_text())["deployments"][U1]["token"] == "tok-from-stdin"


def test_config_set_needs_an_option_and_a_url(home):
    assert bai("deployment", "chat-config", "set", "d1")[0] == 2
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--endpoint", "ftp://x")
    assert code == 2 and "not an http" in err and err.count("\n") == 1


def test_corrupt_config_is_a_warning_and_kept_when_rewritten(home):
    home.mkdir(parents=True)
    (home / "config.json").write_bytes(b"{not json")
    code, out, err = bai("deployment", "chat-config", "show", U1)
    assert code == 0 and "warning" in err and "config.json" in err
    assert bai("deployment", "chat-config", "set", U1, "--model", "m")[0] == 0
    copies = [p for p in os.listdir(home / "bai" / "kept") if p.startswith("config.json.")]
    assert copies and (home / "bai" / "kept" / copies[0]).read_bytes() == b"{not json"


def test_config_and_cache_clear(home):
    bai("deployment", "chat-config", "set", "d1", "--model", "m")
    bai("deployment", "chat-config", "set", "d2", "--model", "m")
    bai("deployment", "chat-config", "set", U1, "--model", "m", "--system", "s")
    assert bai("deployment", "chat-config", "clear", "d1")[0] == 0
    assert bai("deployment", "chat-config", "clear", U1)[0] == 0
    assert set(json.loads((home / "bai" / "config.json").read_text())["deployments"]) == {"d2"}
    assert json.loads((home / "config.json").read_text())["deployments"] == {}
    (home / "bai" / "cache.json").write_text(json.dumps({"deployments": {"d1": {"default_model": "x", "last_synced_at": "2000-01-01T00:00:00+00:00"}}}))
    code, out, _ = bai("deployment", "chat-cache", "show", "d1", "--json")
    assert json.loads(out)["default_model"] == "x" and json.loads(out)["fresh"] is False
    assert bai("deployment", "chat-cache", "clear", "d1")[0] == 0
    assert json.loads((home / "bai" / "cache.json").read_text())["deployments"] == {}


def test_chat_cache_clear_forgets_backend_ai_entry_too(home):
    home.mkdir(parents=True)
    entry = {"endpoint_url": "http://127.0.0.1:9", "default_model": None, "last_synced_at": "2026-01-01T00:00:00Z"}
    other = dict(entry, endpoint_url="http://127.0.0.1:10")
    (home / "cache.json").write_text(json.dumps({"deployments": {U1: entry, "1" * 8 + "-1111-4111-8111-" + "1" * 12: other}}))
    doc = json.loads(bai("deployment", "chat-cache", "show", U1, "--json")[1])
    assert doc["backend_ai_endpoint_url"] == "http://127.0.0.1:9"
    assert bai("deployment", "chat-cache", "clear", U1)[0] == 0
    left = json.loads((home / "cache.json").read_text())["deployments"]
    assert U1 not in left and list(left.values()) == [other]  # Backend.AI's other entries untouched


def _seed(home, n=3, deployment="d1"):
    store = Store(home, warn=lambda m: None)
    for i in range(n):
        store.record_round(deployment, f"question {i}", f"answer {i}", model="m1", finish_reason="length" if i == n - 1 else "stop")


def test_history_show_text_json_and_limit(home):
    _seed(home)
    code, out, _ = bai("deployment", "chat-history", "show", "d1")
    assert code == 0 and out.index("question 0") < out.index("answer 0") < out.index("question 2")
    assert "cut short (finish_reason: length)" in out and "\x1b[" not in out  # not a terminal: no colour
    code, out, _ = bai("deployment", "chat-history", "show", "d1", "--json", "--limit", "3")
    doc = json.loads(out)
    assert doc["deployment"] == "d1"
    assert [m["content"] for m in doc["messages"]] == ["answer 1", "question 2", "answer 2"]
    assert [set(m) for m in doc["messages"]] == [{"role", "content", "created_at", "model", "finish_reason"},
                                                 {"role", "content", "created_at"},
                                                 {"role", "content", "created_at", "model", "finish_reason"}]
    assert doc["messages"][2]["finish_reason"] == "length" and doc["messages"][2]["model"] == "m1"
    assert json.loads(bai("deployment", "chat-history", "show", "d1", "--json", "--limit", "0")[1])["messages"] == []
    more = json.loads(bai("deployment", "chat-history", "show", "d1", "--json", "--limit", "50")[1])["messages"]
    assert len(more) == 6  # a limit above what there is shows everything


def test_history_show_of_nothing(home):
    code, out, err = bai("deployment", "chat-history", "show", "nobody")  # a typo, most likely
    assert code == 1 and out == "" and "no deployment nobody" in err


def _log_types(home, deployment):
    """The record types of the deployment's log, in order, as written on disk."""
    data = (home / "bai" / "logs" / f"{deployment}.jsonl").read_bytes()
    return [json.loads(line)["type"] for line in data.splitlines()]


def test_history_list_clear_and_compact(home):
    _seed(home, 2, "d1")
    _seed(home, 3, "d2")
    _seed(home, 3, U1)
    code, out, _ = bai("deployment", "chat-history", "list", "--json")
    assert [(d["deployment"], d["messages"]) for d in json.loads(out)] == [(U1, 6), ("d1", 4), ("d2", 6)]
    assert bai("deployment", "chat-history", "clear")[0] == 2  # neither ID nor --all
    assert bai("deployment", "chat-history", "clear", "d1", "--all")[0] == 2
    code, _, err = bai("deployment", "chat-history", "clear", "d1")
    assert code == 0 and "4 message(s) removed" in err

    # compact: caps lowered after the rounds were saved (readers apply them at once, the logs
    # still hold every round until a writer compacts them), and a history.json removed by hand.
    assert bai("deployment", "chat-config", "set", "d2", "--history-cap", "2")[0] == 0
    assert bai("deployment", "chat-config", "set", U1, "--history-cap", "4")[0] == 0
    assert _log_types(home, "d2") == ["round"] * 3 and _log_types(home, U1) == ["round"] * 3
    (home / "history.json").unlink()
    code, _, err = bai("deployment", "chat-history", "compact")
    assert code == 0 and "Traceback" not in err
    # Each log now holds its cap's newest rounds after a base record, and nothing else.
    assert _log_types(home, "d2") == ["base", "round"] and _log_types(home, U1) == ["base", "round", "round"]
    shown = json.loads(bai("deployment", "chat-history", "show", "d2", "--json")[1])["messages"]
    assert [m["content"] for m in shown] == ["question 2", "answer 2"]
    listing = {d["deployment"]: d for d in json.loads(bai("deployment", "chat-history", "list", "--json")[1])}
    assert listing["d2"]["messages"] == 2 and listing[U1]["messages"] == 4
    assert listing["d2"]["bytes"] == (home / "bai" / "logs" / "d2.jsonl").stat().st_size
    # history.json is rebuilt: the UUID deployment's visible rounds, and nothing of the others.
    doc = json.loads((home / "history.json").read_text())
    assert list(doc["deployments"]) == [U1]
    assert [m["content"] for m in doc["deployments"][U1]] == ["question 1", "answer 1", "question 2", "answer 2"]
    # `compact ID` rewrites only that deployment's log.
    _seed(home, 2, "d3")
    assert bai("deployment", "chat-config", "set", "d3", "--history-cap", "2")[0] == 0
    other = (home / "bai" / "logs" / "d2.jsonl").read_bytes()
    assert bai("deployment", "chat-history", "compact", "d3")[0] == 0
    assert _log_types(home, "d3") == ["base", "round"]
    assert (home / "bai" / "logs" / "d2.jsonl").read_bytes() == other

    assert bai("deployment", "chat-history", "clear", "--all")[0] == 0
    assert json.loads(bai("deployment", "chat-history", "list", "--json")[1]) == []


def test_invalid_id_is_a_one_line_usage_error_and_touches_nothing(home):
    for args in (["chat-history", "show", "bad id"], ["chat", "../x", "hi"], ["chat-config", "set", "-x", "--model", "m"]):
        code, _, err = bai("deployment", *args)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert not home.exists()


def test_chat_without_endpoint_says_how_to_set_one(home):
    code, _, err = bai("deployment", "chat", "d1", "hello")
    assert code == 2 and "chat-config set d1 --endpoint URL" in err and err.count("\n") == 1


def test_malformed_params_is_a_usage_error(home):
    for bad in ("{", "[1]", "3"):
        code, _, err = bai("deployment", "chat", "d1", "hi", "--endpoint", "http://127.0.0.1:9", "--params", bad)
        assert code == 2 and "--params" in err


def test_no_color_and_help_examples(home, monkeypatch):
    for args in ([], ["deployment"], ["deployment", "chat"], ["deployment", "chat-history", "show"],
                 ["deployment", "chat-config", "set"], ["deployment", "chat-history", "clear"]):
        code, out, _ = bai(*args, "--help")
        assert code == 0 and "Usage:" in out
    assert "Example" in bai("deployment", "chat", "--help")[1]
    assert bai("--version")[1].startswith("bai ")
    monkeypatch.setenv("NO_COLOR", "1")
    _seed(home)
    runner = CliRunner()
    result = runner.invoke(entry, ["deployment", "chat-history", "show", "d1"], color=True)
    assert "\x1b[" not in result.stdout


def test_run_maps_failures_to_exit_codes(monkeypatch, capsys):
    from cli import _cmd_history
    from cli.endpoint import ConnectError, InvalidEndpointURL
    from eventlog import StoreBusy

    cases = [(StoreBusy("/x/.lock", 1), 1), (ConnectError("http://127.0.0.1:9", "refused"), 1),
             (InvalidEndpointURL("x", "no scheme"), 2),
             (KeyboardInterrupt(), 130), (RuntimeError("boom\nsecond line"), 1)]
    for exc, code in cases:
        def explode(*a, **k):
            raise exc
        monkeypatch.setattr(_cmd_history.App, "store", property(explode), raising=False)
        assert cli_main.run(["deployment", "chat-history", "list"]) == code
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_read_message_sources():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert read_message(("hello", "world")) == "hello world"
    assert read_message(("-",), io.StringIO("from stdin\n")) == "from stdin"
    assert read_message((), io.StringIO("piped\n\n")) == "piped"
    with pytest.raises(ChatUsageError):
        read_message((), Tty())
    with pytest.raises(ChatUsageError):
        read_message(("  ",))


def test_payload_keeps_model_and_messages_ours():
    req = ChatRequest("d1", "hi", params={"model": "evil", "messages": [], "temperature": 0}, max_tokens=5)
    messages = build_messages("be brief", [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "hi")
    payload = build_payload(req, "m1", messages)
    assert payload["model"] == "m1" and payload["temperature"] == 0 and payload["max_tokens"] == 5
    assert [m["role"] for m in payload["messages"]] == ["system", "user", "assistant", "user"]
    assert build_messages(None, [], "x") == [{"role": "user", "content": "x"}]


def test_version_constant_matches_the_package():
    import tomllib
    from pathlib import Path

    import cli

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert cli.__version__ == project["version"]
