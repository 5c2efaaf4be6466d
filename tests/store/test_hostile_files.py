"""Hostile files in the store (issue 9, items 1-3, loose modes, Backend.AI imports over the cap):
links, deeply nested JSON, folders and FIFOs where a file belongs, modes someone loosened.

Every write of bai stays inside the store and leaves a link's target byte for byte as it was;
damage is a one-line warning and a repair (or, where bai cannot keep what it would replace, a
one-line refusal); damage in one deployment's slot stays in that deployment. Opening a FIFO
must never wait: the tests that plant one run under a deadline (SIGALRM) so a hang fails fast.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import zlib
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest

from eventlog import Caps, Store, StoreError, StoreWriteError
from eventlog._errors import StoreReadError, StoreUnwritable
from eventlog._events import RoundEvent, encode_line

from .checks import D1, D2, kept_copies, log_path

DEEP = b"[" * 100_000 + b"]" * 100_000  # 100k levels: msgspec gives up (RecursionError) near 1000
DEEP_OBJECT = b'{"deployments": {}, "x": ' + DEEP + b"}"  # typed decoders recurse into unknown keys too
SECRET = b"outside the store: must stay exactly as it is\n"


class Hung(BaseException):
    """Not an OSError (the store would take a TimeoutError for a disk error and go on)."""


@contextmanager
def deadline(seconds: float = 20.0):
    """Fail (instead of hanging the run) if the block takes longer: a FIFO opened without
    O_NONBLOCK would wait for a writer forever. The alarm repeats, so no later open hangs either."""

    def expired(signum, frame):
        raise Hung(f"still running after {seconds} s: something waited on a FIFO")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _snapshot(path: Path) -> tuple[bytes, int] | None:
    """A file's bytes and mode (None: it does not exist), read without following a link."""
    if not os.path.lexists(path):
        return None
    return path.read_bytes(), stat.S_IMODE(os.lstat(path).st_mode)


def _outside(tmp_path: Path, name: str = "outside.txt", data: bytes = SECRET, mode: int = 0o644) -> Path:
    target = tmp_path / "elsewhere" / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(data)
    os.chmod(target, mode)
    return target


def _one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text and text, text
    return text


@pytest.fixture
def seeded(make_store, root):
    """D1 and D2 with one round each, history.json and bai's own files written."""
    store = make_store()
    store.record_round(D1, "q1", "a1")
    store.record_round(D2, "q2", "a2")
    assert (root / "history.json").exists() and (root / "bai" / "exported.json").exists()
    return store


# -- 1. links: nothing bai writes follows one ---------------------------------------------------

# (file in the store, what writes it): each is replaced by a link to a file outside the store.
LINKED = [
    ("bai/logs/{D1}.jsonl", "record"),
    (".lock", "record"),
    ("history.json", "record"),
    ("bai/exported.json", "record"),
    ("bai/exported-stamp.json", "record"),
    ("config.json", "write_file"),
    ("bai/config.json", "write_file"),
    ("cache.json", "write_file"),
    ("bai/cache.json", "write_file"),
]


@pytest.mark.parametrize("name,action", LINKED)
@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_a_link_in_the_store_is_never_written_through(seeded, make_store, root, tmp_path, warnings, name, action, dangling):
    path = root / name.format(D1=D1)
    target = _outside(tmp_path)
    if dangling:
        target.unlink()
    if path.exists():
        path.unlink()
    path.symlink_to(target)
    before = _snapshot(target)
    store = make_store()
    if action == "record":
        try:
            store.record_round(D1, "q", "a")
        except StoreError as e:  # refused: one line that says it is a link
            assert "symbolic link" in _one_line(e)
        else:  # the round is saved (the log is the truth); history.json & co. are refused with a warning
            assert name not in ("bai/logs/{D1}.jsonl", ".lock"), "the log and the lock must be refused"
            assert any("symbolic link" in w for w in warnings), warnings
    else:
        with pytest.raises(StoreWriteError, match="symbolic link") as caught:
            store.write_file(name, b'{"deployments": {}}\n')
        _one_line(caught.value)
    assert _snapshot(target) == before, "the link's target changed (or a dangling link's target was created)"
    assert path.is_symlink(), "the link itself is left as it is: the user decides what it should be"


