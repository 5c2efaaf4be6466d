#!/usr/bin/env bash
# The project's test command: installs everything the tests need, then runs them all.
#   - the project and its test extras into .venv (inside the clone, ignored by git);
#   - the real servers of the end-to-end tests (llama.cpp + a Gemma model, LiteLLM, vLLM) and
#     Backend.AI's CLI, built once and cached outside the clone in
#     ${BAI_TEST_CACHE:-~/.cache/bai-test-servers} (about 16 min from an empty cache).
# Extra arguments go to pytest, e.g. `bash tests/run.sh tests/store -x`.
# BAI_REQUIRE_ALL_TESTS=1 (.ci/run sets it): a skipped or deselected test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${BAI_REQUIRE_ALL_TESTS:-0}" = 1 ] && [ "${BAI_SKIP_REAL_SERVERS:-0}" = 1 ]; then
    echo "tests/run.sh: BAI_SKIP_REAL_SERVERS=1 but BAI_REQUIRE_ALL_TESTS=1: every test must run" >&2
    exit 2
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
if [ -f tests/realservers/install.py ] && [ "${BAI_SKIP_REAL_SERVERS:-0}" != 1 ]; then
    .venv/bin/python -m tests.realservers.install
fi
exec .venv/bin/python -m pytest "$@"
