"""Deterministic messages, and bai stores already at their steady state.

A steady-state store is written with the store's own record encoding (`encode_line`) as the
compacted logs it keeps at its cap: a `base` record and the newest 50 rounds per deployment.
Then `Store.compact()` rebuilds history.json from them, so every file is one the store wrote
or accepts as its own. Seeding this way takes a fraction of a second instead of a thousand
durable appends; the measurements themselves only ever go through the public Store API.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import msgspec

from eventlog import Store
from eventlog._events import BaseEvent, RoundEvent, encode_line, now_iso

_WORDS = ("the of and to in is that for it as with was on be by this are or from at an which have not "
          "model answer token context server request stream round deployment history cap disk byte "
          "latency durable append compact replay message prompt reply user assistant system").split()
USAGE = {"prompt_tokens": 1200, "completion_tokens": 120, "total_tokens": 1320}
MODEL = "bench-model"


def texts(count: int, size: int, seed: int = 1) -> list[str]:
    """`count` different ASCII texts of exactly `size` bytes."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words: list[str] = []
        n = 0
        while n < size:
            w = rng.choice(_WORDS)
            words.append(w)
            n += len(w) + 1
        out.append(" ".join(words)[:size].rstrip().ljust(size, "."))
    return out


def deployment_ids(n: int) -> list[str]:
    """UUIDs, as Backend.AI names deployments: the ids whose history history.json holds too."""
    return [f"00000000-0000-4000-8000-{i:012x}" for i in range(n)]


def append_round(store: Store, dep: str, user: str, assistant: str):
    """A round as a chat saves one: model, finish reason and usage included."""
    return store.record_round(dep, user, assistant, model=MODEL, finish_reason="stop", usage=USAGE)


def _round(dep: str, seq: int, user: str, assistant: str, ts: str) -> RoundEvent:
    return RoundEvent(v=1, seq=seq, deployment=dep, ts=ts, user=user, assistant=assistant, user_at=ts,
                      model=MODEL, finish_reason="stop", usage=USAGE)


def write_compacted_log(root: Path, dep: str, last_seq: int, rounds: int, pool: list[str]) -> None:
    """The log a deployment has after `last_seq` rounds ever recorded, at a cap of `rounds` rounds."""
    ts = now_iso()
    first = max(1, last_seq - rounds + 1)
    lines = []
    if first > 1:
        lines.append(encode_line(BaseEvent(v=1, seq=first - 1, deployment=dep, ts=ts)))
    for seq in range(first, last_seq + 1):
        lines.append(encode_line(_round(dep, seq, pool[(2 * seq) % len(pool)], pool[(2 * seq + 1) % len(pool)], ts)))
    _write_log(root, dep, b"".join(lines))


def write_uncompacted_log(root: Path, dep: str, rounds: int, pool: list[str]) -> int:
    """A log holding every one of `rounds` rounds (what the store appends while under its cap,
    e.g. with a cap since lowered). Returns its size in bytes."""
    template = _round(dep, 1, pool[0], pool[1], now_iso())
    replace = msgspec.structs.replace
    data = b"".join(
        encode_line(replace(template, seq=s, user=pool[(2 * s) % len(pool)], assistant=pool[(2 * s + 1) % len(pool)]))
        for s in range(1, rounds + 1))
    _write_log(root, dep, data)
    return len(data)


def _write_log(root: Path, dep: str, data: bytes) -> None:
    logs = root / "bai" / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    os.chmod(root / "bai", 0o700)
    path = logs / f"{dep}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def seed_steady_state(root: Path, deps: list[str], rounds_per_dep: int, pool: list[str],
                      last_seq: int = 1000) -> Store:
    """Every deployment at its cap, `last_seq` rounds ever recorded; history.json rebuilt."""
    for dep in deps:
        write_compacted_log(root, dep, last_seq, rounds_per_dep, pool)
    store = Store(root)
    store.compact()
    return store
