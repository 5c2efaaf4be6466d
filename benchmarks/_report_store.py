"""Section 1 of the report: the store against its baselines and the disk's limit."""

from __future__ import annotations

import math
from typing import Any

from ._markdown import Target, cell, ms, table, verdict
from ._stats import Summary, fmt_bytes, fmt_ratio, paired_ratios, summarize


def store_section(res: Any, targets: list[Target]) -> list[str]:
    from ._store_bench import BAI, BARE, BARE_SAME, JSON, READ, SQL_DELETE, SQL_WAL

    p = res.params
    out = [f"## 1. Store at steady state ({p.deployments} deployments at their cap of {p.cap_messages} messages, "
           f"{p.msg_bytes}-byte messages)", ""]
    out.append(f"### Durable append of one round ({len(res.append[BAI])} of each, interleaved; the page cache is "
               "synced, untimed, before each)")
    out.append("")
    rows = []
    for key in (BAI, JSON, SQL_DELETE, SQL_WAL, BARE, BARE_SAME):
        s = summarize(res.append[key])
        ratio = paired_ratios(res.append[key], res.append[BARE])
        same = paired_ratios(res.append[key], res.append[BARE_SAME])
        rows.append([res.names[key], ms(s.median), ms(s.p99), f"{ms(s.p25)}–{ms(s.p75)}",
                     "1 (the limit)" if key == BARE else fmt_ratio(ratio),
                     "1" if key == BARE_SAME else fmt_ratio(same)])
    out += table(["implementation", "p50", "p99", "IQR", "÷ bare write+fsync (paired)",
                   "÷ the same durable I/O done bare (paired)"], rows)
    out.append("")
    out.append("At the cap every append drops the oldest round, so the log is replaced whole (strict caps: it never "
               "holds more than the cap, even for a moment): a tmp file, two fsyncs and a rename. Below the cap an "
               "append is one write and one fsync: section 2.")
    out.append("")
    out.append(f"### Context build: the last {p.context_limit} messages of one deployment, in process")
    out.append("")
    rows = []
    for key in (BAI, JSON, SQL_DELETE, SQL_WAL, READ):
        s = summarize(res.context[key])
        rows.append([res.names[key] if key != BAI else "bai Store.context", ms(s.median), ms(s.p90),
                     f"{ms(s.p25)}–{ms(s.p75)}", fmt_ratio(paired_ratios(res.context[key], res.context[READ]))])
    out += table(["implementation", "p50", "p90", "IQR", "÷ reading the log file (paired)"], rows)
    out.append("")
    out.append("### bai context build vs rounds ever recorded (same deployment count, target deployment capped)")
    out.append("")
    ns = sorted(res.context_by_n)
    meds = {n: summarize(res.context_by_n[n]) for n in ns}
    out += table(["rounds ever recorded"] + [f"{n:,}" for n in ns] + ["max/min of medians"],
                  [["p50 (IQR)"] + [cell(meds[n]) for n in ns] + [_flatness(meds)],
                   ["p90"] + [ms(meds[n].p90) for n in ns] + [""]])
    # Below the cap (50 rounds) a deployment simply holds less, so it is cheaper: flatness in
    # "rounds ever recorded" is judged from the first point at the cap on, and all points are shown.
    at_cap = {n: m for n, m in meds.items() if n >= CAP_ROUNDS}
    flat = _flat_ratio(at_cap or meds)
    first = min(at_cap or meds)
    targets.append(Target(f"context build flat (max/min < 1.5) from {first:,} (the cap reached) to {ns[-1]:,} rounds ever recorded",
                          f"{flat:.2f} (with the {ns[0]:,}-round point, below the cap: {_flat_ratio(meds):.2f})",
                          verdict(flat < 1.5)))
    out.append("")
    out.append("### Compaction")
    out.append("")
    rows = []
    s = summarize(res.compact_one)
    rows.append(["bai `Store.compact(dep)`, one deployment at its cap", ms(s.median), f"{ms(s.p25)}–{ms(s.p75)}", str(s.n)])
    s = summarize(res.compact_all)
    rows.append([f"bai `Store.compact()`, all {p.deployments} deployments", ms(s.median), f"{ms(s.p25)}–{ms(s.p75)}", str(s.n)])
    for n, (t, size) in sorted(res.compact_history.items()):
        rows.append([f"bai `Store.compact(dep)` of a log holding {n:,} rounds ({fmt_bytes(size)}) down to the cap",
                     ms(t), "", "1"])
    for key in (SQL_DELETE, SQL_WAL):
        s = summarize(res.vacuum[key])
        rows.append([f"{res.names[key]}: `VACUUM` (its cap is a DELETE in every append)", ms(s.median),
                     f"{ms(s.p25)}–{ms(s.p75)}", str(s.n)])
    rows.append([f"{res.names[JSON]}", "none: trimmed in every rewrite", "", ""])
    out += table(["what", "median", "IQR", "n"], rows)
    out.append("")
    out.append(f"### Bytes on disk per deployment at the cap ({p.cap_messages} messages = "
               f"{fmt_bytes(res.payload_per_deployment)} of message text; byte cap {fmt_bytes(res.byte_cap)})")
    out.append("")
    d = res.disk
    rows = [
        ["bai: its log `bai/logs/<id>.jsonl`", fmt_bytes(d[BAI]["log"]), f"{d[BAI]['log'] / res.payload_per_deployment:.2f}",
         f"{100 * d[BAI]['log'] / res.byte_cap:.1f}%"],
        ["bai: its share of `history.json`", fmt_bytes(d[BAI]["projection"]),
         f"{d[BAI]['projection'] / res.payload_per_deployment:.2f}", f"{100 * d[BAI]['projection'] / res.byte_cap:.1f}%"],
        ["bai: total", fmt_bytes(d[BAI]["total"]), f"{d[BAI]['total'] / res.payload_per_deployment:.2f}", ""],
    ]
    for key in (JSON, SQL_DELETE, SQL_WAL):
        rows.append([res.names[key], fmt_bytes(d[key]["total"]), f"{d[key]['total'] / res.payload_per_deployment:.2f}", ""])
    out += table(["file", "bytes", "÷ message text", "of the byte cap"], rows)
    out.append("")
    out.append("bai's records carry per-round metadata (seq, times, model, usage, CRC) that the baselines' "
               "rows/objects mostly do not; history.json holds a second copy for Backend.AI.")
    if res.profile is not None:
        out += ["", *profile_section(res.profile)]
    if res.checks:
        out += ["", "Checks that failed: " + "; ".join(res.checks)]
    return out