def test_a_linked_log_is_refused_before_anything_is_sent(seeded, make_store, root, tmp_path):
    """The check a chat makes before sending: the round could not be saved, so nothing is spent."""
    log = log_path(root, D1)
    log.unlink()
    log.symlink_to(_outside(tmp_path))
    with pytest.raises(StoreUnwritable, match="nothing was sent.*symbolic link") as caught:
        make_store().check_writable(D1)
    _one_line(caught.value)
    make_store().check_writable(D2)  # the other deployment's slot is fine


@pytest.mark.parametrize("folder", ["bai", "bai/logs", "bai/kept"])
@pytest.mark.parametrize("mode", [0o755, 0o700])  # 0700: no chmod is even needed, and still nothing goes through
def test_a_linked_folder_of_the_store_is_not_written_into(seeded, make_store, root, tmp_path, folder, mode):
    path = root / folder
    elsewhere = tmp_path / "elsewhere-folder"
    if path.exists():
        os.rename(path, elsewhere)
    else:
        elsewhere.mkdir()
    os.chmod(elsewhere, mode)
    path.symlink_to(elsewhere, target_is_directory=True)
    listing = sorted(os.listdir(elsewhere))
    if folder == "bai/kept":  # written only to keep a damaged file aside
        (root / "history.json").write_bytes(b"{damaged")
    with pytest.raises(StoreWriteError, match="symbolic link") as caught:
        make_store().record_round(D1, "q", "a")
    _one_line(caught.value)
    assert sorted(os.listdir(elsewhere)) == listing
    assert stat.S_IMODE(os.stat(elsewhere).st_mode) == mode, "a linked folder's mode was changed"


def test_a_legacy_logs_link_is_not_moved_from(seeded, make_store, root, tmp_path):
    """bai 0.1's `logs/` is moved into bai/logs once; a link of that name leads elsewhere: nothing
    is taken out of the folder it points to."""
    elsewhere = tmp_path / "someone-elses-logs"
    elsewhere.mkdir()
    (elsewhere / "x.jsonl").write_bytes(SECRET)
    (root / "logs").symlink_to(elsewhere, target_is_directory=True)
    make_store().record_round(D1, "q", "a")
    assert os.listdir(elsewhere) == ["x.jsonl"] and (elsewhere / "x.jsonl").read_bytes() == SECRET
    assert not log_path(root, "x").exists()


def test_the_root_itself_may_be_a_link(tmp_path, warnings):
    """Users keep big folders elsewhere: the root may be a link to the store; nothing in it may."""
    real = tmp_path / "on-another-disk"
    real.mkdir(mode=0o700)
    root = tmp_path / "deployment_chat"
    root.symlink_to(real, target_is_directory=True)
    store = Store(root, warn=warnings)
    store.record_round(D1, "q", "a")
    store.write_file("config.json", b'{"deployments": {}}\n')
    assert (real / "history.json").exists() and (real / "config.json").exists() and root.is_symlink()
    assert [m.content for m in store.history(D1)] == ["q", "a"] and warnings == []


def test_a_planted_tmp_name_is_never_followed(seeded, make_store, root, tmp_path, monkeypatch):
    """Tmp files are created with O_EXCL (and O_NOFOLLOW): a link at the name is an error, not a path."""
    from eventlog import _fsio

    target = _outside(tmp_path)
    planted = root / ".history.json.tmp.planted"
    planted.symlink_to(target)
    monkeypatch.setattr(_fsio, "tmp_name", lambda t: t.with_name(f".{t.name}.tmp.planted"))
    with pytest.raises(FileExistsError):
        _fsio.atomic_write(root / "history.json", b"{}")
    assert _snapshot(target) == (SECRET, 0o644)


# -- 2. deeply nested JSON: a warning and a repair, never RecursionError -------------------------

