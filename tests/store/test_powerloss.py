"""Power loss at every I/O point of a short workload (P1, P3, P5, P7, P8, P10).

crashsim.Disk intercepts the store's os calls and models what is durable; the power goes before
the N-th call, for every N, and the store directory is rebuilt from the model in every variant
(unsynced data dropped, torn, zero-filled, directory changes written back, SIGKILL-like). A fresh
Store must then show every acknowledged round (bar what the cap or an acknowledged clear removed),
at most the in-flight operation's effect besides, and be fully repaired by the next writer.

BAI_SOAK=N samples N times as many states for the crash-during-recovery test.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import msgspec
import pytest

from .checks import assert_within_caps, pairs, visible
from .crashload import (
    A, B, CAPS, DEPLOYMENTS, KEEP, WORKLOAD, Z, Expected, Warned, check_after_writer, check_visible, make_store, run_workload, seed_store,
)
from .crashsim import REAL, VARIANTS, Disk, PowerLoss, fsync_without_disk, write_tree

SOAK = max(1, int(os.environ.get("BAI_SOAK", "1")))

# The first writer after the power comes back: compaction of everything, or a chat round on a
# deployment that may or may not need repair (z: history.json must still be repaired for a and b).
WRITERS = [("compact",), ("round", A, "after-q", "after-a"), ("round", B, "after-q", "after-a"),
           ("round", Z, "after-q", "after-a")]


@pytest.fixture(autouse=True)
def _no_disk_flush(monkeypatch):
    # what is durable is the model's business; the real disk flush would only cost time
    monkeypatch.setattr(os, "fsync", fsync_without_disk)


@pytest.fixture
def template(tmp_path):
    """A store with some history (a: 2 rounds, b: 1), durable before the workload starts."""
    world = tmp_path / "template"
    world.mkdir()
    exp = seed_store(world / "store")
    return world, exp


def _fresh(template, world: Path) -> Expected:
    src, exp = template
    if world.exists():
        shutil.rmtree(world)
    shutil.copytree(src, world)  # copy2: the mtimes (history.json newer than the logs) are kept
    return Expected({k: list(v) for k, v in exp.acked.items()}, dict(exp.seq_of))


def _run_until_power_loss(world: Path, exp: Expected, crash_at: int | None) -> tuple[Disk, bool]:
    disk = Disk(world, crash_at=crash_at)
    store = make_store(world / "store", lambda m: None)
    with disk.armed():
        try:
            run_workload(store, exp)
        except PowerLoss:
            return disk, True
    return disk, False


def _apply_writer(root: Path, writer, warn) -> None:
    store = make_store(root, warn)
    if writer[0] == "compact":
        store.compact()
    else:
        store.record_round(writer[1], writer[2], writer[3])


def _with_writer(seen: dict, writer) -> dict:
    out = dict(seen)
    if writer[0] == "round":
        out[writer[1]] = (seen[writer[1]] + [(writer[2], writer[3])])[-KEEP:]
    return out


def _check_recovered(root: Path, exp: Expected, inflight, writer, where: str) -> dict:
    """Everything checked after the power comes back; returns what was visible before any writer."""
    warned = Warned()
    seen = check_visible(root, exp, inflight, warned, where)  # P1, P3, P5 for readers
    if (root / "history.json").exists():
        msgspec.json.decode((root / "history.json").read_bytes())  # P7: never torn, whatever was synced
    for dep in DEPLOYMENTS:
        assert_within_caps(root, dep, CAPS)  # P8 holds even before recovery: no state over the cap is durable
    _apply_writer(root, writer, warned)
    after = _with_writer(seen, writer)
    touched = DEPLOYMENTS if writer[0] == "compact" else [writer[1]]
    check_after_writer(root, after, touched, f"{where}, after {writer}")  # P7 whichever writer ran first
    make_store(root, warned).compact()
    check_after_writer(root, after, DEPLOYMENTS, f"{where}, after compact")
    # a crash under the append protocol leaves at most a torn tail and a stale history.json: neither is damage
    assert not [w for w in warned if "damaged" in w or "ignoring" in w or "corrupt" in w], (where, warned)
    return seen


def _trace(template, tmp_path) -> list[tuple[str, str]]:
    world = tmp_path / "world"
    exp = _fresh(template, world)
    disk, crashed = _run_until_power_loss(world, exp, None)
    assert not crashed
    return disk.calls


def test_simulator_models_durability(tmp_path):
    """The model itself: without fsync nothing is durable, with it exactly what was synced."""
    top = tmp_path / "top"
    (top / "d").mkdir(parents=True)
    (top / "d" / "old").write_bytes(b"old")
    disk = Disk(top)
    with disk.armed():
        fd = os.open(top / "d" / "old", os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"+synced")
        os.fsync(fd)
        os.write(fd, b"+unsynced")
        os.close(fd)
        fd = os.open(top / "d" / "new", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"new data")
        os.fsync(fd)
        os.close(fd)
        os.replace(top / "d" / "new", top / "d" / "old2")
    assert disk.after("durable") == {"d": None, "d/old": b"old+synced"}  # new entry never fsynced in d
    assert disk.after("torn-1") == {"d": None, "d/old": b"old+synced+"}
    assert disk.after("zeros") == {"d": None, "d/old": b"old+synced" + b"\0" * 9}
    assert disk.after("meta") == {"d": None, "d/old": b"old+synced", "d/old2": b"new data"}
    assert disk.after("current") == {"d": None, "d/old": b"old+synced+unsynced", "d/old2": b"new data"}

    disk = Disk(top, crash_at=3)
    with disk.armed():
        dfd = os.open(top / "d", os.O_RDONLY | os.O_DIRECTORY)
        os.unlink(top / "d" / "old2")
        with pytest.raises(PowerLoss):
            os.fsync(dfd)  # the 3rd call: the unlink never became durable
        with pytest.raises(PowerLoss):
            os.unlink(top / "d" / "old")  # nothing happens after the power is gone
        os.close(dfd)
    assert os.open is REAL["open"]
    assert disk.after("durable") == {"d": None, "d/old": b"old+synced+unsynced", "d/old2": b"new data"}
    assert disk.after("meta") == {"d": None, "d/old": b"old+synced+unsynced"}
    disk.rebuild("durable")
    assert (top / "d" / "old2").read_bytes() == b"new data" and (top / "d" / "old").exists()

    # a freed inode number comes back for the next file: the durable entry keeps the old file
    disk = Disk(top)
    with disk.armed():
        os.unlink(top / "d" / "old2")
        fd = os.open(top / "d" / "reuse", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"other")
        os.fsync(fd)
        os.close(fd)
        os.mkdir(top / "d" / "sub")
    assert disk.after("durable")["d/old2"] == b"new data" and "d/reuse" not in disk.after("durable")
    assert disk.after("current") == {"d": None, "d/old": b"old+synced+unsynced", "d/reuse": b"other", "d/sub": None}


def test_power_loss_at_every_io_point(template, tmp_path):
    """P1, P3, P5, P7, P8: the power goes before each intercepted call in turn (and once after the
    workload), and every variant of the surviving disk is recovered and checked."""
    trace = _trace(template, tmp_path)
    world = tmp_path / "world"
    assert len(trace) > 100, trace  # the workload really does I/O through the patched functions
    assert {name for name, _ in trace} >= {"open", "write", "fsync", "replace", "close"}
    checked = 0
    for n in range(1, len(trace) + 2):  # len + 1: no crash inside; the power goes after the last return
        exp = _fresh(template, world)
        disk, crashed = _run_until_power_loss(world, exp, n)
        assert crashed == (n <= len(trace)), n
        assert disk.calls == trace[:n], (n, "the workload's I/O must be deterministic")
        inflight = exp.inflight
        done = set()
        for variant in VARIANTS:
            tree = disk.after(variant)
            key = tuple(sorted(tree.items(), key=lambda kv: kv[0]))
            if key in done:
                continue  # an identical disk was already checked
            done.add(key)
            write_tree(world, tree, disk.mtimes)
            writer = WRITERS[checked % len(WRITERS)]
            call = trace[n - 1] if n <= len(trace) else "(after the workload)"
            where = f"power lost before call {n} {call}, {variant}, in-flight {inflight}"
            _check_recovered(world / "store", exp, inflight, writer, where)
            checked += 1
    assert checked > len(trace) // 2


def test_acknowledged_state_survives_power_loss_after_each_operation(template, tmp_path):
    """P1 and P5 directly: power lost right after each acknowledged operation, before the next
    starts, leaves exactly the acknowledged history (nothing in flight may add anything)."""
    trace = _trace(template, tmp_path)
    world = tmp_path / "world"
    # the call index at which each operation after the first starts: the lock file's open
    starts = [i + 1 for i, (name, detail) in enumerate(trace) if name == "open" and detail == ".lock"]
    assert len(starts) == len(WORKLOAD), starts
    for k, n in enumerate(starts[1:] + [len(trace) + 1]):
        exp = _fresh(template, world)
        disk, _ = _run_until_power_loss(world, exp, n)
        assert exp.inflight is None or exp.inflight == WORKLOAD[k + 1]
        for variant in VARIANTS:
            write_tree(world, disk.after(variant), disk.mtimes)
            check_visible(world / "store", exp, None, lambda m: None, f"after op {k} {WORKLOAD[k]}, {variant}")


def test_power_loss_during_recovery_changes_nothing(template, tmp_path):
    """P10: after a crash, the first writer's recovery is itself cut at every I/O point; what is
    visible must not change (bar the writer's own round), and a later recovery completes."""
    trace = _trace(template, tmp_path)
    world = tmp_path / "world"
    # crash states sampled along the whole workload, cycling through the variants and writers
    stride = max(1, len(trace) // (10 * SOAK))
    cases = [(n, VARIANTS[i % len(VARIANTS)], WRITERS[i % len(WRITERS)])
             for i, n in enumerate(range(5, len(trace) + 1, stride))]
    nested = 0
    for n, variant, writer in cases:
        exp = _fresh(template, world)
        disk, crashed = _run_until_power_loss(world, exp, n)
        assert crashed
        tree = disk.after(variant)
        mtimes = dict(disk.mtimes)
        write_tree(world, tree, mtimes)
        before = check_visible(world / "store", exp, exp.inflight, lambda m: None, f"crash {n} {variant}")
        ok = {dep: [before[dep]] for dep in DEPLOYMENTS}
        if writer[0] == "round":  # the writer's own round may be there or not
            ok[writer[1]].append(_with_writer(before, writer)[writer[1]])
        for m in range(1, 1000):
            write_tree(world, tree, mtimes)
            inner = Disk(world, crash_at=m)
            with inner.armed():
                try:
                    _apply_writer(world / "store", writer, lambda msg: None)
                    break  # the recovery completed before call m
                except PowerLoss:
                    pass
            done = set()
            for v2 in ("durable", "torn-all", "zeros", "meta", "current"):
                tree2 = inner.after(v2)
                key = tuple(sorted(tree2.items()))
                if key in done:
                    continue
                done.add(key)
                where = f"crash {n} ({trace[n - 1]}) {variant}, then crash {m} ({inner.calls[-1]}) in {writer}, {v2}"
                write_tree(world, tree2, inner.mtimes)
                store = make_store(world / "store", lambda msg: None)
                now = {dep: pairs(store.rounds(dep)) for dep in DEPLOYMENTS}
                for dep in DEPLOYMENTS:
                    assert now[dep] in ok[dep], f"{where}: {dep} shows {now[dep]}, was {before[dep]}"
                store.compact()  # a second recovery, uninterrupted, completes the job
                check_after_writer(world / "store", now, DEPLOYMENTS, where)
                nested += 1
    assert nested > 8 * 20, nested


def test_first_round_of_a_new_store_survives_power_loss(tmp_path):
    """P1 for the very first round: the store creates its root (and logs/) itself."""
    top = tmp_path / "home"
    top.mkdir()
    disk = Disk(top)
    with disk.armed():
        make_store(top / "store", lambda m: None).record_round(A, "first", "answer")
    write_tree(top, disk.after("durable"), disk.mtimes)
    assert pairs(visible(top / "store", A, CAPS)) == [("first", "answer")]


def test_round_acknowledged_despite_failed_projection_refresh_survives_power_loss(tmp_path):
    """P1 when history.json cannot be refreshed (ENOSPC) on the store's first round: the round is
    reported saved (the log holds it), so it must survive the power going right after."""
    top = tmp_path / "home"
    (top / "store").mkdir(parents=True)
    (top / "store" / "config.json").write_bytes(b"{}")  # chat-config made the root earlier
    disk = Disk(top)
    warned = Warned()
    with disk.armed():
        modelled_fsync = os.fsync

        def fsync(fd):
            if os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1].startswith(".history.json.tmp."):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return modelled_fsync(fd)

        os.fsync = fsync  # on top of the model's; armed() restores what was there before
        make_store(top / "store", warned).record_round(A, "first", "answer")
    assert warned.matching("could not be refreshed"), warned
    for variant in ("durable", "torn-all", "zeros"):
        write_tree(top, disk.after(variant), disk.mtimes)
        assert pairs(visible(top / "store", A, CAPS)) == [("first", "answer")], variant
