"""The store at steady state, beside the baselines and the limit, in one run.

Steady state: 20 deployments at their cap of 100 messages (50 rounds of two ~500-byte
messages each). Every timed operation is interleaved with the same operation of the other
implementations (ABCD..., the order rotating each iteration), so their ratios are paired.
"""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from eventlog import Store
from eventlog._events import encode_line, now_iso

from . import _fixtures as fx
from ._baselines import BareAppend, BareSameWork, JsonRewrite, SqliteLog

Log = Callable[[str], None]
clock = time.perf_counter_ns

BAI = "bai"
JSON = "json"
SQL_DELETE = "sqlite-delete"
SQL_WAL = "sqlite-wal"
BARE = "bare"
BARE_SAME = "bare-same"
READ = "read"


@dataclass(frozen=True)
class StoreParams:
    append_reps: int
    context_reps: int
    real_appends: int  # real record_round calls that end each "N rounds ever recorded" history
    compact_reps: int
    compact_all_reps: int
    profile_appends: int
    history_ns: tuple[int, ...] = (10, 100, 1_000, 10_000, 100_000)
    deployments: int = 20
    cap_messages: int = 100
    msg_bytes: int = 500
    context_limit: int = 10


QUICK = StoreParams(append_reps=60, context_reps=60, real_appends=4, compact_reps=8, compact_all_reps=3,
                    profile_appends=20)
# --smoke: every figure measured once or twice, to show each target still gets a number (seconds).
SMOKE = StoreParams(append_reps=3, context_reps=3, real_appends=2, compact_reps=1, compact_all_reps=1,
                    profile_appends=2, history_ns=(10, 100, 1_000), deployments=3)
FULL = StoreParams(append_reps=600, context_reps=400, real_appends=60, compact_reps=40, compact_all_reps=10,
                   profile_appends=100)


@dataclass
class AppendProfile:
    appends: int
    fsyncs_per_append: float
    fsync_ms_per_append: float
    bytes_written_per_append: float
    wall_ms_per_append: float
    parts: list[tuple[str, float]]  # (what, ms per append, cumulative) for the store's own functions
    top: list[tuple[str, float, float]]  # (function, own ms per append, cumulative ms per append)


@dataclass
class StoreResults:
    params: StoreParams
    names: dict[str, str]
    append: dict[str, list[int]] = field(default_factory=dict)
    context: dict[str, list[int]] = field(default_factory=dict)
    context_by_n: dict[int, list[int]] = field(default_factory=dict)
    compact_history: dict[int, tuple[int, int]] = field(default_factory=dict)  # N -> (ns, bytes compacted)
    compact_one: list[int] = field(default_factory=list)
    compact_all: list[int] = field(default_factory=list)
    vacuum: dict[str, list[int]] = field(default_factory=dict)
    disk: dict[str, dict[str, float]] = field(default_factory=dict)
    payload_per_deployment: int = 0
    byte_cap: int = 0
    profile: AppendProfile | None = None
    checks: list[str] = field(default_factory=list)  # problems found while verifying the work


def run(params: StoreParams, work: Path, log: Log) -> StoreResults:
    deps = fx.deployment_ids(params.deployments)
    rounds = params.cap_messages // 2
    pool = fx.texts(256, params.msg_bytes)
    bai_root = work / "bai"
    store = fx.seed_steady_state(bai_root, deps, rounds, pool)
    json_store = JsonRewrite(work / "json", params.cap_messages)
    sql_delete = SqliteLog(work / "sqlite-delete" / "logs.db", params.cap_messages, "delete")
    sql_wal = SqliteLog(work / "sqlite-wal" / "logs.db", params.cap_messages, "wal")
    bare = BareAppend(work / "bare" / "records.jsonl")
    bare_same = BareSameWork(work / "bare-same", (bai_root / "history.json").read_bytes())
    seed_rounds = [(pool[2 * i % len(pool)], pool[(2 * i + 1) % len(pool)]) for i in range(rounds)]
    for dep in deps:
        json_store.seed(dep, seed_rounds)
        sql_delete.seed(dep, seed_rounds)
        sql_wal.seed(dep, seed_rounds)
    res = StoreResults(params, names={
        BAI: "bai Store.record_round (lock, recover, append+compact, history.json)",
        JSON: JsonRewrite.name, SQL_DELETE: sql_delete.name, SQL_WAL: sql_wal.name, BARE: BareAppend.name,
        BARE_SAME: BareSameWork.name,
        READ: "read the deployment's log file, no parsing (the limit)",
    })
    res.byte_cap = store.caps.bytes if hasattr(store.caps, "bytes") else 0
    res.payload_per_deployment = params.cap_messages * params.msg_bytes

    log("store: durable append at steady state")
    _appends(res, params, store, json_store, sql_delete, sql_wal, bare, bare_same, deps, pool)
    bare.close()
    bare_same.close()
    _verify_steady_state(res, store, deps, rounds)
    log("store: context build")
    _contexts(res, params, store, json_store, sql_delete, sql_wal, deps)
    log("store: bytes on disk")
    _disk(res, bai_root, json_store, sql_delete, sql_wal, deps)
    log("store: compaction")
    _compactions(res, params, store, sql_delete, sql_wal, deps)
    log(f"store: context build vs rounds ever recorded {', '.join(map(str, params.history_ns))}")
    _context_vs_history(res, params, work, deps, pool, log)
    log("store: profile of one durable append")
    res.profile = profile_append(store, deps, pool, params.profile_appends)
    return res


