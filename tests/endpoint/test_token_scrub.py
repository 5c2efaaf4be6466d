"""Issue 9, item 4: a server that echoes the bearer token back (as is, JSON-escaped or
URL-encoded) in an error body, a stream error event or a reply bai cannot read never gets any
of it shown: the token is scrubbed before a message is cut, so no prefix survives a cut.

Each case puts the token at every offset around a cut, through a real HTTP server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from cli.endpoint._errors import EndpointError
from cli.endpoint._limits import MAX_ERROR_BODY
from cli.endpoint._text import Redactor

from .server import Reply, ScriptedServer
from .test_transport import CHAT, PAYLOAD, SSE

TOKEN = 'sk-Ab/c+d"e\\f%g7hij'  # printable ASCII, with the characters JSON and URLs escape
PREFIX = 6  # no run of this many characters of any form of the token may be shown


def _json_all(s: str) -> str:
    return "".join(f"\\u{ord(c):04X}" for c in s)


FORMS = {
    "raw": TOKEN,
    "json": json.dumps(TOKEN)[1:-1],  # \" and \\ escaped
    "json-slash": json.dumps(TOKEN)[1:-1].replace("/", "\\/"),
    "json-unicode": _json_all(TOKEN),  # every character as \uXXXX (upper-case hex)
    "url": quote(TOKEN, safe=""),
    "url-lower": quote(TOKEN, safe="").lower().replace("sk-ab", "sk-Ab"),  # %2f, not %2F
}
JSON_FORMS = ("json", "json-slash", "json-unicode", "url")  # what may stand inside a JSON string
TEXT_FORMS = ("raw", "url", "url-lower")


def _leaks(shown: str) -> list[str]:
    """Any run of PREFIX characters of a form of the token (or of the decoded token) in `shown`."""
    found = []
    for name, form in {**FORMS, "decoded": TOKEN}.items():
        for start in range(len(form) - PREFIX + 1):
            if form[start : start + PREFIX] in shown:
                found.append(f"{name}: {form[start:start + PREFIX]!r}")
                break
    return found


def _shown(exc: EndpointError) -> str:
    """Everything an error can show: its message, the server's message, the excerpt."""
    info = getattr(exc, "info", None)
    return "\n".join([str(exc), getattr(info, "message", "") or "", getattr(exc, "excerpt", None) or ""])


def _around(cut: int, form: str) -> range:
    """Offsets of a token form that end before, straddle, and start after position `cut`."""
    return range(max(cut - len(form) - 2, 0), cut + 3)


def _run(server: ScriptedServer, make_client: Any, replies: list[Reply], call: Callable[[Any], object]) -> None:
    server.add(CHAT, *replies)
    client = make_client(token=TOKEN)
    for reply in replies:
        with pytest.raises(EndpointError) as caught:
            call(client)
        leaks = _leaks(_shown(caught.value))
        assert not leaks, (leaks, reply.body[:120], _shown(caught.value))


def _chat(client: Any) -> object:
    return client.chat(PAYLOAD)


def _stream(client: Any) -> object:
    return client.stream_chat(PAYLOAD)


def _json_error(pad: str, form: str, status: int = 400) -> Reply:
    text = '{"error": {"message": "' + pad + form + ' and more", "type": "invalid_request_error"}}'
    return Reply(status, text.encode())


@pytest.mark.parametrize("form", JSON_FORMS)
@pytest.mark.parametrize("cut", [299, 3999], ids=["message-cut", "body-message-cut"])
def test_json_error_body(form: str, cut: int, server: ScriptedServer, make_client: Any) -> None:
    # The message is shown cut at 300 characters; the server's message is kept cut at 4000.
    f = FORMS[form]
    _run(server, make_client, [_json_error("x" * k, f) for k in _around(cut, f)], _chat)


@pytest.mark.parametrize("form", TEXT_FORMS)
def test_text_error_body_cut_at_its_read_limit(form: str, server: ScriptedServer, make_client: Any) -> None:
    # Only MAX_ERROR_BODY bytes of an error body are read; spaces before the token collapse, so
    # a token across that cut would be the first thing shown.
    f = FORMS[form]
    replies = [Reply(500, (" " * k + f + " tail").encode(), content_type="text/plain")
               for k in _around(MAX_ERROR_BODY, f)]
    _run(server, make_client, replies, _chat)


@pytest.mark.parametrize("form", TEXT_FORMS)
def test_text_error_body_cut_in_the_message(form: str, server: ScriptedServer, make_client: Any) -> None:
    f = FORMS[form]
    replies = [Reply(502, ("x" * k + f + " tail").encode(), content_type="text/plain") for k in _around(299, f)]
    _run(server, make_client, replies, _chat)


@pytest.mark.parametrize("form", JSON_FORMS)
def test_stream_error_event(form: str, server: ScriptedServer, make_client: Any) -> None:
    f = FORMS[form]
    start = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    replies = [Reply(200, start + b'data: {"error": {"message": "' + ("x" * k + f).encode() + b' more"}}\n\n',
                     content_type=SSE) for k in _around(299, f)]
    _run(server, make_client, replies, _stream)


@pytest.mark.parametrize("form", TEXT_FORMS)
def test_stream_event_that_is_not_json(form: str, server: ScriptedServer, make_client: Any) -> None:
    f = FORMS[form]
    replies = [Reply(200, b"data: " + ("x" * k + f).encode() + b" more\n\ndata: [DONE]\n\n", content_type=SSE)
               for k in _around(119, f)]
    _run(server, make_client, replies, _stream)


@pytest.mark.parametrize("form", JSON_FORMS)
def test_error_in_a_2xx_body(form: str, server: ScriptedServer, make_client: Any) -> None:
    f = FORMS[form]
    _run(server, make_client, [_json_error("x" * k, f, status=200) for k in _around(299, f)], _chat)


@pytest.mark.parametrize("form", TEXT_FORMS)
@pytest.mark.parametrize("cut, pad", [(119, "x"), (400, " ")], ids=["excerpt-cut", "head-cut"])
def test_reply_that_is_no_event_stream(form: str, cut: int, pad: str, server: ScriptedServer,
                                       make_client: Any) -> None:
    # Its excerpt is the first 400 bytes, whitespace collapsed, cut at 120 characters.
    f = FORMS[form]
    replies = [Reply(200, (pad * k + f + " tail").encode(), content_type="text/plain") for k in _around(cut, f)]
    _run(server, make_client, replies, _stream)


def test_reason_phrase_and_redirect_location(server: ScriptedServer, make_client: Any) -> None:
    server.add(CHAT, Reply(302, b"", headers={"Location": f"http://127.0.0.1:9/{quote(TOKEN, safe='')}/v1"}))
    with pytest.raises(EndpointError) as caught:
        make_client(token=TOKEN).chat(PAYLOAD)
    assert not _leaks(_shown(caught.value)) and "redirected to" in str(caught.value)


@pytest.mark.parametrize("form", list(FORMS))
def test_redactor_finds_every_form_and_mixes_of_them(form: str) -> None:
    r = Redactor(TOKEN)
    assert r.text(f"a {FORMS[form]} b") == "a *** b"
    assert r.bytes(f"a {FORMS[form]} b".encode()) == b"a *** b"
    mixed = "".join((c, f"\\u{ord(c):04x}", f"%{ord(c):02X}")[i % 3] for i, c in enumerate(TOKEN))
    assert r.text(mixed) == "***", mixed
    assert r.margin >= max(len(f) for f in FORMS.values())
