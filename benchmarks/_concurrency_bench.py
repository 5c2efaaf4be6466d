"""N processes at once on one conversation: how many of the rounds sent are saved.

Each wave starts N chat commands together, each with its own message ("wave-3-msg-07"), all
on one deployment / conversation, and waits for all of them. Then the saved conversation is
read back and every message is looked for:
- bai: `Store.history(dep)` (the store's public reader); it also checks each is saved once;
- llm: its `logs.db`: the prompts in the conversation that `llm -c` continues (the chain from
  the thread's tip; a round stored off that chain is counted as lost, and said so);
- sgpt: its chat file (`CHAT_CACHE_PATH/<chat id>`), started at one round each wave so its
  cap of 100 messages drops none of the wave's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from eventlog import Store

from . import _fixtures as fx
from ._instant_server import MODEL, InstantServer
from ._peers import Tool, llm_env, sgpt_env
from ._process_bench import ANSWER_MARK, CHAT_DEP, bai_env, prepare_bai_home

Log = Callable[[str], None]
TIMEOUT = 120


@dataclass(frozen=True)
class ConcurrencyParams:
    levels: tuple[int, ...] = (8, 16)
    waves: int = 1  # per level, for bai
    peer_waves: int = 1
    peer_levels: tuple[int, ...] = (8, 16)


QUICK = ConcurrencyParams(waves=1, peer_waves=1, peer_levels=(8,))
SMOKE = ConcurrencyParams(levels=(16,), waves=1, peer_waves=1, peer_levels=())  # --smoke: the target's level once
FULL = ConcurrencyParams(waves=5, peer_waves=2)


@dataclass
class Wave:
    tool: str
    level: int
    sent: int
    acknowledged: int  # exit code 0
    saved: int
    duplicates: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    stored: int | None = None  # llm: rounds stored at all, in or off the conversation


@dataclass
class ConcurrencyResults:
    params: ConcurrencyParams
    waves: list[Wave] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def _launch(argvs: list[list[str]], env: dict) -> tuple[list[int], list[str], float]:
    """Start them all, then wait for all (bounded); exit codes and a few error lines."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(a, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for a in argvs]
    deadline = time.monotonic() + TIMEOUT
    codes, errors = [], []
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            errors.append("timed out")
        codes.append(p.returncode)
        if p.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            errors.append(f"exit {p.returncode}: {(lines[-1] if lines else '')[:160]}")
        elif ANSWER_MARK not in out.decode(errors="replace"):
            errors.append("exit 0 without the answer on stdout")
    return codes, errors, time.perf_counter() - t0


def _messages(tool: str, wave: int, n: int) -> list[str]:
    return [f"{tool}-wave-{wave}-msg-{i:02d}" for i in range(n)]


def run(params: ConcurrencyParams, work: Path, server: InstantServer, bai: Tool, llm: Tool | None,
        sgpt: Tool | None, log: Log) -> ConcurrencyResults:
    res = ConcurrencyResults(params)
    res.labels["bai"] = f"bai `deployment chat {CHAT_DEP} MSG --no-stream` ({bai.name})"
    pool = fx.texts(256, 500)
    home = work / "home" / "bai"
    home.parent.mkdir(parents=True)
    prepare_bai_home(home, pool, server, bai)
    env = bai_env(work / "home", home)
    store = Store(home)
    wave_no = 0
    for level in params.levels:
        for _ in range(params.waves):
            wave_no += 1
            log(f"concurrency: {level} bai processes at once (wave {wave_no})")
            msgs = _messages("bai", wave_no, level)
            before = store.rounds(CHAT_DEP)[-1].seq
            codes, errors, secs = _launch(
                [[bai.exe("bai"), "deployment", "chat", CHAT_DEP, m, "--no-stream"] for m in msgs], env)
            rounds = store.rounds(CHAT_DEP)
            users = [r.user for r in rounds]
            saved = sum(1 for m in msgs if m in users)
            dups = sum(max(0, users.count(m) - 1) for m in msgs)
            if rounds[-1].seq - before != sum(1 for c in codes if c == 0):
                errors.append(f"seq went from {before} to {rounds[-1].seq} for {sum(1 for c in codes if c == 0)} acknowledged rounds")
            res.waves.append(Wave("bai", level, level, codes.count(0), saved, dups, secs, errors))
    if llm is not None:
        _llm_waves(res, params, work, server, llm, log)
    if sgpt is not None:
        _sgpt_waves(res, params, work, server, sgpt, log)
    return res