def _timed(fn: Callable[[], object]) -> int:
    t0 = clock()
    fn()
    return clock() - t0


def _appends(res, params, store, json_store, sql_delete, sql_wal, bare, bare_same, deps, pool) -> None:
    ts = now_iso()
    usage = fx.USAGE

    def record(dep, u, a):
        return store.record_round(dep, u, a, model=fx.MODEL, finish_reason="stop", usage=usage)

    impls: list[tuple[str, Callable[[str, str, str, bytes], object]]] = [
        (BAI, lambda d, u, a, line: record(d, u, a)),
        (JSON, lambda d, u, a, line: json_store.append(d, u, a)),
        (SQL_DELETE, lambda d, u, a, line: sql_delete.append(d, u, a)),
        (SQL_WAL, lambda d, u, a, line: sql_wal.append(d, u, a)),
        (BARE, lambda d, u, a, line: bare.append_bytes(line)),
        (BARE_SAME, lambda d, u, a, line: bare_same.append_bytes(line)),
    ]
    samples: dict[str, list[int]] = {k: [] for k, _ in impls}
    warmup = 5
    gc.collect()
    for i in range(warmup + params.append_reps):
        dep = deps[i % len(deps)]
        u, a = pool[(2 * i + 7) % len(pool)], pool[(2 * i + 8) % len(pool)]
        line = encode_line(fx._round(dep, 10**6 + i, u, a, ts))  # the same record's bytes, for the limit
        k = i % len(impls)
        for name, fn in impls[k:] + impls[:k]:
            os.sync()  # untimed: no operation pays for another's unsynced writes (the JSON baseline never fsyncs)
            t = _timed(lambda: fn(dep, u, a, line))
            if i >= warmup:
                samples[name].append(t)
    res.append = samples


def _verify_steady_state(res: StoreResults, store: Store, deps: list[str], rounds: int) -> None:
    for dep in deps:
        n = len(store.rounds(dep))
        if n != rounds:
            res.checks.append(f"{dep} holds {n} rounds after the appends, expected the cap of {rounds}")


def _contexts(res, params, store, json_store, sql_delete, sql_wal, deps) -> None:
    limit = params.context_limit
    impls: list[tuple[str, Callable[[str], object]]] = [
        (BAI, lambda d: store.context(d, limit)),
        (JSON, lambda d: json_store.context(d, limit)),
        (SQL_DELETE, lambda d: sql_delete.context(d, limit)),
        (SQL_WAL, lambda d: sql_wal.context(d, limit)),
        (READ, lambda d: store.paths.log(d).read_bytes()),
    ]
    got = store.context(deps[0], limit)
    if len(got) != limit:
        res.checks.append(f"bai context returned {len(got)} messages, expected {limit}")
    samples: dict[str, list[int]] = {k: [] for k, _ in impls}
    warmup = 5
    for i in range(warmup + params.context_reps):
        dep = deps[i % len(deps)]
        k = i % len(impls)
        for name, fn in impls[k:] + impls[:k]:
            t = _timed(lambda: fn(dep))
            if i >= warmup:
                samples[name].append(t)
    res.context = samples


def _disk(res, bai_root: Path, json_store, sql_delete, sql_wal, deps) -> None:
    logs = [(bai_root / "bai" / "logs" / f"{d}.jsonl").stat() for d in deps]
    projection = (bai_root / "history.json").stat().st_size
    log_bytes = sum(s.st_size for s in logs) / len(deps)
    res.disk[BAI] = {"log": log_bytes, "projection": projection / len(deps), "total": log_bytes + projection / len(deps),
                     "allocated": sum(s.st_blocks * 512 for s in logs) / len(deps)}
    res.disk[JSON] = {"total": json_store.bytes_per_deployment(deps)}
    res.disk[SQL_DELETE] = {"total": sql_delete.bytes_per_deployment(deps)}
    res.disk[SQL_WAL] = {"total": sql_wal.bytes_per_deployment(deps)}


