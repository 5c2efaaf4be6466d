"""An interrupted append leaves a torn tail: cut anywhere, zero-filled or garbage, it is
truncated back to the last good record, and every earlier round survives (P1, P2, P3)."""

import os

import pytest

from eventlog._events import RoundEvent, encode_line
from .checks import D1, assert_log_chain_valid, kept_copies, log_path, pairs, visible

TEXTS = ["plain", "new\nline", "sep\u2028\u2029", "nul\x00", "astral \U0001F600"]


def _filled(make_store, n=3):
    store = make_store()
    for i in range(n):
        store.record_round(D1, f"q{i} {TEXTS[i % len(TEXTS)]}", f"a{i} {TEXTS[(i + 1) % len(TEXTS)]}")
    return store


def _torn_record(seq: int, text: str) -> bytes:
    return encode_line(RoundEvent(v=1, seq=seq, deployment=D1, ts="2026-01-01T00:00:00.000+00:00", user=text, assistant=text))


@pytest.mark.parametrize("text", TEXTS)
def test_torn_tail_at_every_byte_offset(make_store, root, text):
    store = _filled(make_store)
    good = log_path(root, D1).read_bytes()
    good_projection = (root / "history.json").read_bytes()
    expected = pairs(store.rounds(D1))
    record = _torn_record(4, text)
    for cut in range(len(record)):  # every strict prefix, including the record minus its newline
        log_path(root, D1).write_bytes(good + record[:cut])
        assert pairs(visible(root, D1)) == expected, cut  # readers ignore the tail
        store.record_round(D1, "next", "answer")  # the writer truncates it, then appends
        assert pairs(store.rounds(D1)) == expected + [("next", "answer")], cut
        assert_log_chain_valid(root, D1)
        assert [e.seq for e in store.rounds(D1)][-1] == 4
        log_path(root, D1).write_bytes(good)
        (root / "history.json").write_bytes(good_projection)


@pytest.mark.parametrize(
    "tail",
    [b"\x00" * 700, b"\x00" * 50 + b"\n", b"garbage without newline", b"garbage\n", b'{"type":"round"', b"\xff\xfe\n\x00"],
    ids=["zeros", "zeros-newline", "garbage", "garbage-line", "json-prefix", "binary"],
)
def test_zero_filled_and_garbage_tails(make_store, root, tail, warnings):
    store = _filled(make_store)
    expected = pairs(store.rounds(D1))
    with open(log_path(root, D1), "ab") as f:
        f.write(tail)
    assert pairs(visible(root, D1)) == expected
    store.compact(D1)
    assert_log_chain_valid(root, D1)
    assert pairs(store.rounds(D1)) == expected
    assert not warnings.matching("damaged"), warnings  # a torn tail is the normal crash artifact


def test_several_bad_lines_at_the_tail_are_kept_aside(make_store, root, warnings):
    # More than one complete bad line cannot be one interrupted append: keep the bytes, warn.
    store = _filled(make_store)
    expected = pairs(store.rounds(D1))
    with open(log_path(root, D1), "ab") as f:
        f.write(b"bad one\nbad two\n")
    store.record_round(D1, "q", "a")
    assert pairs(store.rounds(D1)) == expected + [("q", "a")]
    assert warnings.matching("damaged")
    kept = kept_copies(root, f"{D1}.jsonl")
    assert len(kept) == 1 and b"bad two" in kept[0].read_bytes()


def test_a_first_record_torn_leaves_an_empty_history(make_store, root):
    store = make_store()
    record = _torn_record(1, "first")
    os.makedirs(log_path(root, D1).parent, exist_ok=True)
    for cut in range(0, len(record), 7):
        log_path(root, D1).write_bytes(record[:cut])
        assert visible(root, D1) == []
        store.record_round(D1, "q", "a")
        assert [(r.seq, r.user) for r in store.rounds(D1)] == [(1, "q")]
        log_path(root, D1).unlink()
        (root / "history.json").unlink()
