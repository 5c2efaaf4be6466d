"""`python -m benchmarks`: bai beside what a user would pick instead and what the machine allows.

    .venv/bin/python -m benchmarks                 # full run (~10 min on 2 cores); peers installed once
    .venv/bin/python -m benchmarks --quick         # under a minute (once the peers are installed)
    .venv/bin/python -m benchmarks --quick --no-peers   # no installs, no network
    .venv/bin/python -m benchmarks --smoke         # seconds: every target gets a figure, none to trust
    .venv/bin/python -m benchmarks --write         # also write benchmarks/RESULTS.md

Run it with the dev venv's Python (the store is measured in process). The markdown goes to
stdout, progress to stderr. Exit status 0 when every section ran, whether or not targets were
met (a missed target is a finding); 1 when a section could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import _peers
from ._report import Meta, render

SECTIONS = ("store", "scale", "process", "stream", "concurrency")
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions: under a minute")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny parameter sets and --no-peers: each target gets a figure in seconds (a check "
                         "that the measuring works; the figures mean nothing)")
    ap.add_argument("--no-peers", action="store_true",
                    help="skip llm, sgpt and the regular install of bai: no installs, no network")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    ap.add_argument("--write", nargs="?", const=str(RESULTS), default=None, metavar="PATH",
                    help=f"also write the markdown to PATH (default {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS})")
    ap.add_argument("--workdir", default=None, help="where the temporary stores go (default: $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    if args.smoke:
        args.no_peers = True
    args.mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    t0 = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {message}", file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="bai-bench-", dir=args.workdir))
    log(f"working in {work}")
    try:
        return _run(args, work, log, t0)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path, log, t0: float) -> int:
    from ._instant_server import InstantServer

    dev = _peers.dev_bai()
    if not dev.ok:
        print(f"benchmarks: {dev.note}; install bai into {_peers.DEV_VENV} first", file=sys.stderr)
        return 1
    regular = llm = sgpt = None
    notes: list[str] = []
    uninstallable: dict[str, str] = {}  # peer -> why, shown in its rows
    if not args.no_peers:
        log(f"peers: venvs in {_peers.cache_dir()} (installed the first time, reused after)")
        regular = _peers.ensure_bai_regular(log)
        llm = _peers.ensure_llm(log)
        sgpt = _peers.ensure_sgpt(log)
        for tool in (regular, llm, sgpt):
            if not tool.ok:
                notes.append(f"{tool.name} could not be installed: {tool.note}")
                log(f"{tool.name}: {tool.note}")
                if tool.name in ("llm", "sgpt"):
                    uninstallable[tool.name] = f"could not be installed: {tool.note}"
        regular = regular if regular.ok else None
        llm = llm if llm.ok else None
        sgpt = sgpt if sgpt.ok else None
    else:
        notes.append("--no-peers: llm, shell-gpt and the regular (non-editable) install of bai were not measured.")
    quick = args.quick or args.smoke
    sections: list[tuple[str, object]] = []
    failed: dict[str, str] = {}
    t_setup = time.perf_counter()
    with InstantServer() as server:
        for name in args.sections:
            sub = work / name
            sub.mkdir()
            started = time.perf_counter()
            try:
                res = _section(name, args.mode, sub, server, dev, regular, llm, sgpt, log)
                for peer, why in uninstallable.items():
                    if name == "process":
                        res.missing.setdefault(f"{peer}:chat", why)
                    elif name == "concurrency":
                        res.missing.setdefault(peer, why)
            except Exception as e:
                failed[name] = f"{type(e).__name__}: {e}"
                log(f"{name} failed: {failed[name]}")
                if os.environ.get("BAI_BENCH_DEBUG"):
                    traceback.print_exc()
                continue
            sections.append((name, res))
            log(f"{name}: {time.perf_counter() - started:.1f} s")
    notes += _notes(sections, quick)
    if args.smoke:
        notes.append("--smoke: each figure from one to a few samples, to check that every target still gets "
                     "one; none of them means anything.")
    meta = Meta(
        date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine=_machine(), command=_command(args), elapsed_s=time.perf_counter() - t0,
        versions=_versions(dev, regular, llm, sgpt), mode=args.mode, disk=_disk(work),
        notes=notes,
    )
    log(f"measured in {time.perf_counter() - t_setup:.1f} s (setup {t_setup - t0:.1f} s)")
    text = render(meta, sections, failed)
    print(text)
    if args.write:
        Path(args.write).write_text(text + "\n")
        log(f"wrote {args.write}")
    return 1 if failed else 0


def _params(module, mode: str):
    return {"smoke": module.SMOKE, "quick": module.QUICK, "full": module.FULL}[mode]


def _section(name: str, mode: str, work: Path, server, dev, regular, llm, sgpt, log):
    if name == "store":
        from . import _store_bench as m

        return m.run(_params(m, mode), work, log)
    if name == "scale":
        from . import _scale_bench as m
        return m.run(_params(m, mode), work, log)
    if name == "process":
        from . import _process_bench as m

        bais = [("dev", dev)] + ([("regular", regular)] if regular else [])
        return m.run(_params(m, mode), work, server, bais, llm, sgpt, log, profile=mode != "smoke",
                     quick=mode != "full")
    if name == "stream":
        from . import _stream_bench as m

        return m.run(_params(m, mode), work, server, dev, log)
    if name == "concurrency":
        from . import _concurrency_bench as m

        return m.run(_params(m, mode), work, server, dev, llm, sgpt, log)
    raise ValueError(name)


def _notes(sections: list[tuple[str, object]], quick: bool) -> list[str]:
    notes = []
    found = dict(sections)
    proc = found.get("process")
    if proc is not None:
        from ._stats import summarize

        dev_pass = summarize(proc.samples.get("dev:pass", []))
        reg_pass = summarize(proc.samples.get("regular:pass", []))
        if dev_pass.n and reg_pass.n:
            notes.append(f"The editable install's `.pth` finder runs at every start of the dev venv's Python: "
                         f"`python -c pass` takes {dev_pass.median / 1e6:.1f} ms there and {reg_pass.median / 1e6:.1f} ms "
                         "in the regular install's venv. Each floor runs in the same venv as the bai it is compared "
                         "with, so both sides pay it.")
    store = found.get("store")
    if store is not None:
        from ._stats import summarize
        from ._store_bench import BARE

        bare = summarize(store.append[BARE])
        notes.append(f"A bare write+fsync here took {bare.median / 1e6:.2f} ms (p50) and {bare.p99 / 1e6:.2f} ms (p99) "
                     "in this run; it varies between runs with the host's I/O, which is why every figure is "
                     "compared with its neighbour in the same run.")
    notes.append("Before each timed store operation and each timed command the page cache is synced (untimed), so "
                 "one tool's unsynced writes (shell-gpt never fsyncs) are not paid by the next tool's fsync.")
    if quick:
        notes.append("--quick: fewer repetitions (p99 over few samples is rough), one concurrency wave per level, "
                     "the peers run every other cycle and in concurrency at 8 processes only, and the 'rounds ever "
                     "recorded' histories end with 4 real appends instead of 60.")
    return notes


def _machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f", {kib / (1 << 20):.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return (f"{cpu or platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{mem}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def _disk(path: Path) -> str:
    best = ("", "?", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype = line.split()[:3]
            if str(path).startswith(mnt.rstrip("/") + "/") and len(mnt) > len(best[0]):
                best = (mnt, dev, fstype)
    except OSError:
        pass
    return f"{best[2]} on {best[1]} (mounted at {best[0] or '?'}; the stores live under {path.parent})"


def _command(args: argparse.Namespace) -> str:
    parts = [".venv/bin/python -m benchmarks"]
    if args.smoke:
        parts.append("--smoke")
    elif args.quick:
        parts.append("--quick")
    if args.no_peers and not args.smoke:
        parts.append("--no-peers")
    if args.only != ",".join(SECTIONS):
        parts.append(f"--only {args.only}")
    if args.write:
        parts.append("--write")
    return " ".join(parts)


def _versions(dev, regular, llm, sgpt) -> str:
    repo = _peers.REPO
    commit = ""
    try:
        r = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                           timeout=10)
        commit = r.stdout.strip()
        r = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "cli", "eventlog", "pyproject.toml"],
                           capture_output=True, text=True, timeout=10)
        if r.stdout.strip():
            commit += " + uncommitted changes in cli/ or eventlog/"
    except (OSError, subprocess.TimeoutExpired):
        pass
    deps = ", ".join(f"{d} {_peers._pkg_version(dev.bin, d)}" for d in _peers.BAI_DEPS)
    out = f"bai {dev.version} ({commit or 'no git'}; {deps})"
    out += f"; llm {llm.version}" if llm else "; llm not measured"
    out += f"; shell-gpt {sgpt.version}" if sgpt else "; shell-gpt not measured"
    return out


if __name__ == "__main__":
    sys.exit(main())
