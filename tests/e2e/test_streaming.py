"""Streamed and whole answers: what is printed, what is recorded, and that a stream that does
not finish (cut by the server, or Ctrl-C) records nothing."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

import pytest

from tests.realservers.servers import MOCK_ECHO_TEXT

from .helpers import BAI, G, M, bai_env, chat, chat_posts, configure, log_records, printed, show
from .stub import StubServer


@pytest.mark.parametrize("stream_flag", ["--stream", "--no-stream"])
def test_litellm_answer_is_printed_and_recorded_exactly(home, litellm_dep, stream_flag):
    r = chat(home, M, "hi there", "--model", "mock-echo", stream_flag)
    assert r.code == 0, r
    assert r.out == MOCK_ECHO_TEXT + "\n"
    assert [(m["role"], m["content"]) for m in show(home, M)] == [
        ("user", "hi there"), ("assistant", MOCK_ECHO_TEXT)]
    body = chat_posts(litellm_dep)[-1].json
    assert body["stream"] is (stream_flag == "--stream")
    if body["stream"]:  # asked for, so the usage of a streamed answer is kept too
        assert body["stream_options"] == {"include_usage": True}
    (rec,) = [x for x in log_records(home, M) if x["type"] == "round"]
    assert rec["assistant"] == MOCK_ECHO_TEXT and rec["model"] == "mock-echo"
    assert rec["usage"]["completion_tokens"] > 0


def test_llama_streamed_and_whole_answers_record_what_was_printed(home, llama_dep):
    # Same prompt, seed 42, temperature 0: both ways must record the same text they printed.
    outs = []
    for flag in ("--stream", "--no-stream"):
        r = chat(home, G, "Count: one two three", "--max-tokens", "6", "--history-limit", "0",
                 "--params", '{"temperature": 0}', flag)
        assert r.code == 0, r
        outs.append(r.out)
    saved = show(home, G)
    answers = [m["content"] for m in saved if m["role"] == "assistant"]
    assert [printed(a) for a in answers] == outs
    assert answers[0] == answers[1]  # deterministic server: streaming changes nothing recorded
    finishes = [x["finish_reason"] for x in json.loads((home / "history.json").read_text())["deployments"][G]
                if x["role"] == "assistant"]
    assert finishes[0] == finishes[1] and finishes[0] in ("stop", "length")


def test_stream_text_is_printed_as_it_arrives(home):
    # The stub sends "Hel" and then waits until the test has seen "Hel" on bai's stdout:
    # if bai buffered the answer, the first bytes would never show before the end.
    with StubServer("gated") as stub:
        configure(home, "s", stub.root_url)
        proc = subprocess.Popen([BAI, "deployment", "chat", "s", "hi"], env=bai_env(home),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first = _read_until(proc.stdout, b"Hel", deadline=time.monotonic() + 20)
            assert first.startswith(b"Hel"), first
            assert proc.poll() is None  # still running: the rest has not been sent yet
            stub.release.set()
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert first + out == b"Hello world\n"
    assert [m["content"] for m in show(home, "s")] == ["hi", "Hello world"]


def test_json_prints_the_whole_llama_response(home, llama_dep):
    r = chat(home, G, "hi", "--max-tokens", "4", "--json")
    assert r.code == 0, r
    doc = json.loads(r.out)
    post = chat_posts(llama_dep)[-1]
    assert post.json["stream"] is False  # --json asks for a whole answer
    # Exactly the server's object, extras and all (llama.cpp's timings, usage details).
    assert doc == json.loads(post.response_body)
    assert {"usage", "timings", "system_fingerprint", "id", "created"} <= set(doc)
    assert doc["usage"]["prompt_tokens"] > 0
    assert show(home, G)[-1]["content"] == doc["choices"][0]["message"]["content"]


def test_json_prints_the_whole_litellm_response(home, litellm_dep):
    r = chat(home, M, "hi", "--model", "mock-echo", "--json")
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert doc == json.loads(chat_posts(litellm_dep)[-1].response_body)
    assert doc["choices"][0]["message"]["content"] == MOCK_ECHO_TEXT and "usage" in doc


@pytest.mark.parametrize("mode", ["cut-eof", "cut-chunked"])
def test_stream_cut_by_the_server_records_nothing(home, mode):
    with StubServer(mode) as stub:
        configure(home, "s", stub.root_url)
        r = chat(home, "s", "hi", "--model", "stub")
    assert r.code == 1, r
    assert "Traceback" not in r.err
    errors = [line for line in r.err.splitlines() if line.startswith("bai: error:")]
    assert len(errors) == 1 and len(r.err.splitlines()) == 1, r
    assert "ended before the answer was complete" in errors[0]
    assert r.out == "Hello, wor\n"  # the user saw the partial text as it came, its line ended
    assert log_records(home, "s") == [] and show(home, "s") == []


def _interrupt_mid_stream(home) -> tuple[int, str, str]:
    """Start a chat on a trickling stream, send SIGINT once text is flowing; (code, out, err)."""
    with StubServer("slow") as stub:
        configure(home, "s", stub.root_url)
        # SIGINT back to its default in the child: a parent started with SIGINT ignored
        # (nohup, a background job) would otherwise pass that on and bai would never see it.
        proc = subprocess.Popen([BAI, "deployment", "chat", "s", "hi", "--model", "stub"], env=bai_env(home),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            first = _read_until(proc.stdout, b"tick", deadline=time.monotonic() + 20)
            assert b"tick" in first and proc.poll() is None
            proc.send_signal(signal.SIGINT)  # Ctrl-C: to this PID only
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return proc.returncode, (first + out).decode(), err.decode()


def test_sigint_mid_stream_records_nothing_and_exits_130(home):
    code, out, err = _interrupt_mid_stream(home)
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert [line for line in err.splitlines() if line.strip()] == ["bai: interrupted; nothing was saved"], err
    assert out.startswith("tick ") and out.endswith("\n")  # the partial answer's line was ended
    assert log_records(home, "s") == [] and show(home, "s") == []


def test_sigint_message_is_exactly_one_line(home):
    code, _, err = _interrupt_mid_stream(home)
    assert code == 130 and err == "bai: interrupted; nothing was saved\n"


def _read_until(pipe, needle: bytes, deadline: float) -> bytes:
    """Bytes from `pipe` as they come, until `needle` shows or the deadline passes."""
    fd = pipe.fileno()
    got = b""
    while needle not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            data = os.read(fd, 4096)
            if not data:
                break
            got += data
    return got


@pytest.mark.parametrize("mode,words", [("tool", "get_weather"), ("empty", "no content")])
def test_answer_without_text_exits_3_and_records_nothing(home, mode, words):
    with StubServer(mode) as stub:
        configure(home, "s", stub.root_url)
        r = chat(home, "s", "weather?", "--model", "stub")
    assert r.code == 3, r
    assert "Traceback" not in r.err and r.out == ""
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bai: nothing saved") and words in lines[0], r
    assert log_records(home, "s") == [] and show(home, "s") == []


def test_stalled_stream_times_out_and_records_nothing(home):
    # The stub sends "Hel" and then nothing (it waits for a release that never comes).
    with StubServer("gated") as stub:
        configure(home, "s", stub.root_url)
        started = time.monotonic()
        r = chat(home, "s", "hi", "--model", "stub", "--timeout", "1")
        elapsed = time.monotonic() - started
    assert r.code == 1, r
    errors = r.err.splitlines()
    assert len(errors) == 1 and "stalled" in errors[0] and "--timeout" in errors[0], r
    assert elapsed < 15  # the read timeout, not the stub's 30 s gate, ended it
    assert r.out == "Hel\n" and log_records(home, "s") == []
