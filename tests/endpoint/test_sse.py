"""The SSE decoder: line endings, fields, comments, and every possible split of the bytes."""

from __future__ import annotations

import pytest

from cli.endpoint._sse import SSEDecoder, ServerSentEvent

from .conftest import fixture_bytes


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.flush()


def data_of(events: list[ServerSentEvent]) -> list[str]:
    return [e.data for e in events]


def test_data_with_and_without_the_space() -> None:
    assert data_of(decode(b"data: a\n\ndata:b\n\ndata:  c\n\n")) == ["a", "b", " c"]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(eol: bytes) -> None:
    body = b"data: one" + eol + eol + b"data: two" + eol + b"data: more" + eol + eol
    assert data_of(decode(body)) == ["one", "two\nmore"]


def test_comments_are_skipped_and_do_not_dispatch() -> None:
    events = decode(b": keep-alive\n\n:ping\ndata: x\n: in the middle\ndata: y\n\n")
    assert data_of(events) == ["x\ny"]


def test_event_and_id_fields() -> None:
    events = decode(b"event: error\nid: 7\ndata: {}\n\ndata: next\n\n")
    assert (events[0].event, events[0].id, events[0].data) == ("error", "7", "{}")
    assert (events[1].event, events[1].id) == ("message", "7")  # the id persists, the type does not


def test_llama_cpp_error_line() -> None:
    events = decode(b'error: {"code":500,"message":"boom","type":"server_error"}\n\n')
    assert events == [ServerSentEvent('{"code":500,"message":"boom","type":"server_error"}', "error", None, False)]


def test_unknown_fields_retry_and_blank_events_are_ignored() -> None:
    assert data_of(decode(b"retry: 100\nfoo: bar\n\n\n\nevent: x\n\ndata\n\n")) == [""]


def test_bom_at_start_only() -> None:
    assert data_of(decode(b"\xef\xbb\xbfdata: a\n\n")) == ["a"]


def test_flush_dispatches_a_complete_line_without_blank_line() -> None:
    events = decode(b"data: [DONE]\n")
    assert data_of(events) == ["[DONE]"] and events[0].at_eof


def test_flush_marks_a_cut_off_last_line() -> None:
    events = decode(b'data: {"a": 1}\n\ndata: {"cho')
    assert [e.at_eof for e in events] == [False, True] and events[1].data == '{"cho'


def test_crlf_split_across_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert data_of(decoder.feed(b"\n\r")) == ["a"]
    assert decoder.feed(b"\ndata: b\r\n") == []  # the LF after CR was part of the blank line
    assert data_of(decoder.feed(b"\r\n")) == ["b"]


def test_cr_then_text_is_not_mistaken_for_crlf() -> None:
    assert data_of(decode(b"data: a\rdata: b", b"\n\n")) == ["a\nb"]


UNICODE = ("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\u00e9llo \u65e5\u672c \U0001F389\"}}]}\r\n"
           "\r\n: comment\r\ndata:{\"x\":\r\ndata: 1}\r\n\r\nevent: error\r\ndata: [DONE]\r\n\r\n").encode()


@pytest.mark.parametrize("body", [UNICODE, fixture_bytes("sse_openai_refusal.txt"),
                                  fixture_bytes("sse_tgi_error_midstream_v2_1.txt")])
def test_every_split_point_gives_the_same_events(body: bytes) -> None:
    whole = decode(body)
    assert whole
    for cut in range(1, len(body)):
        assert decode(body[:cut], body[cut:]) == whole, cut


def test_byte_by_byte_inside_utf8_and_inside_data() -> None:
    events = decode(*(UNICODE[i:i + 1] for i in range(len(UNICODE))))
    assert events == decode(UNICODE)
    assert "h\u00e9llo \u65e5\u672c \U0001F389" in events[0].data
    assert events[1].data == '{"x":\n1}' and events[2].event == "error"


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert data_of(decode(b"data: \xff\xfe\n\n")) == ["\ufffd\ufffd"]
