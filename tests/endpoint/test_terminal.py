"""Terminal control sequences from a server are removed from what bai shows (issue 9): the filter
by itself, on whole texts and on every way a stream may split them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.endpoint._text import TerminalFilter, json_for_terminal, one_line, strip_controls

CASES = {
    "osc 52 clipboard, BEL": ("a\x1b]52;c;ZWNobyBwd25lZA==\x07b", "ab"),
    "osc title, ST": ("a\x1b]0;pwned\x1b\\b", "ab"),
    "osc 8 link, 8-bit": ("a\x9d8;;http://x\x9cb", "ab"),
    "csi colour and clear": ("\x1b[31mred\x1b[0m\x1b[2J\x1b[H.", "red."),
    "csi private": ("a\x1b[?1049hb\x1b[>4;2mc", "abc"),
    "8-bit csi": ("a\x9b31mb", "ab"),
    "dcs and apc": ("a\x1bPq#0;2;0;0;0\x1b\\b\x1b_Gf=100;AAAA\x1b\\c", "abc"),
    "other esc": ("a\x1bcb\x1b7c\x1b(Bd\x1b=e", "abcde"),
    "c0 and del": ("a\x00b\x07c\x08d\x7fe\rf\x0bg\x0ch", "abcdefgh"),
    "c1": ("a\x85b\x8dc\x84d", "abcd"),
    "8-bit apc swallows to its end": ("a\x9fhidden\x9cb", "ab"),
    "newline and tab kept": ("line 1\n\tline 2\n", "line 1\n\tline 2\n"),
    "unicode kept": ("café — 東京 🙂", "café — 東京 🙂"),
    "osc cut by an esc": ("a\x1b]0;t\x1b[1mb", "ab"),
    "unterminated osc": ("a\x1b]52;c;AAAA", "a"),
    "unterminated csi": ("a\x1b[12", "a"),
    "malformed csi": ("a\x1b[12\nb", "a\nb"),
    "lone esc at the end": ("a\x1b", "a"),
}


@pytest.mark.parametrize("text, shown", CASES.values(), ids=CASES.keys())
def test_whole_texts(text: str, shown: str) -> None:
    assert strip_controls(text) == shown


@pytest.mark.parametrize("text, shown", CASES.values(), ids=CASES.keys())
def test_every_split_into_two_and_into_single_characters(text: str, shown: str) -> None:
    for cut in range(len(text) + 1):
        f = TerminalFilter()
        assert f.feed(text[:cut]) + f.feed(text[cut:]) + f.flush() == shown, cut
    f = TerminalFilter()
    assert "".join(f.feed(c) for c in text) + f.flush() == shown


SEQUENCE_PARTS = st.sampled_from(["\x1b", "[", "]", "\\", "\x07", "\x9b", "\x9c", "\x9d", "P", "52;c;", "0;",
                                  "31m", "?25l", "\r", "\n", "\t", "\x00", "\x7f", "\x85", "a", "b", " ", "é"])


def _clean(text: str) -> bool:
    return not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text)


@settings(max_examples=300, deadline=None)
@given(st.lists(SEQUENCE_PARTS, max_size=40).map("".join), st.lists(st.integers(0, 40), max_size=6))
def test_any_split_gives_the_same_clean_text(text: str, cuts: list[int]) -> None:
    whole = strip_controls(text)
    assert _clean(whole)
    bounds = [0, *sorted(c for c in cuts if c <= len(text)), len(text)]
    f = TerminalFilter()
    pieces = "".join(f.feed(text[a:b]) for a, b in zip(bounds, bounds[1:])) + f.flush()
    assert pieces == whole


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=60))
def test_text_without_controls_is_unchanged(text: str) -> None:
    assert strip_controls(text) == text
    f = TerminalFilter()
    assert f.feed(text) + f.flush() == text


def test_a_long_open_string_costs_nothing_per_piece() -> None:
    # An OSC that never ends, sent in many pieces, is dropped without being kept.
    f = TerminalFilter()
    assert f.feed("\x1b]52;c;") == ""
    for _ in range(10_000):
        assert f.feed("QUFBQUFB" * 100) == ""
    assert f.feed("\x07visible") == "visible"


def test_one_line_and_json() -> None:
    assert one_line("error:\x1b]0;t\x07 bad\r\nthing\x1b[2J") == "error: bad thing"
    assert json_for_terminal('{"a":"x\x9b1m\x7f"}') == '{"a":"x\\u009b1m\\u007f"}'
