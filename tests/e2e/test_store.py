"""The store under real `bai` runs: the disk cap, concurrent processes, and damaged files."""

from __future__ import annotations

import json
import os
import subprocess
import time

from tests.realservers.servers import MOCK_ECHO_TEXT

from eventlog import Store

from .helpers import (BAI, M, bai, bai_env, chat, chat_posts, configure, log_records, log_rounds,
                      model_gets, projection, show)

ECHO = ("--model", "mock-echo", "--no-stream")


def assert_capped(home, dep, cap, last_seq):
    """Log and projection at the cap, the newest rounds kept, seqs gapless up to last_seq."""
    records = log_records(home, dep)
    rounds = [r for r in records if r["type"] == "round"]
    assert 2 * len(rounds) <= cap and len(projection(home, dep)) <= cap
    assert 2 * len(rounds) == min(cap, 2 * last_seq)  # and no fewer: only the cap drops rounds
    # Gapless: every record follows the one before (a leading base stands for what was dropped).
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and seqs[-1] == last_seq
    assert [r["user"] for r in rounds] == [f"msg {n}" for n in range(last_seq - len(rounds) + 1, last_seq + 1)]


def test_disk_cap_holds_after_300_rounds(home, litellm_dep):
    # 300 rounds: 40 through real `bai` processes (about 0.2 s each), the 260 in between
    # appended through the store API without the cap (as a Backend.AI-era store would leave
    # it), so the next `bai` run must bring an over-cap log back under the configured cap.
    assert bai(home, "deployment", "chat-config", "set", M, "--history-cap", "20").code == 0
    seq = 0

    def real_round():
        nonlocal seq
        seq += 1
        r = chat(home, M, f"msg {seq}", *ECHO)
        assert r.code == 0, r
        assert_capped(home, M, 20, seq)

    for _ in range(20):
        real_round()
    store = Store(home, warn=lambda message: None)  # default caps: 100 messages
    for _ in range(260):
        seq += 1
        store.record_round(M, f"msg {seq}", MOCK_ECHO_TEXT)
    assert len(projection(home, M)) == 100  # over this deployment's cap, until bai runs
    for _ in range(20):
        real_round()
    assert seq == 300
    shown = show(home, M)
    assert [(m["role"], m["content"]) for m in shown] == [
        pair for n in range(291, 301) for pair in (("user", f"msg {n}"), ("assistant", MOCK_ECHO_TEXT))]
    assert [m["content"] for m in projection(home, M)] == [m["content"] for m in shown]


def test_eight_processes_at_once_all_land(home, litellm_dep):
    # P9: 8 writers on one deployment; none may lose, duplicate or interleave a round.
    env = bai_env(home)
    procs = [subprocess.Popen([BAI, "deployment", "chat", M, f"writer {i}", *ECHO], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(8)]
    results = []
    deadline = time.monotonic() + 90
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(deadline - time.monotonic(), 1))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        results.append((p.returncode, out, err))
    assert all(code == 0 for code, _, _ in results), results
    rounds = log_rounds(home, M)
    assert sorted(r["user"] for r in rounds) == sorted(f"writer {i}" for i in range(8))
    seqs = [r["seq"] for r in log_records(home, M)]
    assert seqs == list(range(1, 9))
    shown = show(home, M)
    assert sorted(m["content"] for m in shown if m["role"] == "user") == sorted(f"writer {i}" for i in range(8))
    assert [m["role"] for m in shown] == ["user", "assistant"] * 8
    assert json.loads((home / "history.json").read_text())["last_seq"][M] == 8


def _corrupt_copies(home, name):
    kept = home / "bai" / "kept"
    return sorted(p for p in kept.iterdir() if p.name.startswith(f"{name}.")) if kept.exists() else []


def _one_warning(err: str, name: str) -> None:
    warnings = [line for line in err.splitlines() if line.startswith("bai: warning:")]
    assert len(warnings) == 1 and name in warnings[0], err
    assert "Traceback" not in err


