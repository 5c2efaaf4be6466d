"""Streaming: from the server sending a chunk to `bai` writing it to stdout, and memory per KB.

The instant server sends pieces "000001\\n", "000002\\n", ... and stamps each send with
`perf_counter_ns` (CLOCK_MONOTONIC, one clock for every process); a reader thread here reads
the command's stdout through a pipe and stamps each read, so every piece gets a latency.
Beside bai runs the floor: a minimal httpx script that streams the same request and prints
each piece (same venv). Paced streams measure latency; unpaced ones measure the time per
chunk and peak memory (VmHWM of the command's own process, reported at its exit) at two or
three stream lengths.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import _fixtures as fx
from ._instant_server import InstantServer, StreamPlan
from ._peers import Tool
from ._process_bench import CHAT_DEP, bai_env, prepare_bai_home

Log = Callable[[str], None]
TIMEOUT = 120

STREAM_FLOOR = """\
import json, sys, httpx
body = open(sys.argv[2], "rb").read()
out = sys.stdout
with httpx.stream("POST", sys.argv[1], content=body, timeout=60,
                  headers={"Content-Type": "application/json", "Accept": "text/event-stream"}) as r:
    r.raise_for_status()
    for line in r.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        for choice in json.loads(data).get("choices") or ():
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                out.write(piece)
                out.flush()
"""


@dataclass(frozen=True)
class StreamParams:
    chunks: int = 10_000
    interval_s: float = 0.0002
    paced_runs: int = 1  # of each (bai, floor), alternating
    memory_lengths: tuple[int, ...] = (1_000, 10_000, 100_000)
    memory_runs: int = 1


# Peak memory of the measured process itself. ru_maxrss from wait4 will not do: across fork/vfork
# and exec a child inherits the parent's high-water mark, and this benchmark's process is large
# after the store section. VmHWM belongs to the address space, which exec makes anew, so the
# command reports its own at exit through this wrapper (the same for bai and the floor).
HWM_WRAPPER = """\
import atexit, os, sys
def _hwm():
    with open("/proc/self/status") as f:
        return next((line.split()[1] for line in f if line.startswith("VmHWM:")), "0")
before_save = []
def _report():
    with open(os.environ["BAI_BENCH_HWM_FILE"], "w") as out:
        out.write(f"{_hwm()} {before_save[0] if before_save else 0}")
atexit.register(_report)
mode, args = sys.argv[1], sys.argv[2:]
if mode == "bai":
    from eventlog import Store
    record = Store.record_round
    def snapshot(self, *a, **k):  # the peak while streaming, before the round is saved
        before_save.append(_hwm())
        return record(self, *a, **k)
    Store.record_round = snapshot
    sys.argv = ["bai", *args]
    from cli.main import main
    main()
