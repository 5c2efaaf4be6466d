"""Records: one line each, CRC-checked, any text survives the round trip; versions upcast."""

import msgspec
import pytest
from hypothesis import given, strategies as st

from eventlog import _upcast
from eventlog._events import (
    BaseEvent, ClearEvent, NewerVersion, RoundEvent, decode_line, encode_line,
)

TRICKY = ["line\nbreak", "sep\u2028and\u2029", "nul\x00byte", "astral \U0001F600 \U00010348", "quote\"\\", "\r\n", ""]


def _round(user="hi", assistant="hello", seq=1, **kw):
    return RoundEvent(v=1, seq=seq, deployment="d1", ts="2026-01-01T00:00:00.000+00:00", user=user, assistant=assistant, **kw)


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_payload_is_one_line_and_round_trips(text):
    line = encode_line(_round(user=text, assistant=text))
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # only b"\n" splits records
    assert decode_line(line[:-1]) == _round(user=text, assistant=text)


@given(st.text(), st.text(), st.integers(1, 2**62), st.none() | st.dictionaries(st.text(max_size=5), st.integers()))
def test_any_round_round_trips(user, assistant, seq, usage):
    event = _round(user, assistant, seq, usage=usage)
    line = encode_line(event)
    assert line.count(b"\n") == 1
    assert decode_line(line[:-1]) == event


def test_every_event_type_round_trips():
    for event in (_round(), ClearEvent(v=1, seq=2, deployment="d1", ts="t"), BaseEvent(v=1, seq=3, deployment="d1", ts="t")):
        assert decode_line(encode_line(event)[:-1]) == event


def test_any_flipped_byte_is_rejected():
    line = encode_line(_round())[:-1]
    for i in range(len(line)):
        damaged = bytearray(line)
        damaged[i] ^= 0x01
        assert decode_line(bytes(damaged)) is None, f"flip at {i} accepted"


def test_crc_is_over_the_record_without_crc():
    import zlib

    line = encode_line(_round())[:-1]
    body, crc = line.rsplit(b',"crc":', 1)
    assert zlib.crc32(body + b"}") == int(crc[:-1])


@pytest.mark.parametrize("bad", [b"", b"{}", b"null", b'{"crc":1}', b"\x00" * 40, b'{"type":"round","crc":-1}', b'{"a":1,"crc":0012}'])
def test_non_records_are_rejected(bad):
    assert decode_line(bad) is None


def _with_crc(body: bytes) -> bytes:
    import zlib

    return b"%s,\"crc\":%d}" % (body[:-1], zlib.crc32(body))


def test_a_newer_schema_is_not_damage():
    body = msgspec.json.encode({"type": "round", "v": 99, "seq": 1, "deployment": "d1", "ts": "t", "user": "u", "assistant": "a"})
    with pytest.raises(NewerVersion):
        decode_line(_with_crc(body))


def test_older_versions_go_through_the_upcasters(monkeypatch):
    # A pretend version 0 stored the answer under "answer": the upcaster renames it.
    monkeypatch.setitem(_upcast.UPCASTERS, 0, lambda r: {**{k: v for k, v in r.items() if k != "answer"}, "assistant": r["answer"]})
    body = msgspec.json.encode({"type": "round", "v": 0, "seq": 1, "deployment": "d1", "ts": "t", "user": "u", "answer": "a"})
    event = decode_line(_with_crc(body))
    assert isinstance(event, RoundEvent) and event.assistant == "a" and event.v == 1


def test_an_old_version_without_an_upcaster_is_unreadable():
    body = msgspec.json.encode({"type": "round", "v": 0, "seq": 1, "deployment": "d1", "ts": "t", "user": "u", "answer": "a"})
    assert decode_line(_with_crc(body)) is None
