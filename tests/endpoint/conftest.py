from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.endpoint._limits import RetryPolicy
from cli.endpoint._transport import EndpointClient

from .server import ScriptedServer

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours proxy variables; traffic to the test server must stay on 127.0.0.1.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    try:
        yield srv
    finally:
        srv.stop()
    assert srv.errors == [], "the test server itself failed"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(server: ScriptedServer, sleeps: list[float]) -> Iterator[Any]:
    """EndpointClient factory: short timeouts, retries that record their waits instead of sleeping."""
    clients: list[EndpointClient] = []

    def make(base: str | None = None, **kwargs: Any) -> EndpointClient:
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("connect_timeout", 2.0)
        kwargs.setdefault("retry", RetryPolicy(sleep=sleeps.append))
        client = EndpointClient(base or server.url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