def _llm_waves(res: ConcurrencyResults, params: ConcurrencyParams, work: Path, server: InstantServer, llm: Tool,
               log: Log) -> None:
    res.labels["llm"] = f"llm {llm.version} `llm -c --no-stream MSG` (SQLite logs.db)"
    wave_no = 0
    for level in params.peer_levels:
        for _ in range(params.peer_waves):
            wave_no += 1
            home = work / f"llm-wave-{wave_no}"
            home.mkdir()
            env = llm_env(llm, home, server.base_url, MODEL)
            r = subprocess.run([llm.exe("llm"), "-m", "bench", "--no-stream", "seed"], env=env, capture_output=True,
                               timeout=TIMEOUT, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                res.missing["llm"] = f"llm could not talk to the instant server: {r.stderr.decode(errors='replace')[-200:]}"
                return
            db = home / "llm" / "logs.db"
            log(f"concurrency: {level} llm processes at once (wave {wave_no})")
            msgs = _messages("llm", wave_no, level)
            codes, errors, secs = _launch([[llm.exe("llm"), "-c", "--no-stream", m] for m in msgs], env)
            stored, in_chain = _llm_saved(db)
            saved = sum(1 for m in msgs if m in in_chain)
            dups = sum(max(0, in_chain.count(m) - 1) for m in msgs)
            res.waves.append(Wave("llm", level, level, codes.count(0), saved, dups, secs, errors,
                                  stored=sum(1 for m in msgs if m in stored)))
            shutil.rmtree(home, ignore_errors=True)


def _llm_saved(db: Path) -> tuple[list[str], list[str]]:
    """User prompts stored at all, and those in the conversation `llm -c` continues.

    llm 0.36 keeps content-addressed messages chained by parent hash, a thread pointing at its
    tip, and the text in `parts`; older versions a `responses` table with a conversation_id."""
    tables = {n for (n,) in _sqlite_all(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if {"threads", "messages", "parts"} <= tables:
        text = {h: t for h, t in _sqlite_all(db, "SELECT message_hash, text FROM parts WHERE type = 'text'")}
        parent = {h: (p, r) for h, p, r in _sqlite_all(db, "SELECT hash, parent_hash, role FROM messages")}
        stored = [text.get(h, "") for h, (_, r) in parent.items() if r == "user"]
        best: list[str] = []
        for (tip,) in _sqlite_all(db, "SELECT tip_message_hash FROM threads"):
            chain, h, steps = [], tip, 0
            while h in parent and steps < 100_000:
                p, r = parent[h]
                if r == "user":
                    chain.append(text.get(h, ""))
                h, steps = p, steps + 1
            best = chain if len(chain) > len(best) else best
        return stored, best
    rows = _sqlite_all(db, "SELECT prompt, conversation_id FROM responses")
    stored = [p for p, _ in rows]
    last = rows[-1][1] if rows else None
    return stored, [p for p, c in rows if c == last]


def _sqlite_all(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _sgpt_waves(res: ConcurrencyResults, params: ConcurrencyParams, work: Path, server: InstantServer, sgpt: Tool,
                log: Log) -> None:
    from ._process_bench import _sgpt_flags

    res.labels["sgpt"] = f"shell-gpt {sgpt.version} `sgpt --chat bench MSG` (one JSON file per chat)"
    wave_no = 0
    for level in params.peer_levels:
        for _ in range(params.peer_waves):
            wave_no += 1
            home = work / f"sgpt-wave-{wave_no}"
            home.mkdir()
            env = sgpt_env(sgpt, home, server.base_url, MODEL)
            flags = _sgpt_flags(sgpt, env)
            r = subprocess.run([sgpt.exe("sgpt"), "--chat", "bench", *flags, "seed"], env=env, capture_output=True,
                               timeout=TIMEOUT, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                res.missing["sgpt"] = f"sgpt could not talk to the instant server: {r.stderr.decode(errors='replace')[-200:]}"
                return
            log(f"concurrency: {level} sgpt processes at once (wave {wave_no})")
            msgs = _messages("sgpt", wave_no, level)
            codes, errors, secs = _launch([[sgpt.exe("sgpt"), "--chat", "bench", *flags, m] for m in msgs], env)
            try:
                saved_msgs = [m.get("content") for m in json.loads((home / "chat_cache" / "bench").read_text())
                              if isinstance(m, dict) and m.get("role") == "user"]
            except (OSError, ValueError) as e:
                saved_msgs = []
                errors.append(f"its chat file is unreadable after the wave: {type(e).__name__}: {e}")
            saved = sum(1 for m in msgs if m in saved_msgs)
            dups = sum(max(0, saved_msgs.count(m) - 1) for m in msgs)
            res.waves.append(Wave("sgpt", level, level, codes.count(0), saved, dups, secs, errors))
            shutil.rmtree(home, ignore_errors=True)
