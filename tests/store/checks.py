"""Checks of the store's guarantees (DESIGN.md P1-P12) shared by the store tests."""

from __future__ import annotations

from pathlib import Path

import msgspec

from eventlog import Caps, Store, is_uuid
from eventlog._events import BaseEvent, RoundEvent
from eventlog._scan import scan_stream

# Deployment ids of Backend.AI's kind (UUIDs): only these are projected into history.json.
D1 = "00000000-0000-4000-8000-0000000000d1"
D2 = "00000000-0000-4000-8000-0000000000d2"


def log_path(root: Path, deployment: str) -> Path:
    return Path(root) / "bai" / "logs" / f"{deployment}.jsonl"


def kept_copies(root: Path, name: str) -> list[Path]:
    """The copies of `name` kept aside (bai/kept), oldest first."""
    kept = Path(root) / "bai" / "kept"
    return sorted(p for p in kept.iterdir() if p.name.startswith(name + ".")) if kept.exists() else []


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
    """P7: history.json holds exactly the visible rounds of a UUID deployment, and nothing of
    any other (Backend.AI would refuse the whole file), once a writer refreshed it."""
    doc = msgspec.json.decode((Path(root) / "history.json").read_bytes())
    if not is_uuid(deployment):
        assert deployment not in doc["deployments"], deployment
        return
    entry = doc["deployments"].get(deployment, [])
    got = [(entry[i]["content"], entry[i + 1]["content"]) for i in range(0, len(entry), 2)]
    assert [m["role"] for m in entry] == ["user", "assistant"] * (len(entry) // 2)
    assert got == expected