def test_corrupt_history_json(home, litellm_dep):
    for n in (1, 2):
        assert chat(home, M, f"msg {n}", *ECHO).code == 0
    junk = b'{"deployments": {"m": [{"role": "user", "cont'
    (home / "history.json").write_bytes(junk)
    # A reader warns in one line, shows the rounds from the log, and writes nothing.
    r = bai(home, "deployment", "chat-history", "show", M, "--json")
    assert r.code == 0, r
    _one_warning(r.err, "history.json")
    assert [m["content"] for m in json.loads(r.out)["messages"] if m["role"] == "user"] == ["msg 1", "msg 2"]
    assert (home / "history.json").read_bytes() == junk
    # The next writer rebuilds it, keeping the damaged bytes aside; no round is lost.
    r = chat(home, M, "msg 3", *ECHO)
    assert r.code == 0, r
    assert "Traceback" not in r.err
    (copy,) = _corrupt_copies(home, "history.json")
    assert copy.read_bytes() == junk
    assert [m["content"] for m in projection(home, M) if m["role"] == "user"] == ["msg 1", "msg 2", "msg 3"]
    assert [r["user"] for r in log_rounds(home, M)] == ["msg 1", "msg 2", "msg 3"]


def test_corrupt_config_json(home, litellm_dep):
    assert chat(home, M, "msg 1", *ECHO).code == 0
    junk = b'{"deployments": {"m": {"endpoint": '
    (home / "bai" / "config.json").write_bytes(junk)  # where the endpoint of every deployment is
    # The settings are unreadable: a warning, then the usage error of a deployment with no endpoint.
    r = chat(home, M, "msg 2", *ECHO)
    assert r.code == 2, r
    _one_warning(r.err, "config.json")
    assert len([line for line in r.err.splitlines() if line.startswith("bai: error:")]) == 1
    assert len(r.err.splitlines()) == 2 and f"chat-config set {M} --endpoint" in r.err
    assert (home / "bai" / "config.json").read_bytes() == junk  # not rewritten by a failed chat
    # Setting it again keeps the damaged bytes aside, and the conversation goes on where it was.
    configure(home, M, litellm_dep.root_url, "--token", litellm_dep.api_key)
    (copy,) = _corrupt_copies(home, "bai-config.json")
    assert copy.read_bytes() == junk
    assert chat(home, M, "msg 2", *ECHO).code == 0
    assert [r["user"] for r in log_rounds(home, M)] == ["msg 1", "msg 2"]


def test_corrupt_cache_json(home, litellm_dep):
    assert chat(home, M, "msg 1", "--no-stream").code == 0  # caches the default model
    junk = b"\x00\xff not json at all"
    (home / "bai" / "cache.json").write_bytes(junk)
    litellm_dep.clear()
    r = chat(home, M, "msg 2", "--no-stream")
    assert r.code == 0, r
    _one_warning(r.err, "cache.json")
    assert len(model_gets(litellm_dep)) == 1  # the default model was asked for again
    (copy,) = _corrupt_copies(home, "bai-cache.json")
    assert copy.read_bytes() == junk
    assert json.loads((home / "bai" / "cache.json").read_text())["deployments"][M]["default_model"] == "mock-echo"
    assert [r["user"] for r in log_rounds(home, M)] == ["msg 1", "msg 2"]


def test_torn_log_tail_is_repaired_silently(home, litellm_dep):
    # A kill -9 mid-append leaves a partial last line: the next writer truncates it away.
    assert chat(home, M, "msg 1", *ECHO).code == 0
    log = home / "bai" / "logs" / f"{M}.jsonl"
    good = log.read_bytes()
    log.write_bytes(good + b'{"type":"round","user":"half')
    r = bai(home, "deployment", "chat-history", "show", M, "--json")  # a reader: ignores the tail, says nothing
    assert r.code == 0 and r.err == "", r
    assert [m["content"] for m in json.loads(r.out)["messages"]] == ["msg 1", MOCK_ECHO_TEXT]
    r = chat(home, M, "msg 2", *ECHO)
    assert r.code == 0 and r.out == MOCK_ECHO_TEXT + "\n", r
    # Silently: an interrupted append is no damage, so no warning (nothing at all on stderr), and
    # no copy kept aside: the torn bytes were never an acknowledged round.
    assert r.err == "", r
    assert not (home / "bai" / "kept").exists()
    assert log.read_bytes().startswith(good)
    assert b"half" not in log.read_bytes()
    assert [r["user"] for r in log_rounds(home, M)] == ["msg 1", "msg 2"]
    assert [r["seq"] for r in log_records(home, M)] == [1, 2]


