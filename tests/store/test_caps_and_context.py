"""FIFO truncation under both caps (P8), whole-round replay of the last K messages, listing."""

import pytest

import msgspec

from eventlog import Caps
from eventlog._caps import _BASE_ALLOWANCE
from eventlog._events import RoundEvent, encode_line
from eventlog._projection import projected_size
from .checks import (D1, D2, assert_log_chain_valid, assert_projection_matches, assert_within_caps, log_events,
                     log_path, pairs)


def projection_bytes(root, deployment: str) -> int:
    """The deployment's entry in history.json, in bytes as written (compact JSON, UTF-8)."""
    doc = msgspec.json.decode((root / "history.json").read_bytes())
    return len(msgspec.json.encode(doc["deployments"].get(deployment, [])))


@pytest.mark.parametrize("cap", [2, 3, 4, 7, 20])
def test_message_cap_keeps_the_newest_whole_rounds(make_store, root, cap):
    store = make_store(Caps(messages=cap))
    for i in range(30):
        store.record_round(D1, f"q{i}", f"a{i}")
        assert_within_caps(root, D1, Caps(messages=cap))
    kept = cap // 2
    expected = [(f"q{i}", f"a{i}") for i in range(30 - kept, 30)]
    assert pairs(store.rounds(D1)) == expected
    assert [r.seq for r in store.rounds(D1)] == list(range(31 - kept, 31))  # seqs never renumbered
    assert_log_chain_valid(root, D1)
    assert_projection_matches(root, D1, expected)


def test_byte_cap_drops_oldest_first(make_store, root):
    caps = Caps(messages=1000, bytes=4096)
    store = make_store(caps)
    for i in range(60):
        store.record_round(D1, f"q{i} " + "x" * 200, f"a{i} " + "y" * 200)
        assert_within_caps(root, D1, caps)
    rounds = store.rounds(D1)
    assert 3 <= len(rounds) < 10
    assert rounds[-1].user.startswith("q59 ")
    assert [r.seq for r in rounds] == list(range(61 - len(rounds), 61))


def test_multibyte_text_counts_in_bytes(make_store, root):
    # 100 four-byte and 100 two-byte characters a round: 600 bytes of text in 200 characters.
    caps = Caps(messages=1000, bytes=3000)
    store = make_store(caps)
    for i in range(20):
        store.record_round(D1, "\U0001F600" * 100, "\u00e9" * 100)
        assert_within_caps(root, D1, caps)  # upper bound: counted in characters, more would be kept
    # Lower bound: as many rounds as fit in UTF-8 bytes are kept, not fewer (counted as escapes
    # like \ud83d\ude00, or as UCS-4, far fewer would): one more would break a cap.
    kept = store.rounds(D1)
    assert [r.seq for r in kept] == list(range(21 - len(kept), 21))
    lines = [e for e in log_events(root, D1).chain if isinstance(e, RoundEvent)]
    assert len(lines) == len(kept)
    one_more = kept[0]  # an older round is the same size, give or take a digit of its seq
    log_after = sum(len(encode_line(r)) for r in lines) + len(encode_line(one_more)) + _BASE_ALLOWANCE
    entry_after = projection_bytes(root, D1) + projected_size(one_more)
    assert log_after > caps.bytes or entry_after > caps.bytes, (len(kept), log_after, entry_after)


def test_round_larger_than_the_caps_is_not_written_and_history_stays(make_store, root):
    store = make_store(Caps(bytes=1000))
    store.record_round(D1, "small", "ok")
    before = log_path(root, D1).read_bytes()
    recorded = store.record_round(D1, "z" * 5000, "big")
    assert (recorded.kept, recorded.seq, recorded.dropped_rounds) == (False, 0, 0)
    assert pairs(store.rounds(D1)) == [("small", "ok")]  # making room would have dropped everything
    assert log_path(root, D1).read_bytes() == before
    assert store.record_round(D1, "next", "ok").seq == 2


def test_a_message_cap_below_one_round_keeps_nothing(make_store, root):
    store = make_store(Caps(messages=1))
    assert not store.record_round(D1, "q", "a").kept
    assert store.rounds(D1) == [] and not log_path(root, D1).exists()


def test_recorded_reports_dropped_rounds(make_store):
    store = make_store(Caps(messages=4))
    assert store.record_round(D1, "1", "a").dropped_rounds == 0
    assert store.record_round(D1, "2", "a").dropped_rounds == 0
    r = store.record_round(D1, "3", "a")
    assert r.kept and r.dropped_rounds == 1


