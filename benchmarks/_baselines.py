"""What a user would pick instead, doing the store's work: keep each deployment's last 100
messages, append one round per turn, build the replay context.

- JsonRewrite: shell-gpt's way (sgpt/handlers/chat_handler.py): one JSON file per chat, read,
  extended, trimmed and rewritten in place with `open("w")` on every turn; no fsync, no lock.
- SqliteLog: llm's way: one SQLite database, one row per round, the connection opened per turn
  (each command is a new process), `synchronous=FULL`; journal "delete" is llm's (sqlite-utils'
  default), "wal" is what a careful user would switch on. The cap is a DELETE in the same
  transaction, so it does the same work as bai's cap.
- BareAppend: the limit: `write` + `fsync` of the same record bytes on an open descriptor.
- BareSameWork: the limit for bai's design: that append, then an atomic replace (tmp file,
  write, fsync, rename, directory fsync) of a file as large as bai's history.json, which bai
  rewrites on every turn. It separates what the design's I/O costs from what its code adds.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path


class JsonRewrite:
    name = "JSON file rewritten per turn, no fsync (shell-gpt's way)"

    def __init__(self, root: Path, cap_messages: int) -> None:
        self.root = root
        self.cap = cap_messages
        root.mkdir(parents=True, exist_ok=True)

    def path(self, dep: str) -> Path:
        return self.root / dep

    def seed(self, dep: str, rounds: list[tuple[str, str]]) -> None:
        msgs = []
        for u, a in rounds:
            msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        with open(self.path(dep), "w") as f:
            json.dump(msgs[-self.cap:], f)

    def append(self, dep: str, user: str, assistant: str) -> None:
        p = self.path(dep)
        msgs = json.loads(p.read_text()) if p.exists() else []
        msgs.append({"role": "user", "content": user})
        msgs.append({"role": "assistant", "content": assistant})
        with open(p, "w") as f:
            json.dump(msgs[-self.cap:], f)

    def context(self, dep: str, limit: int) -> list[dict]:
        p = self.path(dep)
        msgs = json.loads(p.read_text()) if p.exists() else []
        n = (limit // 2) * 2
        return msgs[len(msgs) - n:] if n else []

    def bytes_per_deployment(self, deps: list[str]) -> float:
        return sum(self.path(d).stat().st_size for d in deps) / len(deps)


class SqliteLog:
    def __init__(self, path: Path, cap_messages: int, journal: str) -> None:
        self.path = path
        self.cap_rounds = cap_messages // 2
        self.journal = journal
        self.name = (f"SQLite, journal={journal}, synchronous=FULL"
                     + (" (llm's way)" if journal == "delete" else ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"PRAGMA journal_mode={journal}")
        conn.execute("CREATE TABLE IF NOT EXISTS responses (id INTEGER PRIMARY KEY, deployment TEXT NOT NULL, "
                     "prompt TEXT, response TEXT, model TEXT, datetime_utc TEXT, usage TEXT)")
        conn.execute("CREATE INDEX IF NOT EXISTS responses_dep ON responses (deployment, id)")
        conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def seed(self, dep: str, rounds: list[tuple[str, str]]) -> None:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO responses (deployment, prompt, response, model, datetime_utc, usage) "
                             "VALUES (?, ?, ?, 'bench-model', datetime('now'), '{}')",
                             [(dep, u, a) for u, a in rounds[-self.cap_rounds:]])
            conn.execute("COMMIT")
        finally:
            conn.close()

    def append(self, dep: str, user: str, assistant: str) -> None:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO responses (deployment, prompt, response, model, datetime_utc, usage) "
                         "VALUES (?, ?, ?, 'bench-model', datetime('now'), ?)",
                         (dep, user, assistant, '{"prompt_tokens": 1200, "completion_tokens": 120}'))
            conn.execute("DELETE FROM responses WHERE deployment = ? AND id NOT IN "
                         "(SELECT id FROM responses WHERE deployment = ? ORDER BY id DESC LIMIT ?)",
                         (dep, dep, self.cap_rounds))
            conn.execute("COMMIT")
        finally:
            conn.close()

    def context(self, dep: str, limit: int) -> list[dict]:
        conn = self._connect()
        try:
            rows = conn.execute("SELECT prompt, response FROM responses WHERE deployment = ? "
                                "ORDER BY id DESC LIMIT ?", (dep, limit // 2)).fetchall()
        finally:
            conn.close()
        out: list[dict] = []
        for prompt, response in reversed(rows):
            out += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        return out

    def vacuum(self) -> None:
        conn = self._connect()
        try:
            conn.execute("VACUUM")
        finally:
            conn.close()

    def bytes_per_deployment(self, deps: list[str]) -> float:
        total = 0
        for suffix in ("", "-wal", "-shm", "-journal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total / len(deps)


class BareAppend:
    name = "bare write+fsync of the same record (the limit)"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def append_bytes(self, line: bytes) -> None:
        os.write(self.fd, line)
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class BareSameWork:
    name = "bare write+fsync, then atomic replace of a history.json-sized file (the limit for bai's design)"

    def __init__(self, root: Path, projection_bytes: bytes) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.data = projection_bytes
        self.target = root / "history.json"
        self.fd = os.open(root / "records.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.n = 0

    def append_bytes(self, line: bytes) -> None:
        os.write(self.fd, line)
        os.fsync(self.fd)
        self.n += 1
        tmp = self.root / f".history.json.tmp.{self.n}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(self.data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.target)
        dfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def close(self) -> None:
        os.close(self.fd)