else:
    import runpy
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
"""

QUICK = StreamParams()
SMOKE = StreamParams(chunks=200, memory_lengths=(1_000, 5_000))  # --smoke: short streams
FULL = StreamParams(paced_runs=3, memory_lengths=(1_000, 10_000, 30_000, 100_000), memory_runs=2)


@dataclass
class Run:
    who: str
    chunks: int
    paced: bool
    latencies_ns: list[int] = field(default_factory=list)
    per_chunk_ns: float = float("nan")  # (last arrival - first send) / chunks
    peak_rss_kib: int = 0  # VmHWM of the command's own process at its exit (memory runs only)
    streaming_rss_kib: int = 0  # bai: VmHWM just before the round is saved (the peak while streaming)
    wire_bytes: int = 0
    text_bytes: int = 0
    problem: str | None = None


@dataclass
class StreamResults:
    params: StreamParams
    runs: list[Run] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


def _reader(fd: int, stamps: list[tuple[int, int]], sink: bytearray) -> None:
    """Stamp each read from the pipe: (time, bytes read so far)."""
    clock = time.perf_counter_ns
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except OSError:
            break
        if not data:
            break
        now = clock()
        sink += data
        stamps.append((now, len(sink)))


def _one(who: str, argv: list[str], env: dict, server: InstantServer, chunks: int, interval: float,
         hwm_file: Path | None = None) -> Run:
    if hwm_file is not None:
        env = {**env, "BAI_BENCH_HWM_FILE": str(hwm_file)}
        hwm_file.unlink(missing_ok=True)
    plan = server.plan_stream(StreamPlan(chunks, interval))
    run = Run(who, chunks, interval > 0)
    stamps: list[tuple[int, int]] = []
    sink = bytearray()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    reader = threading.Thread(target=_reader, args=(proc.stdout.fileno(), stamps, sink), daemon=True)
    err = bytearray()
    err_reader = threading.Thread(target=lambda: err.extend(proc.stderr.read()), daemon=True)
    reader.start()
    err_reader.start()
    deadline = time.monotonic() + TIMEOUT
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        run.problem = f"timed out after {TIMEOUT} s"
    reader.join(timeout=10)
    err_reader.join(timeout=10)
    proc.stdout.close()
    proc.stderr.close()
    if hwm_file is not None:
        try:
            peak, streaming = (hwm_file.read_text().split() + ["0", "0"])[:2]
            run.peak_rss_kib, run.streaming_rss_kib = int(peak), int(streaming)
        except (OSError, ValueError):
            run.problem = run.problem or "the command did not report its peak memory"
    if not plan.done.wait(timeout=10):
        run.problem = run.problem or "the server never finished the stream"
    if proc.returncode != 0 and not run.problem:
        run.problem = f"exit {proc.returncode}: {err.decode(errors='replace').strip()[-200:]}"
    run.wire_bytes = plan.wire_bytes
    run.text_bytes = sum(len(StreamPlan.piece(i)) for i in range(1, chunks + 1))
    if run.problem:
        return run
    # piece i ends at byte offset 7 * i (each is "%06d\n"); match pieces to the read that completed them
    width = len(StreamPlan.piece(1))
    arrivals = []
    j = 0
    for i in range(1, chunks + 1):
        end = width * i
        while j < len(stamps) and stamps[j][1] < end:
            j += 1
        if j == len(stamps):
            run.problem = f"only {len(arrivals)} of {chunks} pieces reached stdout"
            return run
        arrivals.append(stamps[j][0])
    expected = "".join(StreamPlan.piece(i) for i in range(1, chunks + 1)).encode()
    if bytes(sink[: len(expected)]) != expected:
        run.problem = "stdout does not hold the pieces in order"
        return run
    sent = plan.sent_ns
    run.latencies_ns = [a - s for a, s in zip(arrivals, sent)]
    run.per_chunk_ns = (arrivals[-1] - sent[0]) / chunks
    return run


def run(params: StreamParams, work: Path, server: InstantServer, bai: Tool, log: Log) -> StreamResults:
    res = StreamResults(params)
    pool = fx.texts(256, 500)
    bai_home = work / "home" / "bai"
    bai_home.parent.mkdir(parents=True)
    prepare_bai_home(bai_home, pool, server, bai)
    template = work / "home-template"
    shutil.copytree(bai_home, template)
    env = bai_env(work / "home", bai_home)
    body = work / "stream-body.json"
    import msgspec

    body.write_bytes(msgspec.json.encode({"model": "bench-model", "stream": True,
                                          "messages": [{"role": "user", "content": "hi"}]}))
    floor = work / "httpx_stream_floor.py"
    floor.write_text(STREAM_FLOOR)
    url = f"{server.base_url}/v1/chat/completions"
    bai_args = ["deployment", "chat", CHAT_DEP, "hi", "--history-limit", "0"]
    argv = {"bai": [bai.exe("bai"), *bai_args], "floor": [bai.python, str(floor), url, str(body)]}
    wrapper = work / "hwm_wrapper.py"
    wrapper.write_text(HWM_WRAPPER)
    measured = {"bai": [bai.python, str(wrapper), "bai", *bai_args],
                "floor": [bai.python, str(wrapper), "script", str(floor), url, str(body)]}
    hwm = work / "hwm.txt"
    res.labels = {"bai": f"`bai deployment chat {CHAT_DEP} \"hi\"` (streams; {bai.name})",
                  "floor": "minimal httpx script printing each piece (same venv)"}
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)  # the server and reader threads here hand the GIL over quickly
    try:
        log(f"stream: {params.chunks} chunks paced {params.interval_s * 1e3:.2f} ms apart, bai and floor "
            f"x{params.paced_runs}")
        for i in range(params.paced_runs):
            order = ["bai", "floor"] if i % 2 == 0 else ["floor", "bai"]
            for who in order:
                res.runs.append(_one(who, argv[who], env, server, params.chunks, params.interval_s))
        log(f"stream: unpaced streams of {', '.join(map(str, params.memory_lengths))} chunks: time per chunk, peak memory")
        for i in range(params.memory_runs):
            for n in params.memory_lengths:
                for who in ("bai", "floor"):
                    # every memory run starts from the same store: each bai run saves its answer, and
                    # bai decodes all of history.json, so a growing store would grow every later run
                    shutil.rmtree(bai_home)
                    shutil.copytree(template, bai_home)
                    res.runs.append(_one(who, measured[who], env, server, n, 0.0, hwm))
    finally:
        sys.setswitchinterval(old)
    return res
