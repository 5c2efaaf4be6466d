"""A turn's cost against the number of deployments: 1, 10 and 100 full ones.

Each store holds N deployments at their cap (UUIDs, so history.json holds them all: at 100,
about 100 times one full deployment) and a few more, the targets, below their cap: each starts
with 5 rounds and gets at most 40 more, so a turn on one is a plain append to a conversation of
5 to 45 rounds. Measured, interleaved across the stores and beside a bare write+fsync (the
disk's limit) in a rotating order: `record_round` on a target, and `context` of its last 10
messages. Also measured once per store: a refresh of history.json (what bai pays at most once
per SHARE x its duration; see eventlog/_export.py).
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from eventlog import Caps, Store

from . import _fixtures as fx
from ._baselines import BareAppend

Log = Callable[[str], None]
clock = time.perf_counter_ns
BARE = "bare"
PER_TARGET = 40  # appends a target takes before the next one is used: it stays below the cap of 50 rounds


def targets(count: int) -> list[str]:
    return [f"00000000-0000-4000-8000-ffff{i:08x}" for i in range(count)]


@dataclass(frozen=True)
class ScaleParams:
    counts: tuple[int, ...]
    reps: int
    cap_messages: int = 100
    msg_bytes: int = 500
    context_limit: int = 10


QUICK = ScaleParams(counts=(1, 10, 100), reps=40)
SMOKE = ScaleParams(counts=(1, 10), reps=4)  # --smoke: each figure measured, roughly
FULL = ScaleParams(counts=(1, 10, 100), reps=300)


@dataclass
class ScaleResults:
    params: ScaleParams
    append: dict[str, list[int]] = field(default_factory=dict)  # "1", "10", "100", "bare"
    context: dict[str, list[int]] = field(default_factory=dict)
    refresh: dict[str, float] = field(default_factory=dict)  # seconds of one history.json refresh
    history_bytes: dict[str, int] = field(default_factory=dict)
    refreshes: dict[str, int] = field(default_factory=dict)  # refreshes the timed appends made
    checks: list[str] = field(default_factory=list)


def run(params: ScaleParams, work: Path, log: Log) -> ScaleResults:
    res = ScaleResults(params)
    pool = fx.texts(256, params.msg_bytes)
    rounds = params.cap_messages // 2
    warmup = 3
    aims = targets(-(-(warmup + params.reps) // PER_TARGET))
    stores: dict[str, Store] = {}
    for n in params.counts:
        root = work / f"n{n}"
        log(f"scale: seeding {n} full deployment(s)")
        fx.seed_steady_state(root, fx.deployment_ids(n), rounds, pool)
        store = Store(root, caps=Caps(messages=params.cap_messages), warn=lambda m: res.checks.append(f"warning: {m}"))
        for target in aims:  # each exists, below its cap
            for j in range(5):
                fx.append_round(store, target, pool[j], pool[j + 1])
        stores[str(n)] = store
        res.history_bytes[str(n)] = (root / "history.json").stat().st_size
        t0 = time.perf_counter()
        store.compact(aims[0])  # a forced refresh of history.json (and a tiny compaction)
        res.refresh[str(n)] = time.perf_counter() - t0
    bare = BareAppend(work / "bare" / "records.jsonl")
    keys = [str(n) for n in params.counts]
    for key in keys:
        res.refreshes[key] = 0
    res.append = {k: [] for k in keys + [BARE]}
    res.context = {k: [] for k in keys}
    gc.collect()
    log(f"scale: {params.reps} appends and contexts per store, interleaved")
    for i in range(warmup + params.reps):
        target = aims[i // PER_TARGET]
        u, a = pool[(2 * i + 7) % len(pool)], pool[(2 * i + 8) % len(pool)]
        line = b"x" * (2 * params.msg_bytes + 300) + b"\n"
        order = keys[i % len(keys):] + keys[: i % len(keys)]
        for key in order + [BARE]:
            os.sync()  # untimed: nobody pays for another's unsynced writes
            if key == BARE:
                t = _timed(lambda: bare.append_bytes(line))
            else:
                stamp = stores[key].paths.stamp.stat().st_mtime_ns
                t = _timed(lambda: fx.append_round(stores[key], target, u, a))
                res.refreshes[key] += stores[key].paths.stamp.stat().st_mtime_ns != stamp
            if i >= warmup:
                res.append[key].append(t)
        for key in order:
            t = _timed(lambda: stores[key].context(target, params.context_limit))
            if i >= warmup:
                res.context[key].append(t)
    bare.close()
    for key, store in stores.items():
        for target in aims:
            held = len(store.rounds(target))
            if not 5 <= held < rounds:
                res.checks.append(f"{key} deployments: {target} holds {held} rounds, not below the cap")
    return res


def _timed(fn: Callable[[], object]) -> int:
    t0 = clock()
    fn()
    return clock() - t0
