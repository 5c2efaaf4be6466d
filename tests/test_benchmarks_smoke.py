"""The benchmark command still measures every target (timings live in benchmarks/, never in
tests: this only checks that the measuring works).

`python -m benchmarks --smoke` runs every section with tiny parameter sets and no peers (about
15 s here): each target row must carry a figure, whatever its verdict. A section that breaks (a
renamed deployment, a changed store layout, a command that now fails) leaves its rows saying
"failed" or "not run", or no row at all.
"""

import re
import subprocess
import sys
from pathlib import Path

# The start of each target row's text, and what its "measured" cell must hold.
TARGETS = [
    "context build flat", "append at 10 deployments within 1.2x of 1", "context at 10 deployments within 1.2x of 1",
    "append below the cap p50 within 3x", "`bai --help` within 1.3x", "`chat-history show` within 1.3x",
    "`chat` round trip within 1.3x", "streaming adds under 1 ms", "memory flat in stream length",
    "100% of rounds saved under 16 concurrent processes",
]
NOT_MEASURED_BY_SMOKE = {"`chat` at least 3x faster than llm and sgpt": "peers not run"}  # --smoke installs no peers


def target_rows(report: str) -> dict[str, tuple[str, str]]:
    """The Targets table: row text -> (measured, verdict)."""
    table = report.split("## Targets", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("target", "---"):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_smoke_benchmark_gives_every_target_a_figure(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--workdir", str(tmp_path)],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]  # 1: a section could not run
    assert "Traceback" not in done.stderr
    report = done.stdout
    assert "did not run to the end" not in report and "could not be tabulated" not in report, report[-3000:]
    rows = target_rows(report)
    assert len(rows) == len(TARGETS) + len(NOT_MEASURED_BY_SMOKE), rows
    for start in TARGETS:
        found = [(what, cells) for what, cells in rows.items() if what.startswith(start)]
        assert len(found) == 1, f"no single row for {start!r} in {list(rows)}"
        what, (measured, verdict) = found[0]
        assert re.search(r"\d", measured) and not re.search(r"failed|not run|not measured", measured), (what, measured)
        assert verdict in ("met", "**MISSED**"), (what, verdict)
    for what, measured in NOT_MEASURED_BY_SMOKE.items():
        assert rows[what][0] == measured
