"""Fixtures of the offline tests: the real `bai` against tests/echo_server.py, which answers
`echo: <last user message> [<N> messages]`, so what reached the server shows in the answer too."""

from __future__ import annotations

import pytest

from tests.echo_server import EchoServer
from tests.e2e.helpers import configure

D = "00000000-0000-4000-8000-0000000000e1"  # a Backend.AI deployment id: history.json holds it too
D2 = "00000000-0000-4000-8000-0000000000e2"


@pytest.fixture
def home(tmp_path):
    return tmp_path / "bai-home"  # not created: bai creates it


@pytest.fixture
def echo():
    with EchoServer() as server:
        yield server


@pytest.fixture
def dep(home, echo) -> str:
    """Deployment D, configured (through bai) with the echo server as its endpoint."""
    configure(home, D, echo.root_url)
    return D
