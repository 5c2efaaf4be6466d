"""Probes for tests/offline/test_skip_policy.py, run only by it (the name does not start with
test_, so the suite never collects this file itself)."""

import pytest


def test_that_skips():
    pytest.skip("a probe that skips")


def test_that_passes():
    pass


@pytest.mark.xfail(strict=True, reason="a probe that fails as expected")
def test_that_xfails():
    assert False
