"""Several conversations per deployment, through the commands: `chat -c NAME`, `chat-history
list|show|export|search|clear|compact`, confirmations on a terminal, and unknown ids."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect
import pytest

from .helpers import bai



U1 = "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"
BAI = str(Path(sys.executable).with_name("bai"))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BAI_CHAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path / "home"


@pytest.fixture
def talked(home, server):
    """U1's main conversation has one round, its conversation "trip" two."""
    assert bai("deployment", "chat-config", "set", U1, "--endpoint", server.root_url, "--model", "m")[0] == 0
    assert bai("deployment", "chat", U1, "main question")[0] == 0
    assert bai("deployment", "chat", U1, "-c", "trip", "Rome in three days?")[0] == 0
    assert bai("deployment", "chat", U1, "--conversation", "trip", "and Florence?")[0] == 0
    return home


def _sent(server) -> list[list[str]]:
    return [[m["content"] for m in r["messages"]] for r in server.chat_requests()]


def test_a_conversation_replays_only_itself_and_backend_ai_sees_only_the_main_one(talked, server):
    sent = _sent(server)
    assert sent[1] == ["Rome in three days?"]  # a new conversation starts empty
    assert sent[2][0] == "Rome in three days?" and "main question" not in sent[2]
    assert bai("deployment", "chat", U1, "main again")[0] == 0
    assert _sent(server)[-1][0] == "main question" and len(_sent(server)[-1]) == 3
    shared = json.loads((talked / "history.json").read_text())["deployments"]
    assert [m["content"] for m in shared[U1]][::2] == ["main question", "main again"]
    assert "Florence" not in (talked / "history.json").read_text()


