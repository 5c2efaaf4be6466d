"""Directory 0700, files 0600 whatever the umask; ids checked before any file is touched;
the public API is small and knows nothing of HTTP or click."""

import os
import stat
import subprocess
import sys

import pytest

from eventlog import Caps, InvalidDeploymentId, Store, is_valid_deployment_id

from .checks import D1, log_path


def _modes(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        out[dirpath] = stat.S_IMODE(os.stat(dirpath).st_mode)
        for f in filenames:
            out[os.path.join(dirpath, f)] = stat.S_IMODE(os.stat(os.path.join(dirpath, f)).st_mode)
    return out


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_permissions_whatever_the_umask(tmp_path, umask):
    root = tmp_path / "home" / ".backend.ai" / "deployment_chat"
    old = os.umask(umask)
    try:
        store = Store(root, caps=Caps(messages=4), warn=lambda m: None)
        for i in range(4):
            store.record_round(D1, "q", "a")  # appends and compactions
            store.record_round("named", "q", "a")
        (root / "history.json").write_bytes(b"{corrupt")  # so a kept-aside copy is written too
        os.chmod(root / "history.json", 0o600)
        store.clear(D1)
        store.clear("named")
    finally:
        os.umask(old)
    modes = _modes(tmp_path / "home")
    assert any("/bai/kept/history.json." in p for p in modes)
    assert any(p.endswith("exported-stamp.json") for p in modes)
    for path, mode in modes.items():
        want = 0o700 if os.path.isdir(path) else 0o600
        assert mode == want, f"{path}: {oct(mode)}"


def test_existing_root_is_tightened(tmp_path):
    root = tmp_path / "chat"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    Store(root, warn=lambda m: None).record_round("d1", "q", "a")
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


@pytest.mark.parametrize("good", ["a", "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55", "my.model:v1_2", "A" * 128, "9-x"])
def test_valid_ids(good):
    assert is_valid_deployment_id(good)


@pytest.mark.parametrize("bad", ["", "-lead", ".hidden", "../etc", "a/b", "a b", "a\n", "A" * 129, "é", "a\x00", None, 5])
def test_invalid_ids_are_refused_before_any_file_is_touched(tmp_path, bad):
    store = Store(tmp_path / "store", warn=lambda m: None)
    for call in [lambda: store.record_round(bad, "q", "a"), lambda: store.clear(bad), lambda: store.rounds(bad),
                 lambda: store.context(bad, 4)] + ([lambda: store.compact(bad)] if bad is not None else []):
        with pytest.raises(InvalidDeploymentId) as e:
            call()
        assert "\n" not in str(e.value) and "invalid deployment id" in str(e.value)
    assert not (tmp_path / "store").exists()


def test_eventlog_imports_no_http_or_cli():
    code = "import sys, eventlog; eventlog.Store; print(sorted(m for m in ('httpx', 'click', 'cli') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_bai_chat_home_moves_the_store(tmp_path, monkeypatch):
    from eventlog import default_root

    monkeypatch.setenv("BAI_CHAT_HOME", str(tmp_path / "elsewhere"))
    assert default_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("BAI_CHAT_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_root() == tmp_path / ".backend.ai" / "deployment_chat"


def test_busy_store_is_a_clear_error(tmp_path):
    import fcntl

    from eventlog import StoreBusy

    store = Store(tmp_path / "s", lock_timeout=0.2, warn=lambda m: None)
    store.record_round("d1", "q", "a")
    fd = os.open(tmp_path / "s" / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(StoreBusy, match="busy"):
            store.record_round("d1", "q2", "a2")
        assert [r.user for r in store.rounds("d1")] == ["q"]  # readers take no lock
    finally:
        os.close(fd)
    store.record_round("d1", "q2", "a2")


def test_leftover_tmp_files_are_removed_by_the_next_writer(make_store, root):
    store = make_store()
    store.record_round(D1, "q", "a")
    logs = log_path(root, D1).parent
    (root / ".history.json.tmp.99999.abcd").write_bytes(b"half")
    (logs / f".{D1}.jsonl.tmp.99999.abcd").write_bytes(b"half")
    (root / "bai" / ".exported.json.tmp.99999.abcd").write_bytes(b"half")
    assert [r.user for r in store.rounds(D1)] == ["q"]
    assert [p for p in os.listdir(logs) if ".tmp." in p]  # readers never write
    store.record_round(D1, "q2", "a2")  # refreshes history.json: looks for leftovers
    leftovers = [p for d in (root, logs, root / "bai") for p in os.listdir(d) if ".tmp." in p]
    assert leftovers == []
