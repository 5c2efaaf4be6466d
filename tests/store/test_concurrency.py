"""Many processes writing one deployment at once (P9), and readers beside them (P12)."""

import json
import os
import subprocess
import sys

import pytest

from .checks import D1, assert_log_chain_valid, assert_projection_matches, visible
from eventlog import Caps

SOAK = int(os.environ.get("BAI_SOAK", "1"))

WRITER = """
import sys
from eventlog import Caps, Store
root, name, n, cap, dep = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
store = Store(root, caps=Caps(messages=cap, bytes=1 << 24), lock_timeout=60, refresh_share=0)
for i in range(n):
    r = store.record_round(dep, f"{name}-{i}", f"answer {name}-{i}")
    print(r.seq, f"{name}-{i}", flush=True)
"""

READER = """
import json, sys, time
import msgspec
from eventlog import Caps, Store
root, cap, seconds, dep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
warnings = []
store = Store(root, caps=Caps(messages=cap, bytes=1 << 24), warn=warnings.append)
last, polls, problems = 0, 0, []
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    rounds = store.rounds(dep)
    polls += 1
    seqs = [r.seq for r in rounds]
    if seqs != sorted(set(seqs)) or any(b != a + 1 for a, b in zip(seqs, seqs[1:])):
        problems.append(f"non-contiguous view {seqs}")
    if any(not r.assistant.startswith("answer ") or r.assistant[7:] != r.user for r in rounds):
        problems.append("a round mixed with another")
    top = seqs[-1] if seqs else 0
    if top < last:
        problems.append(f"last seq went back from {last} to {top}")
    last = max(last, top)
    try:
        raw = open(root + "/history.json", "rb").read()
        msgspec.json.decode(raw)
    except FileNotFoundError:
        pass
    except msgspec.DecodeError as e:
        problems.append(f"torn history.json: {e}")
print(json.dumps({"polls": polls, "last": last, "problems": problems[:5], "warnings": warnings[:5]}))
"""


def _run(root, processes, rounds_each, cap, dep="shared", other: str | None = None):
    """`processes` writers of `rounds_each` rounds to `dep` (every second one to `other`, if
    given), each refreshing history.json after every save (refresh_share=0), and a reader
    polling `dep` beside them."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    reader = subprocess.Popen([sys.executable, "-c", READER, str(root), str(cap), str(4 * SOAK), dep], stdout=subprocess.PIPE, text=True, env=env)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(root), f"p{k}", str(rounds_each), str(cap), other if other and k % 2 else dep], stdout=subprocess.PIPE, text=True, env=env)
        for k in range(processes)
    ]
    acks = []
    try:
        for w in writers:
            out, _ = w.communicate(timeout=120)
            assert w.returncode == 0
            acks += [line.split(" ", 1) for line in out.splitlines()]
        out, _ = reader.communicate(timeout=60)
        assert reader.returncode == 0
    finally:
        for p in writers + [reader]:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    return [(int(s), text) for s, text in acks], json.loads(out)


@pytest.mark.parametrize("processes", [8])
def test_concurrent_writers_each_round_exactly_once(root, processes):
    n = 25 * SOAK
    acks, reader = _run(root, processes, n, cap=100_000)
    assert len(acks) == processes * n
    seqs = sorted(s for s, _ in acks)
    assert seqs == list(range(1, processes * n + 1))  # unique and contiguous (P4, P9)
    rounds = visible(root, "shared", Caps(messages=100_000, bytes=1 << 24))
    assert sorted((r.seq, r.user) for r in rounds) == sorted(acks)  # every acknowledged round, exactly once
    assert_log_chain_valid(root, "shared")
    assert reader["polls"] > 0 and reader["problems"] == [], reader
    assert reader["warnings"] == []


def test_concurrent_writers_with_compaction(root):
    cap = 20
    acks, reader = _run(root, 8, 15 * SOAK, cap, dep=D1)
    seqs = sorted(s for s, _ in acks)
    assert seqs == list(range(1, len(acks) + 1))
    newest = sorted(acks)[-cap // 2 :]
    rounds = visible(root, D1, Caps(messages=cap, bytes=1 << 24))
    assert [(r.seq, r.user) for r in rounds] == newest
    assert_log_chain_valid(root, D1)
    assert_projection_matches(root, D1, [(u, f"answer {u}") for _, u in newest])
    assert reader["problems"] == [], reader


def test_concurrent_writers_to_two_conversations_of_one_deployment(root):
    """A conversation besides the main one is a stream like any other: writers of both at once
    each land exactly once, in their own stream, and history.json shows only the main one."""
    side = f"{D1}~side"
    acks, reader = _run(root, 8, 10 * SOAK, cap=100_000, dep=D1, other=side)
    caps = Caps(messages=100_000, bytes=1 << 24)
    for dep, writers in ((D1, ("p0", "p2", "p4", "p6")), (side, ("p1", "p3", "p5", "p7"))):
        mine = sorted((seq, text) for seq, text in acks if text.split("-")[0] in writers)
        assert [seq for seq, _ in mine] == list(range(1, len(mine) + 1)), dep  # gapless per stream
        assert sorted((r.seq, r.user) for r in visible(root, dep, caps)) == mine
        assert_log_chain_valid(root, dep)
    assert_projection_matches(root, D1, [(r.user, r.assistant) for r in visible(root, D1, caps)])
    assert_projection_matches(root, side, [])
    assert reader["problems"] == [], reader
