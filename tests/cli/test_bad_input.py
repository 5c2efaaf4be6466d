"""Bad input, hostile files and signals at the command line (issue 9: items 2, 3, 5, 6, 7, the
answer that was spent then lost, imports over the cap, 401, SIGTERM/SIGHUP; issue 12 item 4).

Every case ends in a clear line (a note, a warning or one error line) and the documented exit
code, never "internal error"; nothing undecodable reaches a saved file. The chats run against
tests/echo_server.py on 127.0.0.1 (its answer echoes what it was sent); the real `bai`
executable runs where argv bytes, signals or a FIFO need a real process (under a timeout).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from cli import main as cli_main
from tests.e2e.helpers import BAI, bai_env

from .helpers import bai

U1 = "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"
U2 = "1f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"
DEEP = "[" * 100_000 + "]" * 100_000
TIMEOUT = 30


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BAI_CHAT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("BAI_DEBUG", raising=False)
    return tmp_path / "home"


def run_bai(home: Path, *args, input: bytes | None = None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """The installed `bai` in a process of its own (argv as bytes, a FIFO that could hang)."""
    return subprocess.run([BAI, *args], env=bai_env(home), input=input, capture_output=True, timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)


def lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def assert_clean_error(code: int, err: str, expected: int) -> None:
    assert code == expected, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert len([line for line in lines(err) if line.startswith("bai: error")]) == 1, err


def strict_utf8_files(home: Path) -> None:
    """Every file bai saved decodes as strict UTF-8 and holds no escaped lone surrogate."""
    for dirpath, _, names in os.walk(home):
        for name in names:
            data = (Path(dirpath) / name).read_bytes()
            text = data.decode("utf-8")  # raises on bytes that are not UTF-8
            assert "\\udc" not in text.lower() and "\\ud8" not in text.lower(), name


def configure(server, deployment="d1", *extra):
    code, _, err = bai("deployment", "chat-config", "set", deployment, "--endpoint", server.root_url, "--model", "m", *extra)
    assert code == 0, err


def saved(home, deployment="d1") -> list[str]:
    code, out, err = bai("deployment", "chat-history", "show", deployment, "--json")
    assert code == 0, err
    return [m["content"] for m in json.loads(out)["messages"]]


# -- item 6: bytes that are not UTF-8, numbers that are not durations ----------------------------

def test_stdin_that_is_not_utf8_is_sent_with_replacements_and_a_note(home, server):
    configure(server)
    code, out, err = bai("deployment", "chat", "d1", "-", input=b"diff of caf\xe9.txt (latin-1)\n")
    assert code == 0, err
    assert lines(err) == ["bai: stdin is not valid UTF-8: 1 byte(s) replaced with U+FFFD"]
    assert server.chat_requests()[-1]["messages"][-1]["content"] == "diff of caf\ufffd.txt (latin-1)"
    assert saved(home)[0] == "diff of caf\ufffd.txt (latin-1)"
    strict_utf8_files(home)


def test_argv_that_is_not_utf8_is_sent_with_replacements_and_a_note(home, server):
    """Real argv bytes (a latin-1 terminal): Python keeps them as lone surrogates."""
    home.mkdir(parents=True)
    assert run_bai(home, "deployment", "chat-config", "set", U1, "--endpoint", server.root_url,
                   "--system", b"r\xe9sum\xe9 briefly").returncode == 0
    p = run_bai(home, "deployment", "chat", U1, b"caf\xe9", "--params", b'{"stop": ["\xff"]}', "--model", b"m\xe9")
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert "MESSAGE is not valid UTF-8: 1 byte(s)" in err and "--params is not valid UTF-8" in err, err
    assert "internal error" not in err
    sent = server.chat_requests()[-1]
    assert sent["messages"][0] == {"role": "system", "content": "r\ufffdsum\ufffd briefly"}
    assert sent["messages"][-1]["content"] == "caf\ufffd" and sent["stop"] == ["\ufffd"] and sent["model"] == "m\ufffd"
    history = json.loads((home / "history.json").read_bytes())  # what Backend.AI's pydantic reads
    assert history["deployments"][U1][0]["content"] == "caf\ufffd"
    strict_utf8_files(home)


def test_token_that_is_not_utf8_is_refused_not_replaced(home, server):
    """A token must arrive exactly: one with U+FFFD in it could only be refused by the server."""
    home.mkdir(parents=True)
    for args, stdin in [(["chat-config", "set", "d1", "--token", b"t\xe9"], None),
                        (["chat-config", "set", "d1", "--token", "-"], b"tok\xe9\n"),
                        (["chat", "d1", "hi", "--endpoint", server.root_url, "--model", "m", "--token", b"t\xe9"], None)]:
        p = run_bai(home, "deployment", *args, input=stdin)
        err = p.stderr.decode()
        assert p.returncode == 2 and "not valid UTF-8" in err and len(lines(err)) == 1, err
    assert not (home / "bai" / "config.json").exists() and server.chat_requests() == []


def test_endpoint_that_is_not_utf8_is_one_clear_line(home, server):
    p = run_bai(home, "deployment", "chat", "d1", "hi", "--model", "m", "--endpoint", server.root_url.encode() + b"/\xe9")
    err = p.stderr.decode()
    assert "--endpoint is not valid UTF-8" in err and "internal error" not in err, err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308", "0", "-1", "ten"])
def test_timeout_that_is_no_duration_is_a_usage_error(home, value):
    code, _, err = bai("deployment", "chat", "d1", "hi", "--endpoint", "http://127.0.0.1:9", "--timeout", value)
    assert_clean_error(code, err, 2)
    assert "--timeout" in err


# -- item 2: 100k-deep JSON in --params and in every settings file -------------------------------

def test_deeply_nested_params_is_a_usage_error(home):
    code, _, err = bai("deployment", "chat", "d1", "hi", "--endpoint", "http://127.0.0.1:9", "--params", DEEP)
    assert_clean_error(code, err, 2)
    assert "nested too deeply" in err


@pytest.mark.parametrize("name", ["config.json", "cache.json", "bai/config.json", "bai/cache.json"])
def test_deeply_nested_settings_file_is_a_warning_and_kept_when_replaced(home, server, name):
    (home / "bai").mkdir(parents=True)
    (home / name).write_text(DEEP)
    code, _, err = bai("deployment", "chat-cache" if "cache" in name else "chat-config", "show", U1)
    assert code == 0 and "nested too deeply" in err and "internal error" not in err, err
    configure(server, U1)  # rewrites config.json and bai/config.json
    code, out, err = bai("deployment", "chat", U1, "hello")
    assert code == 0 and "echo: hello" in out, err
    bai("deployment", "chat-cache", "clear", U1)  # rewrites the cache files too
    copies = [p for p in (home / "bai" / "kept").iterdir() if p.name.startswith(name.replace("/", "-") + ".")]
    assert [p.read_text() for p in copies] == [DEEP]
    json.loads((home / name).read_bytes())  # a valid file again


# -- item 7 / issue 12 item 4: "" unsets every option, numbers too -------------------------------

def test_empty_value_unsets_numeric_settings(home):
    options = ["--history-limit", "--history-cap", "--history-max-bytes", "--context-window"]
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--model", "m", *[x for o in options for x in (o, "8")])
    assert code == 0, err
    for option in options:
        code, _, err = bai("deployment", "chat-config", "set", "d1", option, "")
        assert code == 0, err
    assert json.loads((home / "bai" / "config.json").read_text())["deployments"]["d1"] == {"model": "m"}
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--history-cap", "-1")
    assert code == 2  # still checked when not empty


def test_showing_the_settings_of_an_unknown_deployment_is_an_error(home):
    """Issue 12, item 14: a mistyped id is a one-line error, not a screen of "(not set)"."""
    assert bai("deployment", "chat-config", "set", "d1", "--model", "m")[0] == 0
    code, out, err = bai("deployment", "chat-config", "show", "d2")
    assert_clean_error(code, err, 1)
    assert "no deployment d2" in err and out == ""
    assert bai("deployment", "chat-config", "show", "d1")[0] == 0


# -- item 5: answered but not saved has its own exit code ----------------------------------------

def test_round_too_large_for_the_cap_exits_4(home, server):
    configure(server, "d1", "--history-max-bytes", "200")
    code, out, err = bai("deployment", "chat", "d1", "x" * 300)
    assert code == 4 and "echo: " in out and "not saved" in err, err
    assert saved(home) == []
    assert "4 answered but" in bai("deployment", "chat", "--help")[1]
    assert cli_main.__doc__ and "4 answered, but not saved" in cli_main.__doc__


# -- item 3: a FIFO or a folder in another deployment's log slot --------------------------------

@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_odd_log_slot_of_another_deployment_does_not_stop_a_chat(home, server, kind):
    configure(server, U1)
    configure(server, U2)
    assert run_bai(home, "deployment", "chat", U2, "first").returncode == 0
    other = home / "bai" / "logs" / f"{U2}.jsonl"
    other.unlink()
    os.mkfifo(other) if kind == "fifo" else other.mkdir()
    p = run_bai(home, "deployment", "chat", U1, "hello")  # a FIFO opened blocking would hang here
    err = p.stderr.decode()
    assert p.returncode == 0 and b"echo: hello" in p.stdout, err
    assert "internal error" not in err and U2 in err  # a warning about the other slot
    assert saved(home, U1) == ["hello", "echo: hello [1 messages]"]
    listing = run_bai(home, "deployment", "chat-history", "list", "--json")
    assert listing.returncode == 0 and [d["deployment"] for d in json.loads(listing.stdout)] == [U1]


def test_odd_own_log_slot_fails_before_sending(home, server, tmp_path):
    configure(server)
    (home / "bai" / "logs").mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b"keep me\n")
    (home / "bai" / "logs" / "d1.jsonl").symlink_to(outside)
    code, out, err = bai("deployment", "chat", "d1", "hello")
    assert_clean_error(code, err, 1)
    assert "symbolic link" in err and "nothing was sent" in err and out == ""
    assert server.chat_requests() == [] and outside.read_bytes() == b"keep me\n"


# -- the answer is not spent and then lost: read-only store, busy lock -------------------------

@pytest.fixture
def read_only(home):
    """Make `home` really read-only to bai: a read-only tmpfs when root (whom modes do not
    stop), mode 0500 for anyone else. Yields a function that turns it read-only."""
    made: list[str] = []

    def seal() -> None:
        if os.geteuid() == 0:
            state = home.parent / "state"
            os.rename(home, state)
            home.mkdir()
            if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(home)],
                              capture_output=True).returncode != 0:
                pytest.skip("cannot mount a tmpfs here (root without CAP_SYS_ADMIN)")
            made.append(str(home))
            subprocess.run(["cp", "-a", f"{state}/.", str(home)], check=True)
            subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        else:
            for dirpath, _, _ in os.walk(home):
                os.chmod(dirpath, 0o500)

    yield seal
    for mountpoint in made:
        subprocess.run(["umount", mountpoint], check=True)


def test_read_only_store_fails_before_sending(home, server, read_only):
    configure(server)
    assert bai("deployment", "chat", "d1", "first")[0] == 0
    asked = len(server.chat_requests())
    read_only()
    code, out, err = bai("deployment", "chat", "d1", "hello")
    assert_clean_error(code, err, 1)
    assert "nothing was sent" in err and out == ""
    assert len(server.chat_requests()) == asked


def test_busy_lock_before_sending_fails_fast_and_after_the_answer_is_waited_for(home, server, monkeypatch):
    from cli import _chat
    from cli._app import App
    from eventlog import StoreUnwritable, _lock, _store

    configure(server)
    bai("deployment", "chat", "d1", "first")
    monkeypatch.setattr(_store, "PROBE_WAIT", 0.1)
    monkeypatch.setattr(_lock, "NOTE_AFTER", 0.1)
    holder = os.open(home / ".lock", os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another bai, for as long as this test says
        asked = len(server.chat_requests())
        with pytest.raises(StoreUnwritable, match="nothing was sent"):
            _chat.run_chat(App(), _chat.ChatRequest("d1", "hello"), write=lambda t: None, note=lambda t: None)
        assert len(server.chat_requests()) == asked
        fcntl.flock(holder, fcntl.LOCK_UN)

        notes: list[str] = []
        release = threading.Timer(0.5, lambda: fcntl.flock(holder, fcntl.LOCK_UN))

        def write(text: str) -> None:  # the answer arrives: now another process takes the lock
            if not release.is_alive() and not release.finished.is_set():
                fcntl.flock(holder, fcntl.LOCK_EX)
                release.start()

        code = _chat.run_chat(App(), _chat.ChatRequest("d1", "hello"), write=write, note=notes.append)
        release.join()
    finally:
        os.close(holder)
    assert code == 0 and any("waiting up to 60 s" in n for n in notes), notes
    assert saved(home)[-2:] == ["hello", "echo: hello [3 messages]"]


# -- item 1 at the prompt: the input history is never written through a link --------------------

def test_input_history_link_is_refused_and_its_target_untouched(home, tmp_path):
    pytest.importorskip("readline")
    from cli._input_history import InputHistory as _InputHistory

    (home / "bai").mkdir(parents=True)
    target = tmp_path / "bashrc"
    target.write_bytes(b"export KEEP=1\n")
    os.chmod(target, 0o644)
    (home / "bai" / "input_history").symlink_to(target)
    errors: list[str] = []
    _InputHistory(home / "bai" / "input_history", errors.append).save()
    assert target.read_bytes() == b"export KEEP=1\n" and stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert len(errors) == 1 and "symbolic link" in errors[0] and "\n" not in errors[0]
    assert (home / "bai" / "input_history").is_symlink()
    assert not [n for n in os.listdir(home / "bai") if ".tmp." in n]  # no leftover


def test_input_history_fifo_does_not_hang_the_prompt(home, server):
    """Opening a FIFO to read the line history would wait for a writer forever."""
    pytest.importorskip("pexpect")
    configure(server)
    os.mkfifo(home / "bai" / "input_history")
    p = run_bai(home, "deployment", "chat", "d1", "-i", input=b"/exit\n")
    assert p.returncode == 0, p.stderr


# -- the store's folder: BAI_CHAT_HOME at an existing folder is made private, and said ----------

def test_existing_folder_made_private_is_said_once(home, server):
    home.mkdir()
    os.chmod(home, 0o755)
    (home / "notes.txt").write_text("mine")
    os.chmod(home / "notes.txt", 0o644)
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--model", "m")
    assert code == 0
    said = [line for line in lines(err) if "private" in line]
    assert len(said) == 1 and "0755 -> 0700" in said[0] and str(home) in said[0] and "notes.txt" in said[0], err
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home / "notes.txt").st_mode) == 0o644  # not the store's: left as it is
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--model", "m2")
    assert code == 0 and "private" not in err


def test_backend_ai_folder_in_its_usual_place_is_made_private_quietly(tmp_path, monkeypatch):
    """Backend.AI's CLI makes ~/.backend.ai/deployment_chat 0755 and its files 0644: ordinary use,
    tightened whole without a word."""
    monkeypatch.delenv("BAI_CHAT_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    store = tmp_path / ".backend.ai" / "deployment_chat"
    store.mkdir(parents=True, mode=0o755)
    os.chmod(store, 0o755)
    (store / "config.json").write_text(json.dumps({"deployments": {U1: {"token": "t"}}}))
    os.chmod(store / "config.json", 0o644)
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--model", "m")
    assert code == 0 and "warning" not in err, err
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store / "config.json").st_mode) == 0o600


def test_store_path_that_is_a_file_is_one_line_and_left_alone(tmp_path, monkeypatch):
    path = tmp_path / "a-file"
    path.write_text("mine")
    os.chmod(path, 0o644)
    monkeypatch.setenv("BAI_CHAT_HOME", str(path))
    code, _, err = bai("deployment", "chat-config", "set", "d1", "--model", "m")
    assert_clean_error(code, err, 1)
    assert "not a folder" in err
    assert path.read_text() == "mine" and stat.S_IMODE(os.stat(path).st_mode) == 0o644


# -- a refused token is kept, and the error says how to replace it -------------------------------

def test_refused_token_is_kept_and_the_error_says_how_to_replace_it(home, server):
    configure(server, U1, "--token", "wrong-token")
    server.fail_next(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
    code, _, err = bai("deployment", "chat", U1, "hello")
    assert_clean_error(code, err, 1)
    assert f"chat-config set {U1} --token" in err and "wrong-token" not in err
    assert json.loads((home / "config.json").read_text())["deployments"][U1]["token"] == "wrong-token"


# -- SIGTERM and SIGHUP: one line, 128 + the signal, nothing saved ------------------------------

@pytest.mark.parametrize("signum,code,said,nohup", [
    (signal.SIGTERM, 143, "terminated", False), (signal.SIGHUP, 129, "hung up", False),
    (signal.SIGHUP, 143, "terminated", True),  # under nohup SIGHUP stays ignored: SIGTERM then ends it
], ids=["SIGTERM", "SIGHUP", "nohup"])
def test_sigterm_and_sighup_end_with_one_line(home, signum, code, said, nohup):
    """bai waits on a server that never answers; the signal ends it at once, nothing saved."""

    def disposition():  # in the child: SIGHUP as a terminal's process has it (this run may be under nohup)
        signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        # model and window known: the chat request is the first and only request
        assert bai("deployment", "chat-config", "set", "d1", "--endpoint", url, "--model", "m", "--context-window", "4096")[0] == 0
        proc = subprocess.Popen([BAI, "deployment", "chat", "d1", "hello"], env=bai_env(home), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=disposition)
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                request = b""
                while b'"hello"' not in request:  # the whole request arrived: bai now waits for the answer
                    chunk = conn.recv(65536)
                    assert chunk, "bai hung up before sending"
                    request += chunk
                _blocked_in_its_read(proc.pid)
                proc.send_signal(signum)
                if nohup:
                    with pytest.raises(subprocess.TimeoutExpired):
                        proc.communicate(timeout=1)  # ignored: bai is still waiting for its answer
                    proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == code, err
    name = "SIGTERM" if nohup else signal.Signals(signum).name
    assert lines(err.decode()) == [f"bai: {said} ({name}); nothing was saved"], err
    assert saved(home) == []


def _blocked_in_its_read(pid: int) -> None:
    """Wait (bounded) until the process's main thread sleeps in its read of the answer. A signal
    that lands between the last check CPython makes and the start of the blocking call is only
    acted on when the call returns (CPython's own race, for Ctrl-C too, a window of microseconds
    in real use); sending it right as the request arrives would hit that window."""
    stat_path = Path(f"/proc/{pid}/task/{pid}/stat")
    if not stat_path.exists():
        return  # no /proc: the signal goes now
    for _ in range(500):
        state = stat_path.read_text().rpartition(")")[2].split()[0]
        try:
            wchan = Path(f"/proc/{pid}/task/{pid}/wchan").read_text()
        except OSError:
            wchan = ""
        if state == "S" and (wchan in ("", "0") or "poll" in wchan or "wait" in wchan):
            return
        threading.Event().wait(0.01)


def test_a_signal_during_the_save_takes_effect_after_it(home):
    from cli._signals import InterruptedAfterSave, Terminated, saving
    from eventlog import Store

    class NotHeld(Exception):
        """What a signal does if saving() does not hold it: the save is cut short."""

    def not_held(signum, frame):
        raise NotHeld(signum)

    previous = {s: signal.signal(s, not_held) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        def save(on_locked):
            def locked():
                on_locked()
                os.kill(os.getpid(), signal.SIGTERM)  # the lock is taken: held, the save still happens
            Store(home, warn=lambda m: None).record_round("d1", "q", "a", on_locked=locked)

        with pytest.raises(Terminated) as caught:
            with saving() as hold:
                save(hold)
        assert caught.value.saved and caught.value.exit_code == 143
        with pytest.raises(InterruptedAfterSave):
            with saving() as hold:
                hold()
                os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(NotHeld):  # before the lock is taken a signal acts at once: nothing is saved yet
            with saving():
                os.kill(os.getpid(), signal.SIGTERM)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert saved(home) == ["q", "a"]
