"""Damage a crash cannot cause: the valid prefix is kept, the original bytes are quarantined,
a warning is given, and a bad record is never skipped over (a skipped clear would bring
cleared rounds back) unless the projection's checkpoint covers it."""

import os

import pytest

from eventlog._events import ClearEvent, encode_line
from .checks import assert_log_chain_valid, assert_projection_matches, log_events, log_path, pairs, visible


def _quarantined(root):
    return sorted(p for p in os.listdir(root / "logs") if ".corrupt-" in p)


def _clear_line(seq):
    return encode_line(ClearEvent(v=1, seq=seq, deployment="d1", ts="2026-01-01T00:00:00.000+00:00"))


def _log_with_uncompacted_clear(make_store, root):
    """Rounds 1-2, a clear (3) and round 4 in the log, as if compaction had not run yet."""
    store = make_store()
    store.record_round("d1", "old1", "a")
    store.record_round("d1", "old2", "a")
    with open(log_path(root, "d1"), "ab") as f:
        f.write(_clear_line(3))
    store.record_round("d1", "new", "a")  # seq 4; the writer now compacts the stale clear away
    return store


def _corrupt_clear(data: bytes) -> bytes:
    i = data.index(b'"type":"clear"')
    return data[:i] + b'"type":"clXar"' + data[i + 14 :]


@pytest.mark.parametrize("projection", ["fresh", "missing", "stale"])
def test_corrupt_clear_never_resurrects_cleared_rounds(make_store, root, warnings, projection):
    store = make_store()
    store.record_round("d1", "old1", "a")
    store.record_round("d1", "old2", "a")
    stale = (root / "history.json").read_bytes()
    # The state a crash between the tombstone and compaction leaves, plus a later round.
    log = log_path(root, "d1").read_bytes() + _clear_line(3)
    log_path(root, "d1").write_bytes(log)
    store.record_round("d1", "new", "a")
    assert pairs(store.rounds("d1")) == [("new", "a")]
    assert b'"type":"clear"' not in log_path(root, "d1").read_bytes()  # compacted into a base
    # Now write the uncompacted log back with the clear damaged (what a bad disk sector does).
    log_path(root, "d1").write_bytes(_corrupt_clear(log + log_path(root, "d1").read_bytes().splitlines(True)[-1]))
    if projection == "missing":
        (root / "history.json").unlink()
    elif projection == "stale":
        (root / "history.json").write_bytes(stale)
    seen = pairs(visible(root, "d1", warn=warnings))
    assert ("old1", "a") not in seen or projection != "fresh"
    if projection == "fresh":
        assert seen == [("new", "a")]  # the checkpoint covers the damaged record: nothing lost
    store.record_round("d1", "after", "a")
    after = pairs(store.rounds("d1"))
    if projection == "fresh":
        assert after == [("new", "a"), ("after", "a")]
    else:
        # Without a checkpoint the prefix before the bad record is all that can be trusted;
        # the bytes after it are quarantined, never applied past the bad record.
        assert after[-1] == ("after", "a") and ("new", "a") not in after
    assert warnings.matching("damaged")
    assert len(_quarantined(root)) == 1
    assert b'"type":"clXar"' in (root / "logs" / _quarantined(root)[0]).read_bytes()
    assert_log_chain_valid(root, "d1")


def test_acknowledged_clear_then_corruption_anywhere_resurrects_nothing(make_store, root, warnings):
    store = make_store()
    for i in range(4):
        store.record_round("d1", f"old{i}", "a")
    store.clear("d1")
    store.record_round("d1", "new", "a")
    data = log_path(root, "d1").read_bytes()
    for i in range(len(data)):  # flip each byte in turn: no view may ever show an old round
        damaged = bytearray(data)
        damaged[i] ^= 0x20
        log_path(root, "d1").write_bytes(bytes(damaged))
        seen = pairs(visible(root, "d1"))
        assert all(not u.startswith("old") for u, _ in seen), i
    log_path(root, "d1").write_bytes(data)


def test_junk_line_between_chained_records_is_removed_and_kept_aside(make_store, root, warnings):
    store = make_store()
    store.record_round("d1", "q1", "a1")
    store.record_round("d1", "q2", "a2")
    lines = log_path(root, "d1").read_bytes().splitlines(True)
    log_path(root, "d1").write_bytes(lines[0] + b"this is not a record\n" + lines[1])
    assert pairs(visible(root, "d1")) == [("q1", "a1"), ("q2", "a2")]  # the seqs prove nothing is missing
    store.record_round("d1", "q3", "a3")
    assert pairs(store.rounds("d1")) == [("q1", "a1"), ("q2", "a2"), ("q3", "a3")]
    assert_log_chain_valid(root, "d1")
    assert len(_quarantined(root)) == 1 and warnings.matching("damaged")


