import pytest

from tests.echo_server import EchoServer


@pytest.fixture
def server():
    """The project's OpenAI-compatible echo server on 127.0.0.1."""
    with EchoServer() as s:
        yield s
