"""A round's optional `reasoning`: kept in bai's log, counted against the caps, never in
history.json; logs written before the field existed read unchanged (no version step)."""

import json

import msgspec
import pytest

from eventlog import Caps
from eventlog._events import RoundEvent, decode_line, encode_line
from eventlog._upcast import CURRENT_VERSION

from . import backend_ai

U = "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"

# A round as bai wrote it before the field existed (version 1, byte for byte, CRC included).
OLD_LINE = (b'{"type":"round","user":"hi","assistant":"hello!","user_at":"2026-12-01T10:00:00.000+00:00",'
            b'"model":"m","finish_reason":"stop","usage":{"prompt_tokens":9},"prompt_chars":2,"v":1,"seq":3,'
            b'"deployment":"dep-1","ts":"2026-12-01T10:00:01.000+00:00","crc":2002147552}')


def _round(**kw):
    return RoundEvent(v=CURRENT_VERSION, seq=1, deployment="d1", ts="2026-01-01T00:00:00.000+00:00",
                      user="q", assistant="a", **kw)


def test_reasoning_round_trips_and_is_encoded_only_when_present():
    event = _round(reasoning="first\nthen \x1b[2J \U0001F600")
    assert decode_line(encode_line(event)[:-1]) == event
    assert b'"reasoning"' not in encode_line(_round())
    assert decode_line(encode_line(_round())[:-1]).reasoning is None


def test_a_log_line_from_before_the_field_reads_unchanged():
    event = decode_line(OLD_LINE)
    assert event is not None and event.reasoning is None
    assert (event.seq, event.user, event.assistant, event.usage) == (3, "hi", "hello!", {"prompt_tokens": 9})
    assert encode_line(event)[:-1] == OLD_LINE  # the same bytes when written again


def test_an_older_bai_reads_the_new_records():
    """The field is no version step: the round shape of bai before it (msgspec ignores a key its
    Struct does not name) decodes a record that has it; a version bump would make it skip them all."""

    class OldRound(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="round", omit_defaults=True):
        v: int
        seq: int
        deployment: str
        ts: str
        user: str
        assistant: str
        user_at: str | None = None
        model: str | None = None
        finish_reason: str | None = None
        usage: dict | None = None
        prompt_chars: int | None = None

    line = encode_line(_round(reasoning="hmm"))
    old = msgspec.json.decode(line[: line.rindex(b',"crc":')] + b"}", type=OldRound)
    assert old.v == 1 and (old.user, old.assistant) == ("q", "a")


def test_the_store_keeps_reasoning_in_the_log_and_out_of_history_json(make_store, root):
    store = make_store()
    store.record_round(U, "q", "the answer", reasoning="thought \udcff about it")  # a lone surrogate: scrubbed
    store.record_round(U, "q2", "answer two")
    rounds = store.rounds(U)
    assert [r.reasoning for r in rounds] == ["thought \ufffd about it", None]
    assert "reasoning" not in (root / "history.json").read_text()
    assert all("reasoning" not in msgspec.structs.asdict(m) for m in store.history(U))  # history.json's shape
    assert [m["content"] for m in backend_ai.load(root)[U]] == ["q", "the answer", "q2", "answer two"]
    assert store.context(U, 10)[1] == {"role": "assistant", "content": "the answer"}  # never replayed
    log = (root / "bai" / "logs" / f"{U}.jsonl").read_text()
    assert json.loads(log.splitlines()[0])["reasoning"] == "thought \ufffd about it"


def test_reasoning_counts_against_the_byte_cap(make_store):
    store = make_store(Caps(bytes=2000))
    assert store.record_round("d1", "q", "a").kept
    assert not store.record_round("d1", "q", "a", reasoning="r" * 4000).kept  # too large with it
    assert [r.reasoning for r in store.rounds("d1")] == [None]
    store.record_round("d1", "q", "a", reasoning="r" * 700)
    store.record_round("d1", "q", "a", reasoning="r" * 700)
    assert [r.reasoning for r in store.rounds("d1")] == ["r" * 700]  # the oldest went to make room


@pytest.mark.parametrize("compact", [False, True])
def test_reasoning_survives_compaction(make_store, compact):
    store = make_store(Caps(messages=4))
    for n in range(4):
        store.record_round("d1", f"q{n}", f"a{n}", reasoning=f"r{n}")
    if compact:
        store.compact("d1")
    assert [r.reasoning for r in store.rounds("d1")] == ["r2", "r3"]