def test_list_shows_each_conversation(talked):
    code, out, _ = bai("deployment", "chat-history", "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["DEPLOYMENT", "CONVERSATION", "MESSAGES", "BYTES", "FIRST", "LAST"]
    assert [r.split()[:3] for r in rows] == [[U1, "main", "2"], [U1, "trip", "4"]]
    doc = json.loads(bai("deployment", "chat-history", "list", "--json")[1])
    assert [(d["deployment"], d["conversation"], d["messages"]) for d in doc] == [(U1, "main", 2), (U1, "trip", 4)]
    assert all(d["first_at"] and d["last_at"] for d in doc)


def test_show_a_conversation_and_its_json_has_model_and_cut_marker(talked):
    code, out, _ = bai("deployment", "chat-history", "show", U1, "-c", "trip")
    assert code == 0 and "Rome in three days?" in out and "main question" not in out
    doc = json.loads(bai("deployment", "chat-history", "show", U1, "-c", "trip", "--json")[1])
    assert doc["deployment"] == U1 and doc["conversation"] == "trip"
    assistant = doc["messages"][1]
    assert assistant["role"] == "assistant" and assistant["model"] == "m" and "finish_reason" in assistant
    main = json.loads(bai("deployment", "chat-history", "show", U1, "--json")[1])
    assert main["conversation"] == "main" and [m["content"] for m in main["messages"]][0] == "main question"


def test_unknown_ids_and_conversations_are_one_line_errors(talked):
    for args in (["show", "nothere"], ["clear", "nothere", "--yes"], ["compact", "nothere"], ["export", "nothere"],
                 ["show", U1, "-c", "nosuch"], ["clear", U1, "-c", "nosuch", "--yes"]):
        code, out, err = bai("deployment", "chat-history", *args)
        assert code == 1 and out == "" and err.count("\n") == 1 and "bai: error:" in err, (args, err)
    assert "its conversations: trip" in bai("deployment", "chat-history", "show", U1, "-c", "nosuch")[2]
    assert not (talked / "bai" / "logs" / "nothere.jsonl").exists()  # compact made no log
    code, _, err = bai("deployment", "chat-history", "show", U1, "-c", "bad name")
    assert code == 2 and "invalid conversation name" in err


def test_a_known_deployment_without_history_is_no_error(home):
    assert bai("deployment", "chat-config", "set", "d1", "--endpoint", "http://127.0.0.1:9")[0] == 0
    code, _, err = bai("deployment", "chat-history", "show", "d1")
    assert code == 0 and "No saved history for d1" in err
    assert bai("deployment", "chat-history", "compact", "d1")[0] == 0


def test_export_markdown_and_json(talked, tmp_path):
    code, out, _ = bai("deployment", "chat-history", "export", U1, "-c", "trip")
    assert code == 0
    assert out.startswith(f"# {U1} · trip\n")
    assert out.index("## You") < out.index("Rome in three days?") < out.index("## m ·") < out.index("and Florence?")
    target = tmp_path / "trip.json"
    code, _, err = bai("deployment", "chat-history", "export", U1, "-c", "trip", "--format", "json", "-o", str(target))
    assert code == 0 and "Wrote 4 message(s)" in err
    doc = json.loads(target.read_text())
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant"] * 2
    assert doc["messages"][2]["content"] == "and Florence?"


def test_search_finds_text_in_every_conversation(talked):
    code, out, _ = bai("deployment", "chat-history", "search", "FLORENCE")
    assert code == 0 and f"{U1} · trip" in out and "and Florence?" in out
    doc = json.loads(bai("deployment", "chat-history", "search", "question", "--json")[1])
    assert {(d["conversation"], d["role"]) for d in doc} == {("main", "user"), ("main", "assistant")}
    assert bai("deployment", "chat-history", "search", "question", "--deployment", "other", "--json")[1].strip() == "[]"
    code, out, err = bai("deployment", "chat-history", "search", "no such words")
    assert code == 1 and out == "" and "Nothing saved holds" in err


def test_clear_a_conversation_removes_it_and_keeps_the_main_one(talked):
    code, _, err = bai("deployment", "chat-history", "clear", U1, "-c", "trip")  # not a terminal: no question
    assert code == 0 and "Cleared" in err and "4 message(s) removed" in err
    assert not any("Florence" in p.read_text(errors="replace") for p in talked.rglob("*") if p.is_file())
    assert "main question" in bai("deployment", "chat-history", "show", U1)[1]
    assert bai("deployment", "chat", U1, "-c", "trip", "fresh start")[0] == 0
    code, _, err = bai("deployment", "chat-history", "clear", U1)
    assert code == 0 and "1 other conversation(s) are kept" in err
    assert bai("deployment", "chat-history", "show", U1, "-c", "trip", "--json")[1].count('"user"') == 1


def test_clear_forgets_the_typed_lines_of_the_cleared_rounds(talked):
    typed = talked / "bai" / "input_history"
    typed.write_text("main question\nand Florence?\nsomething else\n")
    assert bai("deployment", "chat-history", "clear", U1, "-c", "trip")[0] == 0
    assert typed.read_text() == "main question\nsomething else\n"
    assert bai("deployment", "chat-history", "clear", "--all")[0] == 0
    assert not typed.exists()


def _spawn(home: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "BAI_CHAT_HOME": str(home), "NO_COLOR": "1", "TERM": "xterm"}
    return pexpect.spawn(BAI, list(args), env=env, encoding="utf-8", timeout=30, dimensions=(40, 200))


def test_clear_asks_first_on_a_terminal(talked):
    child = _spawn(talked, "deployment", "chat-history", "clear", U1, "-c", "trip")
    child.expect(r"Forget the 2 saved round\(s\) of .*, conversation trip\? \[y/N\]")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "nothing was changed" in child.before
    assert "Florence" in bai("deployment", "chat-history", "show", U1, "-c", "trip")[1]
    child = _spawn(talked, "deployment", "chat-history", "clear", U1, "-c", "trip")
    child.expect(r"\[y/N\]")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    child = _spawn(talked, "deployment", "chat-history", "clear", U1, "--yes")  # --yes: no question
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "[y/N]" not in child.before and "Cleared" in child.before


def test_new_and_switch_at_the_interactive_prompt(talked, server):
    child = _spawn(talked, "deployment", "chat", U1)
    try:
        child.expect("you> ")
        child.sendline("/new ideas")
        child.expect("a new conversation ideas")
        child.expect("you> ")
        child.sendline("first idea")
        child.expect(r"echo: first idea \[1 messages\]")  # nothing of main replayed
        child.expect("you> ")
        child.sendline("/switch")
        child.expect(r"\* ideas")
        child.expect("you> ")
        child.sendline("/switch trip")
        child.expect(r"now in .*conversation trip \(4 saved message\(s\)\)")
        child.expect("you> ")
        child.sendline("/switch main")
        child.expect(r"now in [0-9a-f-]+ \(2 saved")
        child.expect("you> ")
        child.sendline("back in main")
        child.expect(r"echo: back in main \[3 messages\]")
        child.expect("you> ")
        child.sendline("/new trip")
        child.expect("conversation trip exists")
        child.expect("you> ")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    doc = json.loads(bai("deployment", "chat-history", "show", U1, "-c", "ideas", "--json")[1])
    assert [m["content"] for m in doc["messages"]][0] == "first idea"


def test_chat_config_clear_asks_first_on_a_terminal(home):
    assert bai("deployment", "chat-config", "set", "d1", "--endpoint", "http://127.0.0.1:9", "--token", "t")[0] == 0
    child = _spawn(home, "deployment", "chat-config", "clear", "d1")
    child.expect(r"Remove every setting of d1, its token too\? \[y/N\]")
    child.sendline("")  # Enter: the default is no
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert "http://127.0.0.1:9" in bai("deployment", "chat-config", "show", "d1")[1]
    assert bai("deployment", "chat-config", "clear", "d1")[0] == 0  # not a terminal: no question
    assert "http://127.0.0.1:9" not in bai("deployment", "chat-config", "show", "d1")[1]


def test_export_and_search_never_pass_on_a_servers_control_sequences(home, tmp_path):
    from eventlog import Store

    hostile = "title\x1b]0;owned\x07 and \x9b31mred\x1b[0m done"
    Store(home, warn=lambda m: None).record_round("d1", "find me", hostile, model="m\x1b]52;c;eA==\x07")
    for args in (["export", "d1"], ["export", "d1", "--format", "json"], ["search", "done"],
                 ["search", "red", "--json"], ["show", "d1"], ["show", "d1", "--json"]):
        code, out, _ = bai("deployment", "chat-history", *args)
        assert code == 0 and "\x1b" not in out and "\x9b" not in out and "\x07" not in out, (args, out)
    doc = json.loads(bai("deployment", "chat-history", "export", "d1", "--format", "json")[1])
    assert doc["messages"][1]["content"] == hostile  # JSON escapes them: the text itself is whole
    target = tmp_path / "chat.md"
    assert bai("deployment", "chat-history", "export", "d1", "-o", str(target))[0] == 0
    assert "\x1b" not in target.read_text() and "red" in target.read_text()


def test_lowering_the_cap_says_what_it_hides_in_every_conversation(talked):
    code, _, err = bai("deployment", "chat-config", "set", U1, "--history-cap", "2")
    assert code == 0 and "keeps 4 of the 6 saved message(s) (in its 2 conversations)" in err, err
