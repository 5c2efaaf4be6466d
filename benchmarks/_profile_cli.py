"""Where a bai command's time goes beyond its floor: imports (`-X importtime`) and run time (cProfile).

For each command, in the same venv:
- the imports bai makes that its floor does not, as the import tree's top two levels with
  cumulative times (median of a few runs): e.g. `eventlog` pulled in by `cli.main.run`;
- the functions that cost most while the command runs (cProfile, in process, of a second run
  after an unprofiled one, so imports are excluded: they are the first list), skipping click's
  frames. (`chat` then records one more round; it is at its steady state either way.)
"""

from __future__ import annotations

import statistics
import subprocess
from dataclasses import dataclass, field
from typing import Callable

from ._peers import REPO, Tool

Log = Callable[[str], None]
TIMEOUT = 60
RUNS = 3

BOOT = "import re, sys; sys.argv = {argv!r}; from cli.main import main; main()"  # what the console script does

PROFILE = """\
import cProfile, pstats, sys, os
argv = {argv!r}
sys.argv = ["bai", *argv]
devnull = open(os.devnull, "w")
real_stdout = sys.stdout
sys.stdout = devnull
from cli.main import run
run(argv)  # once unprofiled: its lazy imports are then done, so the profile shows the run alone
pr = cProfile.Profile()
pr.enable()
code = run(argv)
pr.disable()
sys.stdout = real_stdout
st = pstats.Stats(pr)
total = max(v[3] for v in st.stats.values())
rows = []
for (f, line, fn), (cc, nc, tt, ct, callers) in st.stats.items():
    if "<frozen" in f or "/click/" in f or fn in ("<built-in method builtins.exec>", "<built-in method builtins.__import__>"):
        continue
    if f.endswith(("cli/main.py", "cli/_cmd_chat.py", "cli/_cmd_history.py")) and fn in ("run", "chat", "show"):
        continue
    if f == "~":
        name = fn
    elif "/site-packages/" in f:
        name = f"{{f.split('/site-packages/')[-1]}}:{{line}}({{fn}})"
    elif "/lib/python3" in f:
        name = f"{{f.rsplit('/', 1)[-1]}}:{{line}}({{fn}})"
    else:
        name = f"{{f.replace(os.getcwd() + '/', '').replace({repo!r} + '/', '')}}:{{line}}({{fn}})"
    rows.append((ct, tt, nc, name))
rows.sort(reverse=True)
print(f"TOTAL {{total * 1000:.2f}} {{code}}")
for ct, tt, nc, name in rows[:14]:
    print(f"{{ct * 1000:.2f}}\\t{{tt * 1000:.2f}}\\t{{nc}}\\t{{name}}")
"""


@dataclass
class ImportRow:
    depth: int
    name: str
    cumulative_ms: float


@dataclass
class CommandProfile:
    key: str
    label: str
    floor_label: str
    extra_imports: list[ImportRow] = field(default_factory=list)  # in bai, not in the floor
    extra_import_ms: float = 0.0  # sum of self times of modules the floor does not import
    runtime_total_ms: float = 0.0
    runtime_top: list[tuple[float, float, int, str]] = field(default_factory=list)  # (cum ms, own ms, calls, function)
    problem: str | None = None


def _importtime(argv: list[str], env: dict) -> list[tuple[int, str, int, int]]:
    """(depth, module, self us, cumulative us) per import, in order."""
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    rows = []
    for line in r.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        field_ = parts[2][1:]
        name = field_.lstrip()
        rows.append(((len(field_) - len(name)) // 2, name, int(parts[0]), int(parts[1])))
    return rows


def _median_imports(argv: list[str], env: dict) -> dict[tuple[int, str], tuple[float, float]]:
    runs = [_importtime(argv, env) for _ in range(RUNS)]
    keys = {(d, n) for run in runs for d, n, _, _ in run}
    out = {}
    for key in keys:
        selfs = [s for run in runs for d, n, s, _ in run if (d, n) == key]
        cums = [c for run in runs for d, n, _, c in run if (d, n) == key]
        out[key] = (statistics.median(selfs) / 1000, statistics.median(cums) / 1000)
    return out


def profile_command(key: str, label: str, args: list[str], floor_args: list[str], floor_label: str, bai: Tool,
                    env: dict) -> CommandProfile:
    prof = CommandProfile(key, label, floor_label)
    py = bai.python
    try:
        bai_imports = _median_imports([py, "-X", "importtime", "-c", BOOT.format(argv=["bai", *args])], env)
        floor_imports = _median_imports([py, "-X", "importtime", *floor_args], env)
        floor_names = {n for _, n in floor_imports}
        extra = {k: v for k, v in bai_imports.items() if k[1] not in floor_names}
        prof.extra_import_ms = sum(s for s, _ in extra.values())
        rows = [ImportRow(d, n, c) for (d, n), (s, c) in extra.items() if d <= 1 and c >= 1.0]
        rows.sort(key=lambda r: -r.cumulative_ms)
        prof.extra_imports = rows[:10]
        r = subprocess.run([py, "-c", PROFILE.format(argv=args, repo=str(REPO))], env=env, capture_output=True, text=True,
                           timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        lines = r.stdout.splitlines()
        if r.returncode != 0 or not lines or not lines[0].startswith("TOTAL"):
            prof.problem = f"cProfile run failed: {(r.stderr.strip().splitlines() or ['?'])[-1][:200]}"
            return prof
        prof.runtime_total_ms = float(lines[0].split()[1])
        for line in lines[1:]:
            ct, tt, nc, name = line.split("\t", 3)
            prof.runtime_top.append((float(ct), float(tt), int(nc.split("/")[0]), name))
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        prof.problem = f"{type(e).__name__}: {e}"
    return prof


def run(bai: Tool, env: dict, history_dep: str, chat_dep: str, chat_floor: list[str], log: Log) -> list[CommandProfile]:
    """`chat_floor`: the httpx floor script and its arguments."""
    log("profile: imports beyond each floor, and cProfile of each command")
    return [
        profile_command("help", "bai --help", ["--help"], ["-c", "import click"], "python -c \"import click\"",
                        bai, env),
        profile_command("show", f"bai deployment chat-history show {history_dep}",
                        ["deployment", "chat-history", "show", history_dep], ["-c", "import click, msgspec"],
                        "python -c \"import click, msgspec\"", bai, env),
        profile_command("chat", f"bai deployment chat {chat_dep} hi --no-stream",
                        ["deployment", "chat", chat_dep, "hi", "--no-stream"], chat_floor,
                        "the minimal httpx script", bai, env),
    ]
