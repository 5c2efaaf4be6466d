"""BAI_REQUIRE_ALL_TESTS=1 (.ci/run sets it) is honoured: a skipped or deselected test fails the
run, and the real servers cannot be skipped, whatever CI says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import REPO
from tests.realservers import fixtures

PROBE = "tests/offline/skip_probe.py"


def run_probe(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("BAI_REQUIRE_ALL_TESTS", "BAI_SKIP_REAL_SERVERS", "CI")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args], cwd=REPO,
                          env=environ, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_without_the_variable_a_skip_is_a_skip():
    r = run_probe(f"{PROBE}::test_that_skips", f"{PROBE}::test_that_passes", f"{PROBE}::test_that_xfails")
    assert r.returncode == 0, r.stdout[-2000:]
    assert "1 passed, 1 skipped, 1 xfailed" in r.stdout


def test_with_the_variable_a_skip_fails_the_run():
    r = run_probe(f"{PROBE}::test_that_skips", f"{PROBE}::test_that_passes", f"{PROBE}::test_that_xfails",
                  BAI_REQUIRE_ALL_TESTS="1")
    assert r.returncode == 1, r.stdout[-2000:]
    assert "1 failed, 1 passed, 1 xfailed" in r.stdout  # an expected failure is not a skip
    assert "skipped (a probe that skips), but BAI_REQUIRE_ALL_TESTS=1" in r.stdout


def test_with_the_variable_deselecting_fails_the_run():
    r = run_probe(PROBE, "-k", "passes", BAI_REQUIRE_ALL_TESTS="1")
    assert r.returncode == 1, r.stdout[-2000:]
    assert "1 passed, 2 deselected" in r.stdout and "deselected, but BAI_REQUIRE_ALL_TESTS=1" in r.stdout
    assert run_probe(PROBE, "-k", "passes").returncode == 0


@pytest.mark.parametrize("env", [{"BAI_REQUIRE_ALL_TESTS": "1"}, {"CI": "true"}, {"CI": "1"}, {"CI": "woodpecker"}])
def test_real_servers_cannot_be_skipped_when_all_tests_must_run(request, monkeypatch, env):
    for name in ("BAI_REQUIRE_ALL_TESTS", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BAI_SKIP_REAL_SERVERS", "1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(BaseException) as info:  # BaseException: a skip must be seen here too
        fixtures._require(request, ("litellm",))
    assert info.type is pytest.fail.Exception and "real-server tests must run" in str(info.value)


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_real_servers_can_be_skipped_on_a_developers_machine(request, monkeypatch, ci):
    monkeypatch.delenv("BAI_REQUIRE_ALL_TESTS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    if ci is not None:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("BAI_SKIP_REAL_SERVERS", "1")
    with pytest.raises(pytest.skip.Exception):
        fixtures._require(request, ("litellm",))


def test_ci_run_sets_the_variable_and_run_sh_refuses_to_skip_the_installs():
    assert "export BAI_REQUIRE_ALL_TESTS=1" in (REPO / ".ci" / "run").read_text()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(BAI_REQUIRE_ALL_TESTS="1", BAI_SKIP_REAL_SERVERS="1", PYTHON="/nonexistent/python")
    r = subprocess.run(["bash", str(REPO / "tests" / "run.sh")], env=env, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "every test must run" in r.stderr, r  # before installing anything
