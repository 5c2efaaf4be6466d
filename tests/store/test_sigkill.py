"""kill -9 of a writer: at random times, and at named points inside the store (P1-P5, P7, P8, P10).

The writers are child processes (killchild.py); only they are killed, by their own pid. After a
SIGKILL the kernel keeps everything written, so what is checked is the store's protocol: nothing
acknowledged lost, nothing half-written read, at most the one in-flight round added, and the next
writer's recovery changing nothing visible.

BAI_SOAK=N multiplies the number of random kills.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventlog import Caps, Store
from eventlog._events import ClearEvent, RoundEvent, encode_line

from .checks import (
    D1, assert_log_chain_valid, assert_projection_matches, assert_within_caps, kept_copies, log_events, log_path, pairs, visible,
)
from .crashload import Warned
from .killchild import POINTS

SOAK = max(1, int(os.environ.get("BAI_SOAK", "1")))
CHILD = Path(__file__).with_name("killchild.py")
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0  # per child process


def _spawn(mode: str, args: dict) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.Popen(
        [sys.executable, str(CHILD), mode, json.dumps(args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )


def _read_until(proc: subprocess.Popen, marker: bytes, timeout: float) -> bytes:
    """Read the child's stdout until `marker` (or fail after `timeout` seconds)."""
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf:
        left = deadline - time.monotonic()
        assert left > 0, f"child did not say {marker!r} in {timeout}s: {buf!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"child exited early ({proc.wait()}): {buf!r} {proc.stderr.read()!r}"
            buf += chunk
    return buf


def _reap(proc: subprocess.Popen) -> None:
    """Make sure our child is gone (killed by its own pid, never by name)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=TIMEOUT)


# -- random kills ---------------------------------------------------------------------------------

LOOP_CAPS = Caps(messages=300)  # 150 rounds: the first runs append, later ones compact on every append
LOOP_KEEP = LOOP_CAPS.messages // 2


def _check_loop_state(root: Path, acked: dict, known: dict, inflight: set, where: str) -> None:
    """Every acknowledged round present exactly once at its seq, seqs contiguous, only the cap
    dropping anything, and nothing but in-flight rounds of killed writers besides (P1-P4)."""
    rounds = Store(root, caps=LOOP_CAPS, warn=Warned()).rounds(D1)
    seqs = [r.seq for r in rounds]
    users = [r.user for r in rounds]
    last = seqs[-1] if seqs else 0
    assert seqs == list(range(last - len(seqs) + 1, last + 1)), f"{where}: seqs not contiguous: {seqs}"
    assert len(set(users)) == len(users), f"{where}: a round appears twice"
    assert last >= max(acked, default=0), f"{where}: acknowledged seq {max(acked)} lost (last is {last})"
    assert len(rounds) == min(LOOP_KEEP, last), f"{where}: {len(rounds)} rounds up to seq {last}"
    extra = 0
    for r in rounds:
        assert r.assistant == f"answer to {r.user}", f"{where}: round {r.seq} is mixed up: {r}"
        if r.seq in acked:
            assert r.user == acked[r.seq], f"{where}: seq {r.seq} was acknowledged as {acked[r.seq]!r}, is {r.user!r}"
        elif r.seq in known:
            assert r.user == known[r.seq], f"{where}: seq {r.seq} was {known[r.seq]!r}, is {r.user!r}"
        else:
            assert r.user in inflight, f"{where}: seq {r.seq} ({r.user!r}) was never written"
            extra += 1
    assert extra <= 1, f"{where}: {extra} new unacknowledged rounds after one kill"
    known.update((r.seq, r.user) for r in rounds)


def test_sigkill_at_random_times(tmp_path):
    """Writers killed at random moments. What it asserts holds whatever the machine's speed:
    the store starts one round below its cap, so every run compacts however few rounds a child
    gets to write; where exactly a kill lands is the named-point tests' business."""
    rng = random.Random(1123)  # seeded: the same kill times on every run (bar scheduling)
    root = tmp_path / "store"
    acked: dict[int, str] = {}  # seq -> user text, as printed by the children
    known: dict[int, str] = {}  # seq -> user text of every round seen so far: never to change (P4)
    inflight: set[str] = set()  # the round each killed child was writing
    seed = Store(root, caps=LOOP_CAPS, warn=Warned(), refresh_share=0)
    for i in range(LOOP_KEEP - 1):
        acked[seed.record_round(D1, f"seed-{i}", f"answer to seed-{i}").seq] = f"seed-{i}"
    runs = 50 * SOAK
    for run in range(runs):
        proc = _spawn("loop", {"root": str(root), "dep": D1, "prefix": f"r{run}", "messages": LOOP_CAPS.messages})
        try:
            out = _read_until(proc, b"ready\n", TIMEOUT)
            time.sleep(rng.uniform(0, 0.04))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
            out += proc.stdout.read()
            err = proc.stderr.read().decode(errors="replace")
        finally:
            _reap(proc)
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, err)
        lines = out.split(b"ready\n", 1)[1].split(b"\n")
        done = [line.decode().split(" ", 1) for line in lines if line]
        assert not lines[-1], "a line is printed with one write"
        for seq, text in done:
            assert int(seq) not in acked, f"seq {seq} acknowledged twice"
            acked[int(seq)] = text
        inflight.add(f"r{run}-{len(done)}")
        where = f"kill {run} after {len(done)} rounds"
        _check_loop_state(root, acked, known, inflight, f"{where}, reader")
        # recovery by the next writer: a compaction, or (every other kill) a chat round
        warned = Warned()
        store = Store(root, caps=LOOP_CAPS, warn=warned, refresh_share=0)
        if run % 2 == 0:
            store.compact()
        else:
            acked[store.record_round(D1, f"p{run}", f"answer to p{run}").seq] = f"p{run}"
        assert not warned, warned  # a kill leaves nothing a crash could not explain
        _check_loop_state(root, acked, known, inflight, f"{where}, recovered")
        assert_log_chain_valid(root, D1)
        assert_projection_matches(root, D1, pairs(visible(root, D1, LOOP_CAPS)))
        assert_within_caps(root, D1, LOOP_CAPS)
        assert not [p for p in root.rglob("*") if ".tmp." in p.name], "leftover tmp files"
    assert max(acked) > LOOP_KEEP, "the cap was never passed: compaction was not exercised"