def test_unusable_store_root_is_a_store_error(home, litellm_dep):
    # The root is a file, not a directory: a store error, exit 1, one error line, no traceback.
    home.parent.mkdir(parents=True, exist_ok=True)
    other = home.parent / "not-a-dir"
    other.write_text("x")
    r = bai(other, "deployment", "chat", M, "hi", "--endpoint", litellm_dep.root_url, *ECHO,
            "--token", litellm_dep.api_key)
    assert r.code == 1 and "Traceback" not in r.err, r
    errors = [line for line in r.err.splitlines() if line.startswith("bai: error:")]
    assert len(errors) == 1 and "not a folder" in errors[0] and "nothing was sent" in errors[0], r
    assert all(line.startswith(("bai: error:", "bai: warning:")) for line in r.err.splitlines()), r
    assert other.read_text() == "x"


def test_files_are_private_whatever_the_umask(home, litellm_dep):
    # DESIGN: directories 0700, files 0600, even when bai runs under umask 000.
    proc = subprocess.run([BAI, "deployment", "chat", M, "hi", *ECHO], env=bai_env(home), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, preexec_fn=lambda: os.umask(0))
    assert proc.returncode == 0, proc.stderr
    assert home.stat().st_mode & 0o777 == 0o700
    for path in home.rglob("*"):
        want = 0o700 if path.is_dir() else 0o600
        assert path.stat().st_mode & 0o777 == want, path


def test_backend_ai_history_is_replayed_and_stays_readable(home, litellm_dep):
    # A history.json as Backend.AI writes it (no "version"): bai replays it, and after bai
    # has written, the file still has Backend.AI's shape with the old and new messages.
    legacy = {"deployments": {M: [
        {"role": "user", "content": "old question", "created_at": "2025-01-01T00:00:00+00:00"},
        {"role": "assistant", "content": "old answer", "created_at": "2025-01-01T00:00:01+00:00"}]}}
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "history.json").write_text(json.dumps(legacy))
    r = chat(home, M, "new question", *ECHO)
    assert r.code == 0, r
    assert chat_posts(litellm_dep)[-1].json["messages"] == [
        {"role": "user", "content": "old question"}, {"role": "assistant", "content": "old answer"},
        {"role": "user", "content": "new question"}]
    doc = json.loads((home / "history.json").read_text())
    msgs = doc["deployments"][M]
    assert [(m["role"], m["content"]) for m in msgs] == [
        ("user", "old question"), ("assistant", "old answer"),
        ("user", "new question"), ("assistant", MOCK_ECHO_TEXT)]
    assert all(isinstance(m["created_at"], str) and m["created_at"] for m in msgs)


def test_byte_cap_holds_in_log_and_projection(home, litellm_dep):
    # P8 for bytes: rounds of about 560 bytes against a 3000-byte cap, oldest dropped first.
    configure(home, M, litellm_dep.root_url, "--token", litellm_dep.api_key, "--history-max-bytes", "3000")
    for n in range(1, 9):
        r = chat(home, M, f"msg {n} " + "x" * 500, *ECHO)
        assert r.code == 0, r
        assert (home / "bai" / "logs" / f"{M}.jsonl").stat().st_size <= 3000
        entry = projection(home, M)
        assert len(json.dumps(entry, separators=(",", ":")).encode()) <= 3000
        users = [m["content"].split(" ")[1] for m in entry if m["role"] == "user"]
        assert users and users == [str(k) for k in range(n - len(users) + 1, n + 1)]  # newest, contiguous
    assert len(log_rounds(home, M)) < 8  # the cap did drop some
