"""Whole commands as processes, each beside its floor in the same virtual environment, and the
peers pointed at the same instant server.

One cycle runs every command once, in an order that rotates from cycle to cycle (ABC, BCA,
CAB...), so slow drift hits all of them alike and each bai/floor ratio is taken within a
cycle. Before each timed command the page cache is synced (untimed): a tool that never
fsyncs (shell-gpt) would otherwise leave its writes for the next tool's fsync to pay.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import msgspec

from . import _fixtures as fx
from ._instant_server import ANSWER, MODEL, InstantServer
from ._peers import Tool, llm_env, sgpt_env

Log = Callable[[str], None]
TIMEOUT = 60
HISTORY_DEP, CHAT_DEP = fx.deployment_ids(2)  # two of the deployments prepare_bai_home seeds
ANSWER_MARK = ANSWER[:30]

HTTPX_FLOOR = """\
import sys, httpx
body = open(sys.argv[2], "rb").read()
r = httpx.post(sys.argv[1], content=body, timeout=60,
               headers={"Content-Type": "application/json", "Accept": "application/json"})
r.raise_for_status()
sys.stdout.write(r.json()["choices"][0]["message"]["content"] + "\\n")
"""


# `bai --help` minus one thing: cli.main.run imports eventlog (and with it msgspec, pathlib,
# secrets...) before click parses anything. This runs the same click group without that import.
WHATIF_HELP = "from cli.main import bai; bai.main(['--help'], prog_name='bai')"


@dataclass(frozen=True)
class ProcessParams:
    cycles: int
    warmup: int
    peer_every: int  # peers run in every n-th cycle (they take ~0.6-1.2 s each)


QUICK = ProcessParams(cycles=5, warmup=1, peer_every=2)
SMOKE = ProcessParams(cycles=1, warmup=0, peer_every=1)  # --smoke: each command once
FULL = ProcessParams(cycles=40, warmup=2, peer_every=1)


@dataclass
class Cmd:
    key: str
    label: str
    argv: list[str]
    env: dict
    expect: str | None = None  # text stdout must hold
    peer: bool = False


@dataclass
class ProcessResults:
    params: ProcessParams
    commands: dict[str, Cmd] = field(default_factory=dict)
    samples: dict[str, list[int]] = field(default_factory=dict)  # key -> ns per cycle (None-free)
    by_cycle: dict[str, dict[int, int]] = field(default_factory=dict)  # key -> cycle -> ns
    failures: dict[str, str] = field(default_factory=dict)
    failed_runs: dict[str, int] = field(default_factory=dict)
    ok_runs: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # key -> why it was not run
    notes: list[str] = field(default_factory=list)
    profiles: list = field(default_factory=list)  # _profile_cli.CommandProfile, for the dev venv's bai


def bai_env(home: Path, bai_home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAI_", "PYTHON", "OPENAI", "LLM_"))}
    env.update({"HOME": str(home), "BAI_CHAT_HOME": str(bai_home), "NO_COLOR": "1"})
    return env


def prepare_bai_home(bai_home: Path, pool: list[str], server: InstantServer, bai: Tool) -> None:
    """20 deployments at their cap; CHAT_DEP configured for the instant server."""
    fx.seed_steady_state(bai_home, fx.deployment_ids(20), 50, pool)
    env = bai_env(bai_home.parent, bai_home)
    r = subprocess.run([bai.exe("bai"), "deployment", "chat-config", "set", CHAT_DEP, "--endpoint", server.base_url,
                        "--model", MODEL], env=env, capture_output=True, text=True, timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"bai chat-config set failed: {r.stderr.strip()[:300]}")


def chat_body(bai_home: Path) -> bytes:
    """The body bai sends for `chat CHAT_DEP hi --no-stream` at steady state (10 replayed messages)."""
    from eventlog import Store

    replay = Store(bai_home).context(CHAT_DEP, 10)
    return msgspec.json.encode({"model": MODEL, "messages": replay + [{"role": "user", "content": "hi"}], "stream": False})


def bai_commands(tag: str, label: str, bai: Tool, env: dict, server: InstantServer, floor_script: Path,
                 body: Path, references: bool) -> list[Cmd]:
    """bai's three commands and their floors; with `references`, also `python -c pass` and the what-if."""
    py = bai.python
    url = f"{server.base_url}/v1/chat/completions"
    cmds = [
        Cmd(f"{tag}:pass", f"`python -c pass` ({label})", [py, "-c", "pass"], env),
        Cmd(f"{tag}:help", f"`bai --help` ({label})", [bai.exe("bai"), "--help"], env, expect="deployment"),
        Cmd(f"{tag}:floor-help", f"`python -c \"import click\"` ({label})", [py, "-c", "import click"], env),
        Cmd(f"{tag}:whatif-help", f"what-if: bai's click tree printing --help without `cli.main.run`'s eager "
            f"`from eventlog import StoreError` ({label})", [py, "-c", WHATIF_HELP], env, expect="deployment"),
        Cmd(f"{tag}:show", f"`bai deployment chat-history show {HISTORY_DEP}` ({label})",
            [bai.exe("bai"), "deployment", "chat-history", "show", HISTORY_DEP], env, expect="--- you"),
        Cmd(f"{tag}:floor-show", f"`python -c \"import click, msgspec\"` ({label})",
            [py, "-c", "import click, msgspec"], env),
        Cmd(f"{tag}:chat", f"`bai deployment chat {CHAT_DEP} \"hi\" --no-stream` ({label})",
            [bai.exe("bai"), "deployment", "chat", CHAT_DEP, "hi", "--no-stream"], env, expect=ANSWER_MARK),
        Cmd(f"{tag}:floor-chat", f"minimal httpx script, the same POST ({label})",
            [py, str(floor_script), url, str(body)], env, expect=ANSWER_MARK),
    ]
    if not references:
        cmds = [c for c in cmds if not c.key.endswith((":pass", ":whatif-help"))]
    return cmds