def _compactions(res, params, store, sql_delete, sql_wal, deps) -> None:
    for i in range(params.compact_reps):
        res.compact_one.append(_timed(lambda: store.compact(deps[i % len(deps)])))
    for _ in range(params.compact_all_reps):
        res.compact_all.append(_timed(lambda: store.compact()))
    res.vacuum = {SQL_DELETE: [], SQL_WAL: []}
    for _ in range(params.compact_all_reps):
        res.vacuum[SQL_DELETE].append(_timed(sql_delete.vacuum))
        res.vacuum[SQL_WAL].append(_timed(sql_wal.vacuum))


def _context_vs_history(res, params, work: Path, deps: list[str], pool: list[str], log: Log) -> None:
    """One store per N: 19 deployments at steady state and a target with N rounds ever recorded:
    a log holding N - k rounds, compacted by the store, then k real durable appends."""
    rounds = params.cap_messages // 2
    target = "00000000-0000-4000-8000-7a7a7a7a7a7a"
    stores: dict[int, Store] = {}
    for n in params.history_ns:
        root = work / f"history-{n}"
        store = fx.seed_steady_state(root, deps[:-1], rounds, pool)
        k = min(n, params.real_appends)
        if n - k > 0:
            size = fx.write_uncompacted_log(root, target, n - k, pool)
            t = _timed(lambda: store.compact(target))
            res.compact_history[n - k] = (t, size)
        for j in range(k):
            store.record_round(target, pool[j % len(pool)], pool[(j + 1) % len(pool)], model=fx.MODEL, usage=fx.USAGE)
        kept = store.rounds(target)
        if not kept or kept[-1].seq != n or len(kept) != min(n, rounds):
            res.checks.append(f"history {n}: the store holds {len(kept)} rounds ending at seq "
                              f"{kept[-1].seq if kept else 0}, expected {min(n, rounds)} ending at {n}")
        stores[n] = store
        gc.collect()
    ns = list(params.history_ns)
    samples: dict[int, list[int]] = {n: [] for n in ns}
    limit = params.context_limit
    warmup = 3
    for i in range(warmup + params.context_reps):
        k = i % len(ns)
        for n in ns[k:] + ns[:k]:
            t = _timed(lambda: stores[n].context(target, limit))
            if i >= warmup:
                samples[n].append(t)
    res.context_by_n = samples


# -- the profile of one append ------------------------------------------------------------

_PARTS = [
    ("lock wait + open (WriterLock.__enter__)", "_lock.py", "__enter__"),
    ("has Backend.AI written history.json? (read_shared_history)", "_reader.py", "read_shared_history"),
    ("recover the stream: read + scan log (WriterSession.stream)", "_writer.py", "stream"),
    ("caps: encode every kept round to size it (within_caps)", "_caps.py", "within_caps"),
    ("rewrite the log: compaction at the cap (_rewrite)", "_writer.py", "_rewrite"),
    ("refresh history.json when due (WriterSession.close)", "_writer.py", "close"),
    ("  of which the refresh itself", "_export.py", "refresh"),
    ("atomic_write (tmp, write, fsync, rename, dir fsync), all files", "_fsio.py", "atomic_write"),
    ("os.fsync, all calls", "~", "<built-in method posix.fsync>"),
]


def profile_append(store: Store, deps: list[str], pool: list[str], count: int) -> AppendProfile:
    """Where a steady-state append's time goes: cProfile, plus counted fsyncs and written bytes."""
    counts = {"fsync": 0, "fsync_ns": 0, "written": 0}
    real_fsync, real_write = os.fsync, os.write

    def fsync(fd: int) -> None:
        t0 = clock()
        try:
            real_fsync(fd)
        finally:
            counts["fsync"] += 1
            counts["fsync_ns"] += clock() - t0

    def write(fd: int, data) -> int:
        n = real_write(fd, data)
        counts["written"] += n
        return n

    profiler = cProfile.Profile()
    os.fsync, os.write = fsync, write  # eventlog calls os.fsync/os.write at call time (its fault-injection seam)
    try:
        t0 = clock()
        profiler.enable()
        for i in range(count):
            store.record_round(deps[i % len(deps)], pool[i % len(pool)], pool[(i + 3) % len(pool)],
                               model=fx.MODEL, finish_reason="stop", usage=fx.USAGE)
        profiler.disable()
        wall = clock() - t0
    finally:
        os.fsync, os.write = real_fsync, real_write
    stats = pstats.Stats(profiler)
    table = stats.stats  # type: ignore[attr-defined]
    parts = []
    for label, file_end, func in _PARTS:
        ct = sum(v[3] for k, v in table.items() if k[2] == func and (k[0].endswith(file_end) or file_end == "~"))
        parts.append((label, ct * 1000 / count))
    top = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
    top_rows = [(f"{Path(k[0]).name}:{k[1]} {k[2]}" if k[0] != "~" else k[2], v[2] * 1000 / count, v[3] * 1000 / count)
                for k, v in top]
    return AppendProfile(count, counts["fsync"] / count, counts["fsync_ns"] / count / 1e6,
                         counts["written"] / count, wall / count / 1e6, parts, top_rows)