def test_lowering_a_cap_applies_on_compact(make_store, root):
    make_store(Caps(messages=100)).record_round(D1, "0", "a")
    big = make_store(Caps(messages=100))
    for i in range(1, 10):
        big.record_round(D1, str(i), "a")
    small = make_store(Caps(messages=4))
    assert len(small.rounds(D1)) == 2  # readers apply the cap at once
    small.compact()
    assert_within_caps(root, D1, Caps(messages=4))


def test_caps_are_per_deployment(make_store, root):
    policy = {"tiny": Caps(messages=2), "big": Caps(messages=50)}
    store = make_store(lambda d: policy.get(d, Caps()))
    for i in range(10):
        store.record_round("tiny", str(i), "a")
        store.record_round("big", str(i), "a")
    assert len(store.rounds("tiny")) == 1 and len(store.rounds("big")) == 10


@pytest.mark.parametrize(
    "limit,expected",
    [(0, []), (1, []), (2, ["q4"]), (3, ["q4"]), (4, ["q3", "q4"]), (5, ["q3", "q4"]), (10, [f"q{i}" for i in range(5)]),
     (1000, [f"q{i}" for i in range(5)])],
)
def test_context_is_the_last_k_messages_in_whole_rounds(make_store, limit, expected):
    store = make_store()
    for i in range(5):
        store.record_round(D1, f"q{i}", f"a{i}")
    context = store.context(D1, limit)
    assert [m["content"] for m in context if m["role"] == "user"] == expected
    assert [m["role"] for m in context] == ["user", "assistant"] * len(expected)  # never starts with assistant
    assert all(set(m) == {"role", "content"} for m in context)  # only role and content go on the wire
    assert len(context) <= limit


@pytest.mark.parametrize("stored", range(0, 9))
def test_context_replays_every_round_there_is_up_to_the_limit(make_store, stored):
    store = make_store()
    for i in range(stored):
        store.record_round(D1, f"q{i}", f"a{i}")
    for limit in (0, 1, 2, 3, 4, 5, 10, 11, 16):
        replayed = store.context(D1, limit)
        assert len(replayed) == 2 * min(stored, limit // 2), (stored, limit)
        assert [m["content"] for m in replayed[::2]] == [f"q{i}" for i in range(stored - len(replayed) // 2, stored)]


def test_context_of_an_unknown_deployment_is_empty(make_store, root):
    assert make_store().context("never-used", 10) == []
    assert not root.exists()  # readers never create anything


def test_negative_limit_is_refused(make_store):
    with pytest.raises(ValueError):
        make_store().context(D1, -1)


def test_listing_counts_messages_bytes_and_times(make_store, root):
    store = make_store()
    store.record_round("b-dep", "q", "a", user_at="2026-01-01T00:00:00.000+00:00")
    store.record_round("b-dep", "q2", "a2")
    store.record_round("a-dep", "q", "a")
    store.record_round("gone", "q", "a")
    store.clear("gone")
    listing = store.deployments()
    assert [d.deployment for d in listing] == ["a-dep", "b-dep"]  # cleared ones are not listed
    b = listing[1]
    assert b.messages == 4 and b.bytes == log_path(root, "b-dep").stat().st_size
    assert b.first_at == "2026-01-01T00:00:00.000+00:00" and b.last_at >= b.first_at


def test_history_messages_carry_metadata(make_store):
    store = make_store()
    store.record_round(D1, "q", "a", model="m1", finish_reason="length", usage={"prompt_tokens": 7}, user_at="2026-01-01T00:00:00.000+00:00")
    user, assistant = store.history(D1)
    assert (user.role, user.content, user.created_at) == ("user", "q", "2026-01-01T00:00:00.000+00:00")
    assert (assistant.role, assistant.model, assistant.finish_reason, assistant.usage) == ("assistant", "m1", "length", {"prompt_tokens": 7})


def test_clear_removes_history_and_keeps_seq_going(make_store, root):
    store = make_store()
    for i in range(3):
        store.record_round(D1, str(i), "a")
    store.record_round(D2, "other", "a")
    assert store.clear(D1) == 6
    assert store.rounds(D1) == [] and pairs(store.rounds(D2)) == [("other", "a")]
    assert store.record_round(D1, "new", "a").seq == 5  # 1-3 rounds, 4 the clear
    assert_log_chain_valid(root, D1)
    assert store.clear("never-used") == 0


def test_clear_all(make_store):
    store = make_store()
    for d in (D1, D2, "d3"):
        store.record_round(d, "q", "a")
    assert store.clear_all() == 6
    assert store.deployments() == []
