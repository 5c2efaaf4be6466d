"""The suite's plugins, and its skip policy.

BAI_REQUIRE_ALL_TESTS=1 (.ci/run sets it) means every test must run: a skip is a failure, and
so is deselecting tests (-m, -k, --deselect). A CI run cannot then pass with the real servers
skipped, or with any other test left out, whatever else the environment says (CI or not).
"""

from __future__ import annotations

import os

import pytest

# The real-server fixtures (llama-server, LiteLLM, vLLM, the recording proxy) for every test.
pytest_plugins = ["tests.realservers.fixtures"]

REQUIRE_ALL = "BAI_REQUIRE_ALL_TESTS"


def require_all_tests() -> bool:
    return os.environ.get(REQUIRE_ALL, "").strip().lower() in ("1", "true", "yes", "on")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and require_all_tests():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped ({reason}), but {REQUIRE_ALL}=1: every test must run"


def pytest_deselected(items):
    if require_all_tests():
        _deselected.extend(item.nodeid for item in items)


_deselected: list[str] = []


def pytest_sessionfinish(session, exitstatus):
    if _deselected:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"{len(_deselected)} test(s) deselected, but {REQUIRE_ALL}=1: every test must run "
                                f"(first: {_deselected[0]})", red=True)