def test_gap_without_checkpoint_keeps_prefix_and_quarantines_rest(make_store, root, warnings):
    store = make_store()
    for i in range(4):
        store.record_round("d1", f"q{i}", "a")
    lines = log_path(root, "d1").read_bytes().splitlines(True)
    log_path(root, "d1").write_bytes(lines[0] + lines[1] + lines[3])  # record 3 is gone
    (root / "history.json").unlink()
    assert pairs(visible(root, "d1")) == [("q0", "a"), ("q1", "a")]
    store.compact()
    assert pairs(store.rounds("d1")) == [("q0", "a"), ("q1", "a")]
    assert b"q3" in (root / "logs" / _quarantined(root)[0]).read_bytes()
    assert warnings.matching("could not be placed")
    assert_projection_matches(root, "d1", [("q0", "a"), ("q1", "a")])


def test_gap_covered_by_checkpoint_loses_nothing(make_store, root):
    store = make_store()
    for i in range(4):
        store.record_round("d1", f"q{i}", "a")
    lines = log_path(root, "d1").read_bytes().splitlines(True)
    log_path(root, "d1").write_bytes(lines[0] + lines[1] + lines[3])
    expected = [(f"q{i}", "a") for i in range(4)]
    assert pairs(visible(root, "d1")) == expected
    store.record_round("d1", "q4", "a")
    assert pairs(store.rounds("d1")) == expected + [("q4", "a")]
    assert_log_chain_valid(root, "d1")


def test_deleted_log_is_restored_from_the_projection(make_store, root, warnings):
    store = make_store()
    store.record_round("d1", "q", "a")
    log_path(root, "d1").unlink()
    assert pairs(visible(root, "d1")) == [("q", "a")]
    store.record_round("d1", "q2", "a2")
    assert [(r.seq, r.user) for r in store.rounds("d1")] == [(1, "q"), (2, "q2")]  # seq never reused


def test_record_of_another_deployment_is_damage(make_store, root, warnings):
    store = make_store()
    store.record_round("d1", "q", "a")
    store.record_round("d2", "other", "a")
    foreign = log_path(root, "d2").read_bytes().replace(b"other", b"otheR")  # crc now wrong too
    with open(log_path(root, "d1"), "ab") as f:
        f.write(log_path(root, "d2").read_bytes() + foreign)
    assert pairs(visible(root, "d1")) == [("q", "a")]


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"deployments": 5}', b'{"version": 7, "last_seq": {}, "deployments": {}}',
     b'{"version": 1, "deployments": {"d1": [{"role": 1}]}, "last_seq": {"d1": 1}}', b"\x00" * 64],
    ids=["empty", "truncated", "list", "wrong-type", "unknown-version", "bad-message", "zeros"],
)
def test_corrupt_or_mismatched_projection_is_a_warning_and_rebuilt(make_store, root, warnings, content):
    store = make_store()
    store.record_round("d1", "q1", "a1")
    (root / "history.json").write_bytes(content)
    assert pairs(visible(root, "d1", warn=warnings)) == [("q1", "a1")]  # the log is the truth
    assert warnings, "a corrupt history.json must be reported"
    assert all("\n" not in w for w in warnings)
    store.record_round("d1", "q2", "a2")
    assert_projection_matches(root, "d1", [("q1", "a1"), ("q2", "a2")])
    if content:
        copies = [p for p in os.listdir(root) if p.startswith("history.json.corrupt-")]
        assert copies and (root / copies[0]).read_bytes() == content  # not lost either


def test_stale_projection_is_detected_and_rebuilt(make_store, root):
    store = make_store()
    store.record_round("d1", "q1", "a1")
    store.record_round("d2", "x", "y")
    stale = (root / "history.json").read_bytes()
    store.record_round("d1", "q2", "a2")
    (root / "history.json").write_bytes(stale)  # as if the writer died before the refresh
    os.utime(root / "history.json", ns=(1, 1))
    assert pairs(visible(root, "d1")) == [("q1", "a1"), ("q2", "a2")]  # readers merge the log
    store.record_round("d2", "x2", "y2")  # a writer to another deployment repairs d1's entry
    assert_projection_matches(root, "d1", [("q1", "a1"), ("q2", "a2")])


def test_newer_format_is_refused_by_writers_and_read_by_readers(make_store, root, warnings):
    import msgspec, zlib
    from eventlog import StoreVersionError

    store = make_store()
    store.record_round("d1", "q", "a")
    body = msgspec.json.encode({"type": "round", "v": 2, "seq": 2, "deployment": "d1", "ts": "t", "user": "u", "assistant": "a"})
    with open(log_path(root, "d1"), "ab") as f:
        f.write(b"%s,\"crc\":%d}\n" % (body[:-1], zlib.crc32(body)))
    assert pairs(visible(root, "d1", warn=warnings)) == [("q", "a")]
    assert warnings.matching("newer bai")
    with pytest.raises(StoreVersionError, match="upgrade bai"):
        store.record_round("d1", "q2", "a2")
    assert log_events(root, "d1").newer_version == 2  # untouched
