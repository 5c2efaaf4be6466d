"""Checks of the store's guarantees (DESIGN.md P1-P12) shared by the store tests."""

from __future__ import annotations

from pathlib import Path

import msgspec

from eventlog import Caps, Store
from eventlog._events import BaseEvent, RoundEvent
from eventlog._scan import scan_stream


def log_path(root: Path, deployment: str) -> Path:
    return Path(root) / "logs" / f"{deployment}.jsonl"


def log_events(root: Path, deployment: str):
    """The valid chain of the deployment's log, read the way the store reads it."""
    p = log_path(root, deployment)
    data = p.read_bytes() if p.exists() else b""
    return scan_stream(data, deployment)


def visible(root: Path, deployment: str, caps: Caps = Caps(), warn=lambda m: None) -> list[RoundEvent]:
    return Store(root, caps=caps, warn=warn).rounds(deployment)


def pairs(rounds: list[RoundEvent]) -> list[tuple[str, str]]:
    return [(r.user, r.assistant) for r in rounds]


def assert_log_chain_valid(root: Path, deployment: str, allow_torn_tail: bool = False) -> None:
    """P2/P4: every line of the log is a valid, chained record (no torn tail left behind,
    unless no writer has touched the stream since the tear)."""
    scan = log_events(root, deployment)
    assert not scan.damaged, scan
    assert allow_torn_tail or scan.tail_start is None, f"unrecovered tail at byte {scan.tail_start}"
    seqs = [e.seq for e in scan.chain]
    assert seqs == sorted(set(seqs)), seqs
    for a, b in zip(seqs, seqs[1:]):
        assert b == a + 1, seqs
    for e in scan.chain[1:]:
        assert not isinstance(e, BaseEvent), "a base may only open the log"


def assert_within_caps(root: Path, deployment: str, caps: Caps) -> None:
    """P8: the log file and the history.json entry each hold at most the cap."""
    p = log_path(root, deployment)
    if p.exists():
        assert p.stat().st_size <= caps.bytes, (p.stat().st_size, caps.bytes)
        rounds = [e for e in log_events(root, deployment).chain if isinstance(e, RoundEvent)]
        assert 2 * len(rounds) <= caps.messages
    proj = Path(root) / "history.json"
    if proj.exists():
        doc = msgspec.json.decode(proj.read_bytes())
        entry = doc.get("deployments", {}).get(deployment, [])
        assert len(entry) <= caps.messages
        assert len(msgspec.json.encode(entry)) <= caps.bytes


def assert_projection_matches(root: Path, deployment: str, expected: list[tuple[str, str]]) -> None:
    """P7: history.json holds exactly the visible rounds (after a writer ran)."""
    doc = msgspec.json.decode((Path(root) / "history.json").read_bytes())
    entry = doc["deployments"].get(deployment, [])
    got = [(entry[i]["content"], entry[i + 1]["content"]) for i in range(0, len(entry), 2)]
    assert [m["role"] for m in entry] == ["user", "assistant"] * (len(entry) // 2)
    assert got == expected