@pytest.mark.parametrize("name", ["history.json", "bai/exported.json", "bai/exported-stamp.json"])
@pytest.mark.parametrize("deep", [DEEP, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_store_file_is_repaired(seeded, make_store, root, warnings, name, deep):
    (root / name).write_bytes(deep)
    store = make_store()
    assert [m.content for m in store.history(D1)] == ["q1", "a1"]  # readers: the logs are the truth
    store.record_round(D1, "q", "a")
    assert [m.content for m in store.history(D1)] == ["q1", "a1", "q", "a"]
    doc = json.loads((root / "history.json").read_bytes())
    assert [m["content"] for m in doc["deployments"][D1]] == ["q1", "a1", "q", "a"]
    assert doc["deployments"][D2][0]["content"] == "q2"
    if name == "history.json":
        assert any("nested too deeply" in w for w in warnings), warnings
        assert [p.read_bytes() for p in kept_copies(root, "history.json")] == [deep]  # kept, then rebuilt


def _line_with_valid_crc(body: bytes) -> bytes:
    return b"%s,\"crc\":%d}\n" % (body[:-1], zlib.crc32(body))


def test_deeply_nested_log_record_with_a_valid_checksum_is_damage(make_store, root, warnings):
    store = make_store()
    store.record_round(D1, "q1", "a1")
    store.record_round(D1, "q2", "a2")
    log = log_path(root, D1)
    first, second = log.read_bytes().splitlines(keepends=True)
    deep = msgspec.json.encode({"type": "round", "v": 1, "seq": 2, "deployment": D1, "ts": "t", "user": "x",
                                "assistant": "y"})[:-1] + b',"usage":{"a":' + DEEP + b"}}"
    original = first + _line_with_valid_crc(deep) + second
    log.write_bytes(original)
    assert [m.content for m in make_store().history(D1)] == ["q1", "a1", "q2", "a2"]  # the chain shows it hid nothing
    make_store().record_round(D1, "q3", "a3")
    assert [m.content for m in make_store().history(D1)] == ["q1", "a1", "q2", "a2", "q3", "a3"]
    assert any("damaged" in w for w in warnings), warnings
    assert [p.read_bytes() for p in kept_copies(root, f"{D1}.jsonl")] == [original]


def test_deeply_nested_entry_of_backend_ai_history_is_left_out_not_fatal(seeded, make_store, root, warnings):
    """Backend.AI's file (no version): one deployment's entry nested too deeply costs only that entry."""
    doc = json.loads((root / "history.json").read_bytes())
    raw = b'{"deployments": {"%s": %s, "%s": [{"a": %s}]}}' % (
        D1.encode(), json.dumps(doc["deployments"][D1]).encode(), D2.encode(), b"[" * 900 + b"]" * 900)
    (root / "history.json").write_bytes(raw.replace(b"[" * 900, b"[" * 100_000).replace(b"]" * 900, b"]" * 100_000))
    store = make_store()
    assert [m.content for m in store.history(D1)] == ["q1", "a1"]
    store.record_round(D1, "q", "a")
    assert [m.content for m in store.history(D2)] == ["q2", "a2"]


# -- 3. odd paths: a folder, a FIFO, an unreadable file in one deployment's slot -----------------

def _make_odd(path: Path, kind: str, monkeypatch) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link-to-fifo":
        fifo = path.with_name("the-fifo")
        os.mkfifo(fifo)
        path.symlink_to(fifo)
    elif kind == "unreadable":
        # chmod 000 does not stop root: every open of it is made to fail as it does for other users
        from eventlog import _fsio

        path.write_bytes(b"not yours\n")
        os.chmod(path, 0)

        def refusing(real):
            def call(p, flags, *a, **kw):
                if os.fspath(p) == os.fspath(path):
                    raise PermissionError(13, "Permission denied")
                return real(p, flags, *a, **kw)
            return call

        monkeypatch.setattr(_fsio, "_open_to_read", refusing(_fsio._open_to_read))
        monkeypatch.setattr(os, "open", refusing(os.open))
    else:
        raise AssertionError(kind)


ODD = ["folder", "fifo", "link-to-fifo", "unreadable"]


@pytest.mark.parametrize("kind", ODD)
def test_an_odd_log_slot_of_another_deployment_stays_in_that_deployment(seeded, make_store, root, warnings, kind, monkeypatch):
    other = log_path(root, D2)
    shown_before = json.loads((root / "history.json").read_bytes())["deployments"][D2]
    _make_odd(other, kind, monkeypatch)
    with deadline():
        store = make_store()
        store.record_round(D1, "q", "a")  # refreshes history.json: every deployment's log is read
        doc = json.loads((root / "history.json").read_bytes())
        assert [m["content"] for m in doc["deployments"][D1]] == ["q1", "a1", "q", "a"]
        assert doc["deployments"][D2] == shown_before  # Backend.AI's view of D2 kept as it was
        assert [d.deployment for d in store.deployments()] == [D1]  # listing: D2 skipped, with a warning
        store.compact()  # every deployment: D2 skipped, with a warning
        assert any(D2 in w for w in warnings), warnings
        with pytest.raises(StoreError, match=f"not {D2}") as caught:
            store.clear_all()  # the others are cleared; which one was not is an error
        _one_line(caught.value)
        assert store.history(D1) == []
        with pytest.raises(StoreError) as caught:  # D2 itself: one line, for D2 alone
            store.history(D2)
        _one_line(caught.value)
        with pytest.raises(StoreUnwritable):
            store.check_writable(D2)
    if kind != "unreadable":
        assert not stat.S_ISREG(os.lstat(other).st_mode)  # left as it was found


@pytest.mark.parametrize("name", ["history.json", "bai/exported.json", "bai/exported-stamp.json", ".lock"])
def test_a_fifo_in_place_of_a_store_file_never_hangs(seeded, make_store, root, warnings, name):
    os.unlink(root / name)
    os.mkfifo(root / name)
    with deadline():
        store = make_store()
        assert [m.content for m in store.history(D1)] == ["q1", "a1"]
        try:
            store.record_round(D1, "q", "a")
        except StoreError as e:  # .lock: nothing can be saved; one line
            assert name == ".lock" and "FIFO" in _one_line(e)
        else:
            assert [m.content for m in store.history(D1)][-2:] == ["q", "a"]
    assert stat.S_ISFIFO(os.lstat(root / name).st_mode)


def test_an_unreadable_history_json_is_not_replaced(seeded, make_store, root, warnings, monkeypatch):
    """What bai cannot read it cannot keep a copy of: it does not overwrite it."""
    _make_odd(root / "history.json", "unreadable", monkeypatch)
    before = _snapshot(root / "history.json")
    make_store().record_round(D1, "q", "a")  # saved in the log
    assert _snapshot(root / "history.json") == before
    assert any("history.json" in w and "permission denied" in w for w in warnings), warnings


def test_compacting_a_deployment_without_history_creates_nothing(make_store, root):
    make_store().compact("nothere")
    assert not log_path(root, "nothere").exists()


# -- loose modes, another user's store, a root that is no folder ---------------------------------

def test_a_loosened_store_is_tightened_whole_once_with_a_warning(seeded, make_store, root, warnings, tmp_path):
    outside = _outside(tmp_path, mode=0o644)
    (root / "bai" / "a-link").symlink_to(outside)
    (root / "config.json").write_bytes(b'{"deployments": {}}')
    (root / "bai" / "cache.json").write_bytes(b'{"deployments": {}}')
    make_store().record_round("named", "q", "a")  # not a UUID: no turn of D1 reads its log
    for folder in (root, root / "bai", root / "bai" / "logs"):
        os.chmod(folder, 0o777)
    for f in [root / "history.json", root / "config.json", root / "bai" / "exported.json", log_path(root, D2),
              log_path(root, "named"), root / "bai" / "cache.json"]:
        os.chmod(f, 0o644)
    make_store().record_round(D1, "q", "a")
    for dirpath, dirnames, filenames in os.walk(root):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700, dirpath
        for f in filenames:
            p = Path(dirpath) / f
            if not p.is_symlink():
                assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o644, "a link's target was chmodded"
    said = [w for w in warnings if "private" in w]
    assert len(said) == 1 and "0777" in said[0], warnings
    make_store().record_round(D1, "q", "a")
    assert len([w for w in warnings if "private" in w]) == 1  # once: the store is private now


def test_a_loose_file_is_tightened_when_bai_reads_it(seeded, make_store, root):
    os.chmod(root / "history.json", 0o644)
    os.chmod(log_path(root, D1), 0o664)
    make_store().history(D1)
    assert stat.S_IMODE(os.stat(log_path(root, D1)).st_mode) == 0o600
    make_store().record_round(D2, "q", "a")
    assert stat.S_IMODE(os.stat(root / "history.json").st_mode) == 0o600


def test_a_store_of_another_user_is_used_with_a_warning(seeded, make_store, root, warnings, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(root).st_uid + 4242)
    make_store().record_round(D1, "q", "a")
    said = [w for w in warnings if "another user" in w]
    assert len(said) == 1 and "BAI_CHAT_HOME" in said[0]


def test_a_root_that_is_a_file_is_refused_and_not_chmodded(tmp_path, warnings):
    path = tmp_path / "a-file"
    path.write_bytes(SECRET)
    os.chmod(path, 0o644)
    with pytest.raises(StoreWriteError, match="not a folder") as caught:
        Store(path, warn=warnings).record_round(D1, "q", "a")
    _one_line(caught.value)
    assert _snapshot(path) == (SECRET, 0o644)


# -- the lock: a cheap check before sending, a long wait after the answer ------------------------

def test_a_busy_lock_is_found_before_sending_and_waited_for_after(seeded, make_store, root, monkeypatch):
    import fcntl
    import threading

    from eventlog import _lock

    monkeypatch.setattr(_lock, "NOTE_AFTER", 0.05)
    fd = os.open(root / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: it conflicts even in this process
    try:
        with pytest.raises(StoreUnwritable, match="nothing was sent.*lock"):
            make_store().check_writable(D1, lock_timeout=0.05)
        waited: list[str] = []
        timer = threading.Timer(0.3, lambda: fcntl.flock(fd, fcntl.LOCK_UN))
        timer.start()
        recorded = make_store(lock_timeout=0.1).record_round(D1, "q", "a", lock_timeout=30, on_wait=lambda: waited.append("note"))
        timer.join()
    finally:
        os.close(fd)
    assert recorded.kept and waited == ["note"]
    assert [m.content for m in make_store().history(D1)][-2:] == ["q", "a"]


# -- Backend.AI's history.json over the cap: a note and a copy ------------------------------------

def test_importing_more_rounds_than_the_cap_says_so(seeded, make_store, root, warnings):
    theirs = [m for i in range(60) for m in (
        {"role": "user", "content": f"u{i}", "created_at": f"2026-01-01T00:{i:02d}:00Z"},
        {"role": "assistant", "content": f"a{i}", "created_at": f"2026-01-01T00:{i:02d}:30Z"})]
    (root / "history.json").write_text(json.dumps({"deployments": {D1: theirs}}))
    raw = (root / "history.json").read_bytes()
    make_store(caps=Caps(messages=100)).record_round(D2, "q", "a")
    said = [w for w in warnings if "oldest round(s) were dropped" in w]
    assert len(said) == 1 and D1 in said[0] and "11 oldest" in said[0], warnings  # 61 rounds, 50 kept
    assert raw in [p.read_bytes() for p in kept_copies(root, "history.json")]
    assert [m.content for m in make_store().history(D1)][-2:] == ["u59", "a59"]


# -- lone surrogates never reach a file ----------------------------------------------------------

def test_lone_surrogates_are_saved_as_replacement_characters(make_store, root):
    make_store().record_round(D1, "caf\udce9", "ok \ud800", model="m\udcff")
    doc = (root / "history.json").read_bytes().decode("utf-8")  # strict: no surrogate escapes either
    assert "\\ud" not in doc.lower()
    assert [m.content for m in make_store().history(D1)] == ["caf\ufffd", "ok \ufffd"]