def _run_once(cmd: Cmd) -> tuple[int | None, str | None]:
    os.sync()
    t0 = time.perf_counter_ns()
    try:
        r = subprocess.run(cmd.argv, env=cmd.env, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {TIMEOUT} s"
    except OSError as e:
        return None, f"{type(e).__name__}: {e}"
    t = time.perf_counter_ns() - t0
    if r.returncode != 0:
        err = (r.stderr or r.stdout).decode(errors="replace").strip().splitlines()
        return None, f"exit {r.returncode}: {(err[-1] if err else '')[:200]}"
    if cmd.expect and cmd.expect not in r.stdout.decode(errors="replace"):
        return None, f"unexpected output: {r.stdout[:120]!r}"
    return t, None


def run(params: ProcessParams, work: Path, server: InstantServer, bais: list[tuple[str, Tool]],
        llm: Tool | None, sgpt: Tool | None, log: Log, profile: bool = True, quick: bool = False) -> ProcessResults:
    res = ProcessResults(params)
    pool = fx.texts(256, 500)
    bai_home = work / "home" / "bai"
    bai_home.parent.mkdir(parents=True)
    primary = bais[0][1]
    prepare_bai_home(bai_home, pool, server, primary)
    body = work / "chat-body.json"
    body.write_bytes(chat_body(bai_home))
    floor_script = work / "httpx_floor.py"
    floor_script.write_text(HTTPX_FLOOR)
    env = bai_env(work / "home", bai_home)
    cmds: list[Cmd] = []
    for tag, tool in bais:
        label = "dev venv, editable install" if tag == "dev" else "regular install"
        cmds += bai_commands(tag, label, tool, env, server, floor_script, body, references=tag == bais[0][0] or not quick)
    if llm is not None:
        cmds += _llm_cmds(llm, work, server, res)
    if sgpt is not None:
        cmds += _sgpt_cmds(sgpt, work, server, pool, res)
    res.commands = {c.key: c for c in cmds}
    res.by_cycle = {c.key: {} for c in cmds}
    total = params.warmup + params.cycles
    log(f"processes: {len(cmds)} commands x {params.cycles} cycles (+{params.warmup} warm-up), interleaved")
    for cycle in range(total):
        active = [c for c in cmds if not c.peer or cycle % params.peer_every == 0 or cycle < params.warmup]
        k = cycle % len(active)
        for cmd in active[k:] + active[:k]:
            if res.failed_runs.get(cmd.key, 0) >= 3 and not res.ok_runs.get(cmd.key):
                continue  # failed three times and never worked: stop spending cycles on it
            t, problem = _run_once(cmd)
            if problem:
                res.failures.setdefault(cmd.key, problem)
                res.failed_runs[cmd.key] = res.failed_runs.get(cmd.key, 0) + 1
                continue
            res.ok_runs[cmd.key] = res.ok_runs.get(cmd.key, 0) + 1
            if cycle >= params.warmup:
                res.by_cycle[cmd.key][cycle] = t
    res.samples = {k: list(v.values()) for k, v in res.by_cycle.items()}
    if profile:
        from . import _profile_cli

        url = f"{server.base_url}/v1/chat/completions"
        res.profiles = _profile_cli.run(primary, env, HISTORY_DEP, CHAT_DEP, [str(floor_script), url, str(body)], log)
    return res


def _llm_cmds(llm: Tool, work: Path, server: InstantServer, res: ProcessResults) -> list[Cmd]:
    home = work / "home-llm"
    home.mkdir()
    env = llm_env(llm, home, server.base_url, MODEL)
    seed = Cmd("llm:seed", "llm seed", [llm.exe("llm"), "-m", "bench", "--no-stream", "hi"], env, expect=ANSWER_MARK)
    _, problem = _run_once(seed)
    if problem:
        res.missing["llm:chat"] = f"llm could not talk to the instant server: {problem}"
        return []
    res.notes.append("llm continues one conversation with `-c` and replays all of it (no cap): it starts at one "
                     "round and grows by one per call.")
    return [Cmd("llm:chat", f"`llm -c --no-stream \"hi\"` (llm {llm.version}, own venv)",
                [llm.exe("llm"), "-c", "--no-stream", "hi"], env, expect=ANSWER_MARK, peer=True)]


def _sgpt_cmds(sgpt: Tool, work: Path, server: InstantServer, pool: list[str], res: ProcessResults) -> list[Cmd]:
    home = work / "home-sgpt"
    home.mkdir()
    env = sgpt_env(sgpt, home, server.base_url, MODEL)
    flags = _sgpt_flags(sgpt, env)
    seed = Cmd("sgpt:seed", "sgpt seed", [sgpt.exe("sgpt"), "--chat", "bench", *flags, "hi"], env, expect=ANSWER_MARK)
    _, problem = _run_once(seed)
    if problem:
        res.missing["sgpt:chat"] = f"sgpt could not talk to the instant server: {problem}"
        return []
    # Its steady state: the chat file at its cap of 100 messages (plus the role message it keeps).
    path = home / "chat_cache" / "bench"
    try:
        msgs = json.loads(path.read_text())
        head = msgs[:1] if msgs and msgs[0].get("role") == "system" else []
        body = []
        for i in range(50):
            body += [{"role": "user", "content": pool[2 * i]}, {"role": "assistant", "content": pool[2 * i + 1]}]
        path.write_text(json.dumps(head + body))
    except (OSError, ValueError) as e:
        res.notes.append(f"sgpt's chat file could not be seeded to its cap ({e}); it starts at one round")
    else:
        res.notes.append("sgpt's chat file is seeded to its cap (100 messages + its role message) and replays all "
                         "of it; sgpt always streams (1.5.1 has no --no-stream).")
    return [Cmd("sgpt:chat", f"`sgpt --chat bench {' '.join(flags)} \"hi\"` (shell-gpt {sgpt.version}, own venv)",
                [sgpt.exe("sgpt"), "--chat", "bench", *flags, "hi"], env, expect=ANSWER_MARK, peer=True)]


_FLAGS: dict[str, list[str]] = {}


def _sgpt_flags(sgpt: Tool, env: dict) -> list[str]:
    """The flags this shell-gpt has of --no-cache and --no-md (asked once: it takes a second to start)."""
    key = str(sgpt.bin)
    if key not in _FLAGS:
        _FLAGS[key] = _ask_sgpt_flags(sgpt, env)
    return _FLAGS[key]


def _ask_sgpt_flags(sgpt: Tool, env: dict) -> list[str]:
    try:
        r = subprocess.run([sgpt.exe("sgpt"), "--help"], env=env, capture_output=True, text=True, timeout=TIMEOUT,
                           stdin=subprocess.DEVNULL)
        text = r.stdout
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    flags = []
    if "--no-cache" in text:
        flags.append("--no-cache")  # its completion cache would answer repeated prompts without the server
    if "--no-md" in text:
        flags.append("--no-md")
    return flags
