"""The results as one markdown document: header, targets, then a table per measurement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._markdown import Target, table
from ._report_commands import process_section
from ._report_concurrency import concurrency_section
from ._report_scale import scale_section
from ._report_store import store_section
from ._report_stream import stream_section


@dataclass
class Meta:
    date: str
    machine: str
    command: str
    elapsed_s: float
    versions: str
    mode: str
    disk: str
    notes: list[str] = field(default_factory=list)


def render(meta: Meta, sections: list[tuple[str, Any]], failed: dict[str, str]) -> str:
    targets: list[Target] = []
    body: list[str] = []
    makers = {"store": store_section, "scale": scale_section, "process": process_section, "stream": stream_section,
              "concurrency": concurrency_section}
    for name, res in sections:
        try:
            body += makers[name](res, targets) + [""]
        except Exception as e:  # a table that cannot be drawn is a finding, not a crash
            body += [f"## {name}: the results could not be tabulated: {type(e).__name__}: {e}", ""]
    for name, why in failed.items():
        body += [f"## {name}: did not run to the end: {why}", ""]
    head = [
        "# bai benchmarks", "",
        f"- date: {meta.date}",
        f"- machine: {meta.machine}",
        f"- disk: {meta.disk}",
        f"- command: `{meta.command}` ({meta.mode}; took {meta.elapsed_s:.0f} s)",
        f"- versions: {meta.versions}",
        "- every figure is from this one run; ratios are paired (each sample against the one taken next to it, "
        "in an order that rotates), reported as median (IQR)", "",
        "## Targets", "",
    ]
    head += table(["target", "measured", "verdict"], [[t.what, t.measured, t.verdict] for t in targets])
    head.append("")
    tail = []
    if meta.notes:
        tail = ["## Notes", "", *[f"- {n}" for n in meta.notes], ""]
    return "\n".join(head + body + tail)