CAP_ROUNDS = 50  # the default cap of 100 messages, in rounds


def _flat_ratio(meds: dict[int, Summary]) -> float:
    vals = [m.median for m in meds.values() if m.n]
    return max(vals) / min(vals) if vals else math.nan


def _flatness(meds: dict[int, Summary]) -> str:
    return f"{_flat_ratio(meds):.2f}"


def profile_section(prof: Any) -> list[str]:
    out = [f"### Where one steady-state `record_round` goes (cProfile of {prof.appends} appends, fsync and write counted)", ""]
    out.append(f"{prof.fsyncs_per_append:.1f} fsyncs per append, {prof.fsync_ms_per_append:.2f} ms in fsync; "
               f"{fmt_bytes(prof.bytes_written_per_append)} written per append; "
               f"{prof.wall_ms_per_append:.2f} ms per append under the profiler.")
    out.append("")
    out += table(["part (cumulative, overlapping)", "ms per append"], [[a, f"{b:.2f}"] for a, b in prof.parts])
    out.append("")
    out += table(["function (by own time)", "own ms per append", "cumulative ms"],
                  [[f"`{n}`", f"{a:.2f}", f"{b:.2f}"] for n, a, b in prof.top[:8]])
    return out


# -- processes ----------------------------------------------------------------------------
