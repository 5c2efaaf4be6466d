"""The other tools, each in its own virtual environment in a cache outside the clone.

    ${BAI_BENCH_CACHE:-~/.cache/bai-bench}/
        llm/        pip install llm==0.36
        sgpt/       shell-gpt 1.5.1 (+ "openai<3" and click beside it), else 1.0.1
        bai/        a regular (non-editable) install of this clone's bai, for fairness to the floor

Installed by the benchmark the first time (pip, under timeouts), reused after: a venv counts as
installed when its marker file holds the same spec. A peer that cannot be installed is a row
that says why; the benchmark goes on.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
DEV_VENV = REPO / ".venv"
PIP_TIMEOUT = 600  # the whole install
PIP_FLAGS = ["--quiet", "--disable-pip-version-check", "--timeout", "30", "--retries", "2"]  # each connection
LLM_SPEC = ["llm==0.36"]
SGPT_SPECS = [["shell-gpt==1.5.1", "openai<3", "click"], ["shell-gpt==1.0.1"]]
BAI_DEPS = ("click", "msgspec", "httpx")  # pinned to the dev venv's versions

Log = Callable[[str], None]


@dataclass(frozen=True)
class Tool:
    name: str
    ok: bool
    bin: Path | None = None  # the venv's bin/
    version: str = ""
    note: str = ""  # why it is missing, or how it was installed

    def exe(self, name: str) -> str:
        assert self.bin is not None
        return str(self.bin / name)

    @property
    def python(self) -> str:
        return self.exe("python")


def cache_dir() -> Path:
    return Path(os.environ.get("BAI_BENCH_CACHE") or Path.home() / ".cache" / "bai-bench")


def dev_bai() -> Tool:
    bin_ = DEV_VENV / "bin"
    ok = (bin_ / "bai").exists()
    return Tool("bai (dev venv, editable)", ok, bin_, _pkg_version(bin_, "bai-chat") if ok else "",
                "" if ok else f"{bin_ / 'bai'} not found")


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def _pkg_version(bin_: Path, dist: str) -> str:
    try:
        r = _run([str(bin_ / "python"), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"], 30)
        return r.stdout.strip() if r.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _base_python() -> str:
    """The interpreter behind the dev venv, so every venv runs the same Python."""
    py = DEV_VENV / "bin" / "python"
    return str(py) if py.exists() else sys.executable


def _venv(path: Path, specs: list[str], marker: str, check: list[str], log: Log,
          pip_args: list[str] | None = None) -> tuple[bool, str]:
    """Make (or reuse) a venv at `path` with `specs`; True when `check` runs in it."""
    stamp = path / ".bai-bench-installed"
    bin_ = path / "bin"
    if stamp.exists() and stamp.read_text() == marker and (bin_ / check[0]).exists():
        return True, ""  # checked when it was installed; a broken tool shows as failed rows
    log(f"installing {' '.join(specs)} into {path} (once; reused after)")
    if path.exists():
        shutil.rmtree(path)
    try:
        r = _run([_base_python(), "-m", "venv", str(path)], 120)
        if r.returncode != 0:
            return False, f"venv failed: {_last_line(r.stderr)}"
        r = _run([str(bin_ / "python"), "-m", "pip", "install", *PIP_FLAGS, *(pip_args or []), *specs], PIP_TIMEOUT)
        if r.returncode != 0:
            return False, f"pip install failed: {_last_line(r.stderr or r.stdout)}"
        with tempfile.TemporaryDirectory(prefix="bai-bench-check-") as home:
            r = _run([str(bin_ / check[0]), *check[1:]], 60, env=_clean_env(home))
        if r.returncode != 0:
            return False, f"installed but `{' '.join(check)}` fails: {_last_line(r.stderr or r.stdout)}"
    except subprocess.TimeoutExpired as e:
        return False, f"timed out after {e.timeout:.0f} s: {' '.join(map(str, e.cmd))[:120]}"
    except OSError as e:
        return False, f"{type(e).__name__}: {e}"
    stamp.write_text(marker)
    return True, ""


def _last_line(text: str) -> str:
    lines = [x for x in (text or "").strip().splitlines() if x.strip()]
    return lines[-1][:200] if lines else "(no output)"


def _clean_env(home: str) -> dict:
    """The environment without our and the tools' own settings; HOME in a folder of ours
    (sgpt writes ~/.config/shell_gpt on its first start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "LLM_", "BAI_", "PYTHON"))}
    env["HOME"] = home
    env["OPENAI_API_KEY"] = "sk-bench"
    env["CHAT_CACHE_PATH"] = os.path.join(home, "chat_cache")
    env["CACHE_PATH"] = os.path.join(home, "cache")
    return env


