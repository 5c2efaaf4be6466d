"""The byte cap holds in history.json too, not only in the log (P8).

For rounds bai records itself the log line is the larger form (it carries the 36-character
deployment id), so the log's budget always bites first. history.json's budget matters for rounds
whose time stamps bai must write out in full there: rounds merged from a history.json written by
another tool whose user messages have no `created_at`, or whose `created_at` is not a time. Their
entry in history.json grows by up to ~30 bytes a round over their log lines, and past about ten
such rounds it would exceed the cap if only the log's budget were counted.
"""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog import Caps, Store
from eventlog._caps import _BASE_ALLOWANCE, within_caps
from eventlog._events import BaseEvent, RoundEvent, encode_line
from eventlog._projection import messages_of_round
from tests.store.checks import assert_within_caps

from .conftest import D


def entry_bytes(root, deployment: str) -> int:
    """The deployment's entry in history.json as it is written there (compact JSON)."""
    doc = msgspec.json.decode((root / "history.json").read_bytes())
    return len(msgspec.json.encode(doc["deployments"].get(deployment, [])))


def foreign_history(rounds: int) -> dict:
    """history.json as a tool other than bai might leave it: no "version", user messages without
    created_at, an assistant created_at that is no time stamp."""
    messages = []
    for i in range(rounds):
        messages += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}", "created_at": "x"}]
    return {"deployments": {D: messages}}


@pytest.mark.parametrize("cap", [3000, 5000, 8000])
def test_history_json_entry_stays_within_the_byte_cap_for_merged_rounds(tmp_path, cap):
    root = tmp_path / "store"
    root.mkdir()
    (root / "history.json").write_text(json.dumps(foreign_history(50)))
    caps = Caps(messages=1000, bytes=cap)
    store = Store(root, caps=caps, warn=lambda m: None, refresh_share=0)
    store.record_round(D, "new question", "new answer")  # merges the foreign rounds, then appends
    kept = store.rounds(D)
    assert kept[-1].user == "new question" and len(kept) >= 10  # the merged rounds are there, in part
    assert_within_caps(root, D, caps)  # the log file and the history.json entry, each at most `cap`
    assert entry_bytes(root, D) <= cap
    # ... and the rounds the cap dropped were the oldest, the rest in order.
    first = int(kept[0].user[1:])
    assert [r.user for r in kept] == [f"q{i}" for i in range(first, 50)] + ["new question"]


# -- within_caps itself: its result's invariants, on any rounds -----------------------------------

STAMPS = st.sampled_from(["2026-01-01T00:00:00.000+00:00", "2026-01-01T00:00:00.123456", "20260101T00Z", "x"])
# A few texts, not st.text(): long lists of rounds must stay cheap for hypothesis to draw.
TEXTS = st.sampled_from(["", "q", "a question of some length", "ünïcödé \U0001F600", 'quote " and \\', "x" * 300])


@st.composite
def round_lists(draw) -> list[RoundEvent]:
    """Rounds as bai records them, as merged from another tool's file (no user created_at, an
    assistant time that is no time stamp: longer in history.json than in the log), or a mix."""
    n = draw(st.integers(0, 80) | st.integers(30, 80))  # often many: the files' sizes drift apart per round
    start = draw(st.integers(1, 10**6))
    style = draw(st.sampled_from(["bai", "foreign", "mixed"]))
    rounds = []
    for i in range(n):
        if style == "bai" or (style == "mixed" and draw(st.booleans())):
            ts = draw(STAMPS)
            user_at = draw(st.none() | STAMPS) if style == "mixed" else ts
        else:
            ts, user_at = "x", None
        rounds.append(RoundEvent(v=1, seq=start + i, deployment=D, ts=ts, user=draw(TEXTS),
                                 assistant=draw(TEXTS), user_at=user_at))
    return rounds


def log_size(rounds: list[RoundEvent]) -> int:
    """The log the writer would leave for exactly these rounds: a base, then the rounds."""
    if not rounds:
        return 0
    base = encode_line(BaseEvent(v=1, seq=rounds[0].seq - 1, deployment=D, ts="2026-01-01T00:00:00.000+00:00"))
    return len(base) + sum(len(encode_line(r)) for r in rounds)


def projection_size(rounds: list[RoundEvent]) -> int:
    return len(msgspec.json.encode([m for r in rounds for m in messages_of_round(r)]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), round_lists(), st.integers(0, 120) | st.just(1000))
def test_within_caps_keeps_the_newest_rounds_that_fit_both_files(data, rounds, messages):
    # A byte cap around the rounds' own sizes, where keeping some but not all is decided; often
    # between the log's size and history.json's, where only one of the two budgets binds.
    low, high = sorted((log_size(rounds), projection_size(rounds)))
    max_bytes = data.draw(st.integers(0, high + 300) | st.integers(max(low - 300, 0), high + _BASE_ALLOWANCE))
    caps = Caps(messages=messages, bytes=max_bytes)
    kept = within_caps(rounds, caps)
    assert kept == rounds[len(rounds) - len(kept):]  # a suffix: the newest, oldest first
    assert 2 * len(kept) <= messages
    if kept:
        assert log_size(kept) <= max_bytes
        assert projection_size(kept) <= max_bytes
    elif rounds and messages >= 2:
        # Nothing kept only when the newest round alone would not fit.
        newest = rounds[-1:]
        assert len(encode_line(newest[0])) + _BASE_ALLOWANCE > max_bytes or projection_size(newest) + 3 > max_bytes
    # The fast path (sized from the log file) never keeps more than the rounds' own sizes allow.
    if rounds:
        assert within_caps(rounds, caps, log_bytes=log_size(rounds)) == kept
