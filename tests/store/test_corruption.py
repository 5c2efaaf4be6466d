"""Damage a crash cannot cause: the valid prefix is kept, the original bytes are kept aside,
a warning is given, and a bad record is never skipped over (a skipped clear would bring
cleared rounds back) unless the projection's checkpoint covers it; rounds bai remembers
removing (exported.json) never come back through damage."""

import os

import pytest

from eventlog._events import ClearEvent, encode_line
from .checks import D1, D2, assert_log_chain_valid, assert_projection_matches, kept_copies, log_events, log_path, pairs, visible


def _quarantined(root, deployment=D1):
    return kept_copies(root, f"{deployment}.jsonl")


def _clear_line(seq, deployment=D1):
    return encode_line(ClearEvent(v=1, seq=seq, deployment=deployment, ts="2026-01-01T00:00:00.000+00:00"))


def _log_with_uncompacted_clear(make_store, root):
    """Rounds 1-2, a clear (3) and round 4 in the log, as if compaction had not run yet."""
    store = make_store()
    store.record_round(D1, "old1", "a")
    store.record_round(D1, "old2", "a")
    with open(log_path(root, D1), "ab") as f:
        f.write(_clear_line(3))
    store.record_round(D1, "new", "a")  # seq 4; the writer now compacts the stale clear away
    return store


def _corrupt_clear(data: bytes) -> bytes:
    i = data.index(b'"type":"clear"')
    return data[:i] + b'"type":"clXar"' + data[i + 14 :]


@pytest.mark.parametrize("dep", [D1, "named"])
@pytest.mark.parametrize("projection", ["fresh", "missing", "stale"])
def test_corrupt_clear_never_resurrects_cleared_rounds(make_store, root, warnings, projection, dep):
    """P5 through damage: an uncompacted log whose clear record went bad (a bad sector, an old
    copy put back) must not show the rounds the clear removed, whatever state history.json is
    in (current, deleted, or from before the clear) and whether or not the deployment is in it."""
    store = make_store()
    store.record_round(dep, "old1", "a")
    store.record_round(dep, "old2", "a")
    stale = (root / "history.json").read_bytes() if (root / "history.json").exists() else None
    # The state a crash between the tombstone and compaction leaves, plus a later round.
    log = log_path(root, dep).read_bytes() + _clear_line(3, dep)
    log_path(root, dep).write_bytes(log)
    store.record_round(dep, "new", "a")
    assert pairs(store.rounds(dep)) == [("new", "a")]
    assert b'"type":"clear"' not in log_path(root, dep).read_bytes()  # compacted into a base
    # Now write the uncompacted log back with the clear damaged (what a bad disk sector does).
    log_path(root, dep).write_bytes(_corrupt_clear(log + log_path(root, dep).read_bytes().splitlines(True)[-1]))
    if projection == "missing" and (root / "history.json").exists():
        (root / "history.json").unlink()
    elif projection == "stale" and stale is not None:
        (root / "history.json").write_bytes(stale)
    seen = pairs(visible(root, dep, warn=warnings))
    assert ("old1", "a") not in seen and ("old2", "a") not in seen, (projection, seen)
    covered = projection == "fresh" and dep == D1  # history.json holds the state past the damage
    if covered:
        assert seen == [("new", "a")]  # nothing lost
    store.record_round(dep, "after", "a")
    after = pairs(store.rounds(dep))
    assert ("old1", "a") not in after and ("old2", "a") not in after
    if covered:
        assert after == [("new", "a"), ("after", "a")]
    else:
        # Nothing says what the bad record was: the records after it are kept aside, never
        # applied past it.
        assert after == [("after", "a")]
    assert warnings.matching("damaged")
    assert len(_quarantined(root, dep)) == 1
    assert b'"type":"clXar"' in _quarantined(root, dep)[0].read_bytes()
    assert_log_chain_valid(root, dep)


def test_acknowledged_clear_then_corruption_anywhere_resurrects_nothing(make_store, root, warnings):
    store = make_store()
    for i in range(4):
        store.record_round(D1, f"old{i}", "a")
    store.clear(D1)
    store.record_round(D1, "new", "a")
    data = log_path(root, D1).read_bytes()
    for i in range(len(data)):  # flip each byte in turn: no view may ever show an old round
        damaged = bytearray(data)
        damaged[i] ^= 0x20
        log_path(root, D1).write_bytes(bytes(damaged))
        seen = pairs(visible(root, D1))
        assert all(not u.startswith("old") for u, _ in seen), i
    log_path(root, D1).write_bytes(data)


def test_junk_line_between_chained_records_is_removed_and_kept_aside(make_store, root, warnings):
    store = make_store()
    store.record_round(D1, "q1", "a1")
    store.record_round(D1, "q2", "a2")
    lines = log_path(root, D1).read_bytes().splitlines(True)
    log_path(root, D1).write_bytes(lines[0] + b"this is not a record\n" + lines[1])
    assert pairs(visible(root, D1)) == [("q1", "a1"), ("q2", "a2")]  # the seqs prove nothing is missing
    store.record_round(D1, "q3", "a3")
    assert pairs(store.rounds(D1)) == [("q1", "a1"), ("q2", "a2"), ("q3", "a3")]
    assert_log_chain_valid(root, D1)
    assert len(_quarantined(root)) == 1 and warnings.matching("damaged")


