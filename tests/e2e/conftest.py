"""Fixtures of the end-to-end tests: a private BAI_CHAT_HOME per test, and deployments
configured (through `bai` itself) against the session's real servers."""

from __future__ import annotations

import pytest

from .helpers import G, M, configure


@pytest.fixture
def home(tmp_path):
    # Not created: bai must create it (0700) itself, and some tests check it never does.
    return tmp_path / "bai-home"


@pytest.fixture
def llama_dep(home, llama_server, recording_proxy):
    """Deployment "g" -> recording proxy -> llama-server; returns the proxy."""
    proxy = recording_proxy(llama_server)
    configure(home, G, proxy.root_url)
    return proxy


@pytest.fixture
def litellm_dep(home, litellm_server, recording_proxy):
    """Deployment "m" -> recording proxy -> LiteLLM (master key as the token); returns the proxy."""
    proxy = recording_proxy(litellm_server)
    configure(home, M, proxy.root_url, "--token", litellm_server.api_key)
    return proxy
