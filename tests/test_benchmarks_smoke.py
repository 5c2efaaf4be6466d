"""The benchmark command runs on a clean clone and reports every target (timings live in
benchmarks/, never in tests: this only checks that the measuring works)."""

import subprocess
import sys
from pathlib import Path

TARGETS = [
    "context build flat", "append at 100 deployments within 1.2x", "context at 100 deployments within 1.2x",
    "append below the cap p50 within 3x", "`bai --help`", "`chat-history show`",
    "`chat` round trip", "streaming adds under 1 ms", "memory flat in stream length", "16",
]


def test_quick_benchmark_runs_and_reports_every_target(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-peers", "--workdir", str(tmp_path)],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = done.stdout
    for target in TARGETS:
        assert target in report, f"no row for {target!r} in:\n{report[-3000:]}"
    assert "Traceback" not in done.stderr