def test_gap_without_checkpoint_keeps_prefix_and_quarantines_rest(make_store, root, warnings):
    store = make_store()
    for i in range(4):
        store.record_round(D1, f"q{i}", "a")
    lines = log_path(root, D1).read_bytes().splitlines(True)
    log_path(root, D1).write_bytes(lines[0] + lines[1] + lines[3])  # record 3 is gone
    (root / "history.json").unlink()
    assert pairs(visible(root, D1)) == [("q0", "a"), ("q1", "a")]
    store.compact()
    assert pairs(store.rounds(D1)) == [("q0", "a"), ("q1", "a")]
    assert b"q3" in _quarantined(root)[0].read_bytes()
    assert warnings.matching("could not be placed")
    assert_projection_matches(root, D1, [("q0", "a"), ("q1", "a")])


def test_gap_covered_by_checkpoint_loses_nothing(make_store, root):
    store = make_store()
    for i in range(4):
        store.record_round(D1, f"q{i}", "a")
    lines = log_path(root, D1).read_bytes().splitlines(True)
    log_path(root, D1).write_bytes(lines[0] + lines[1] + lines[3])
    expected = [(f"q{i}", "a") for i in range(4)]
    assert pairs(visible(root, D1)) == expected
    store.record_round(D1, "q4", "a")
    assert pairs(store.rounds(D1)) == expected + [("q4", "a")]
    assert_log_chain_valid(root, D1)


def test_deleted_log_is_an_empty_history_everywhere(make_store, root, warnings):
    """The log is the truth: a log deleted by hand is a deployment with no history, for bai and,
    after the next write, in history.json; the deleted rounds do not come back from there."""
    store = make_store()
    store.record_round(D1, "q", "a")
    log_path(root, D1).unlink()
    assert visible(root, D1) == []
    store.record_round(D1, "q2", "a2")
    assert pairs(store.rounds(D1)) == [("q2", "a2")]
    assert_projection_matches(root, D1, [("q2", "a2")])


def test_record_of_another_deployment_is_damage(make_store, root, warnings):
    store = make_store()
    store.record_round(D1, "q", "a")
    store.record_round(D2, "other", "a")
    foreign = log_path(root, D2).read_bytes().replace(b"other", b"otheR")  # crc now wrong too
    with open(log_path(root, D1), "ab") as f:
        f.write(log_path(root, D2).read_bytes() + foreign)
    assert pairs(visible(root, D1, warn=warnings)) == [("q", "a")]
    assert warnings.matching(f"history log of {D1} is damaged")  # not taken as a torn tail: two whole lines
    store.record_round(D1, "q2", "a2")
    assert pairs(store.rounds(D1)) == [("q", "a"), ("q2", "a2")]
    assert b"other" in _quarantined(root)[0].read_bytes()  # kept aside, never applied
    assert pairs(store.rounds(D2)) == [("other", "a")]


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"deployments": 5}', b'{"version": 7, "last_seq": {}, "deployments": {}}',
     b'{"deployments": {"%s": [{"role": 1}]}}' % D1.encode(),
     b"\x00" * 64],
    ids=["empty", "truncated", "list", "wrong-type", "unknown-version", "bad-message", "zeros"],
)
def test_corrupt_or_mismatched_projection_is_a_warning_and_rebuilt(make_store, root, warnings, content):
    store = make_store()
    store.record_round(D1, "q1", "a1")
    (root / "history.json").write_bytes(content)
    assert pairs(visible(root, D1, warn=warnings)) == [("q1", "a1")]  # the log is the truth
    assert warnings, "a corrupt history.json must be reported"
    assert all("\n" not in w for w in warnings)
    store.record_round(D1, "q2", "a2")
    assert_projection_matches(root, D1, [("q1", "a1"), ("q2", "a2")])
    if content:
        copies = kept_copies(root, "history.json")
        assert copies and copies[0].read_bytes() == content  # not lost either


def test_stale_projection_is_detected_and_rebuilt(make_store, root):
    store = make_store()
    store.record_round(D1, "q1", "a1")
    store.record_round(D2, "x", "y")
    stale = (root / "history.json").read_bytes()
    store.record_round(D1, "q2", "a2")
    (root / "history.json").write_bytes(stale)  # an old copy put back: not the file bai wrote last
    os.utime(root / "history.json", ns=(1, 1))
    assert pairs(visible(root, D1)) == [("q1", "a1"), ("q2", "a2")]  # the log is the truth
    store.record_round(D2, "x2", "y2")  # a writer to another deployment repairs d1's entry
    assert_projection_matches(root, D1, [("q1", "a1"), ("q2", "a2")])


def test_newer_format_is_refused_by_writers_and_read_by_readers(make_store, root, warnings):
    import msgspec, zlib
    from eventlog import StoreVersionError

    store = make_store()
    store.record_round(D1, "q", "a")
    body = msgspec.json.encode({"type": "round", "v": 2, "seq": 2, "deployment": D1, "ts": "t", "user": "u", "assistant": "a"})
    with open(log_path(root, D1), "ab") as f:
        f.write(b"%s,\"crc\":%d}\n" % (body[:-1], zlib.crc32(body)))
    assert pairs(visible(root, D1, warn=warnings)) == [("q", "a")]
    assert warnings.matching("newer bai")
    with pytest.raises(StoreVersionError, match="upgrade bai"):
        store.record_round(D1, "q2", "a2")
    assert log_events(root, D1).newer_version == 2  # untouched