def ensure_llm(log: Log) -> Tool:
    path = cache_dir() / "llm"
    ok, why = _venv(path, LLM_SPEC, " ".join(LLM_SPEC), ["llm", "--version"], log)
    if not ok:
        return Tool("llm", False, note=why)
    return Tool("llm", True, path / "bin", _pkg_version(path / "bin", "llm"))


def ensure_sgpt(log: Log) -> Tool:
    path = cache_dir() / "sgpt"
    why = ""
    for specs in SGPT_SPECS:
        ok, why = _venv(path, specs, " ".join(specs), ["sgpt", "--version"], log)
        if ok:
            return Tool("sgpt", True, path / "bin", _pkg_version(path / "bin", "shell-gpt"),
                        note=f"installed as: {' '.join(specs)}")
        log(f"shell-gpt ({' '.join(specs)}): {why}")
    return Tool("sgpt", False, note=why)


def _source_hash() -> str:
    h = hashlib.sha256()
    files = [REPO / "pyproject.toml"] + sorted((REPO / "cli").glob("*.py")) + sorted((REPO / "eventlog").glob("*.py"))
    for f in files:
        h.update(f.relative_to(REPO).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def ensure_bai_regular(log: Log) -> Tool:
    """This clone's bai, installed the ordinary way (a wheel: no editable finder), with the dev
    venv's versions of its dependencies. The venv and dependencies are made once; bai itself is
    reinstalled (no deps, no build isolation: a few seconds) whenever its sources change, from a
    copy, so nothing is written into the clone. It measures the working tree as it is now."""
    path = cache_dir() / "bai"
    pins = _dev_pins()
    ok, why = _venv(path, [*pins, "setuptools>=68", "wheel"], " ".join(pins), ["python", "-c", "import click, msgspec, httpx"], log)
    if not ok:
        return Tool("bai (regular install)", False, note=why)
    stamp = path / ".bai-bench-source"
    source = _source_hash()
    bin_ = path / "bin"
    if not (stamp.exists() and stamp.read_text() == source and (bin_ / "bai").exists()):
        log(f"installing this clone's bai (sources {source}) into {path}")
        with tempfile.TemporaryDirectory(prefix="bai-bench-src-") as tmp:
            src = Path(tmp) / "bai"
            src.mkdir()
            for name in ("pyproject.toml", "README.md"):
                shutil.copy2(REPO / name, src / name)
            for pkg in ("cli", "eventlog"):
                shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            try:
                r = _run([str(bin_ / "python"), "-m", "pip", "install", *PIP_FLAGS, "--no-deps", "--no-build-isolation",
                          "--force-reinstall", str(src)], PIP_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired) as e:
                return Tool("bai (regular install)", False, note=f"pip install of bai failed: {e}")
        if r.returncode != 0:
            stamp.unlink(missing_ok=True)
            return Tool("bai (regular install)", False, note=f"pip install of bai failed: {_last_line(r.stderr or r.stdout)}")
        stamp.write_text(source)
    return Tool("bai (regular install)", True, bin_, _pkg_version(bin_, "bai-chat"))


def _dev_pins() -> list[str]:
    pins = []
    for dist in BAI_DEPS:
        v = _pkg_version(DEV_VENV / "bin", dist)
        pins.append(f"{dist}=={v}" if v else dist)
    return pins


# -- pointing each tool at the instant server ---------------------------------------------


def llm_env(tool: Tool, home: Path, base_url: str, model: str) -> dict:
    """llm reads extra-openai-models.yaml in LLM_USER_PATH and logs to logs.db there."""
    user = home / "llm"
    user.mkdir(parents=True, exist_ok=True)
    (user / "extra-openai-models.yaml").write_text(
        f"- model_id: bench\n  model_name: {model}\n  api_base: \"{base_url}/v1\"\n  api_key_name: bench\n")
    (user / "keys.json").write_text('{"bench": "sk-bench"}\n')
    env = _clean_env(str(home))
    env["LLM_USER_PATH"] = str(user)
    return env


def sgpt_env(tool: Tool, home: Path, base_url: str, model: str) -> dict:
    """shell-gpt reads its settings from the environment; HOME and the caches point into `home`."""
    env = _clean_env(str(home))
    env.update({
        "API_BASE_URL": f"{base_url}/v1", "OPENAI_API_KEY": "sk-bench",
        "DEFAULT_MODEL": model, "CHAT_CACHE_PATH": str(home / "chat_cache"), "CACHE_PATH": str(home / "cache"),
        "OPENAI_USE_FUNCTIONS": "false", "SHOW_FUNCTIONS_OUTPUT": "false", "PRETTIFY_MARKDOWN": "false",
        "USE_LITELLM": "false", "REQUEST_TIMEOUT": "60",
    })
    return env