# -- named points ------------------------------------------------------------------------------------

POINT_CAPS = Caps(messages=6)  # 3 rounds
TS = "2026-01-01T00:00:00.000+00:00"


def _prepare(root: Path, point: str) -> None:
    store = Store(root, caps=POINT_CAPS, warn=Warned(), refresh_share=0)
    n = 3 if point.startswith("compaction:") else 2  # at the cap, the next append compacts
    for i in range(n):
        store.record_round(D1, f"q{i}", f"a{i}")
    store.record_round("other", "q-other", "a-other")  # history.json holds more than d1
    log = log_path(root, D1)
    if point == "recovery:after-quarantine":
        # damage no crash can cause: a bad line between two valid records
        lines = log.read_bytes().splitlines(keepends=True)
        log.write_bytes(lines[0] + b"this is not a record\n" + b"".join(lines[1:]))
    if point == "recovery:after-truncate":
        torn = encode_line(RoundEvent(v=1, seq=3, deployment=D1, ts=TS, user="torn", assistant="torn"))
        with open(log, "ab") as f:
            f.write(torn[: len(torn) // 2])


OPS = {"clear:after-tombstone": ["clear"]}
NEW = ["round", "new-q", "new-a"]


def _expected(point: str, v0: list) -> list:
    """What SIGKILL at the point leaves visible (the kernel keeps what was written)."""
    with_new = (v0 + [("new-q", "new-a")])[-3:]
    return {
        "append:after-write": with_new,  # a complete line: P3 allows it, recovery keeps it
        "append:after-fsync": with_new,
        "compaction:before-replace": v0,  # the tmp file never became the log
        "compaction:after-replace": with_new,
        "projection:before-replace": with_new,  # the log holds it; history.json is stale
        "clear:after-tombstone": [],  # the tombstone is the commit point of a clear
        "recovery:after-quarantine": v0,  # P10: recovery cut short changes nothing
        "recovery:after-truncate": v0,
    }[point]


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_named_point(tmp_path, point):
    root = tmp_path / "store"
    _prepare(root, point)
    damaged = log_path(root, D1).read_bytes()
    v0 = pairs(visible(root, D1, POINT_CAPS))
    other = pairs(visible(root, "other", POINT_CAPS))
    op = OPS.get(point, NEW)
    proc = _spawn("point", {"root": str(root), "dep": D1, "messages": POINT_CAPS.messages, "point": point, "op": op})
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        _reap(proc)
    assert proc.returncode == -signal.SIGKILL, f"never reached {point}: rc {proc.returncode} {out!r} {err!r}"

    expected = _expected(point, v0)
    assert pairs(visible(root, D1, POINT_CAPS)) == expected  # P1-P3 (P5 for the clear) for readers
    assert pairs(visible(root, "other", POINT_CAPS)) == other
    proj = (root / "history.json").read_bytes()
    json.loads(proj)  # P7: never torn

    if point == "recovery:after-quarantine":
        quarantined = kept_copies(root, f"{D1}.jsonl")
        assert [p.read_bytes() for p in quarantined] == [damaged], "the damaged bytes must be kept, once"

    # the next writer recovers: nothing visible changes (P10), everything is repaired (P3, P7, P8)
    warned = Warned()
    Store(root, caps=POINT_CAPS, warn=warned, refresh_share=0).compact()
    assert pairs(visible(root, D1, POINT_CAPS)) == expected
    assert pairs(visible(root, "other", POINT_CAPS)) == other
    for dep, want in ((D1, expected), ("other", other)):
        assert_log_chain_valid(root, dep)
        assert_projection_matches(root, dep, want)
        assert_within_caps(root, dep, POINT_CAPS)
    assert not [p for p in root.rglob("*") if ".tmp." in p.name], "leftover tmp files"
    if point != "recovery:after-quarantine":
        assert not warned, warned  # a kill leaves only what a crash explains: no damage reported
    if point == "clear:after-tombstone":  # P5: the cleared rounds are gone from the log too
        chain = log_events(root, D1).chain
        assert not [e for e in chain if isinstance(e, (RoundEvent, ClearEvent))], chain
    # a second recovery is a no-op on what is visible (P10), and the store goes on working
    Store(root, caps=POINT_CAPS, warn=Warned(), refresh_share=0).compact()
    assert pairs(visible(root, D1, POINT_CAPS)) == expected
    rec = Store(root, caps=POINT_CAPS, warn=Warned(), refresh_share=0).record_round(D1, "later-q", "later-a")
    seqs = [r.seq for r in Store(root, caps=POINT_CAPS).rounds(D1)]
    assert seqs[-1] == rec.seq and seqs == list(range(seqs[0], rec.seq + 1))
    assert pairs(visible(root, D1, POINT_CAPS)) == (expected + [("later-q", "later-a")])[-3:]
