"""Section 2 of the report: a turn's cost against the number of deployments in the store."""

from __future__ import annotations

from typing import Any

from ._markdown import Target, cell, ms, table, verdict
from ._stats import fmt_bytes, fmt_ratio, paired_ratios, summarize


def scale_section(res: Any, targets: list[Target]) -> list[str]:
    from ._scale_bench import BARE

    p = res.params
    keys = [str(n) for n in p.counts]
    first, last = keys[0], keys[-1]
    out = [f"## 2. A turn against the number of deployments ({', '.join(keys)} at their cap of {p.cap_messages} "
           f"messages, plus the target below its cap; {len(res.append[first])} of each, interleaved)", ""]
    rows = []
    for key in keys:
        rows.append([key, fmt_bytes(res.history_bytes[key]), cell(summarize(res.append[key])),
                     fmt_ratio(paired_ratios(res.append[key], res.append[first])),
                     fmt_ratio(paired_ratios(res.append[key], res.append[BARE])),
                     cell(summarize(res.context[key])), fmt_ratio(paired_ratios(res.context[key], res.context[first])),
                     f"{res.refresh[key] * 1000:.1f} ms", str(res.refreshes[key])])
    out += table(["deployments", "history.json", "append p50 (IQR)", f"÷ {first} (paired)", "÷ bare write+fsync (paired)",
                  f"context of {p.context_limit} p50 (IQR)", f"÷ {first} (paired)", "one history.json refresh",
                  "refreshes among the appends"], rows)
    out.append("")
    out.append(f"bare write+fsync (the disk's limit): {cell(summarize(res.append[BARE]))}. A turn reads and writes its "
               "own log and a stamp of a few dozen bytes; history.json is rewritten only when a refresh is due "
               "(after a clear or a Backend.AI write at once; after saves when it is under 1 MiB and this process "
               "has not refreshed within 20 times its duration, else at most once per 20 times its duration).")
    a = paired_ratios(res.append[last], res.append[first])
    c = paired_ratios(res.context[last], res.context[first])
    targets.append(Target(f"append at {last} deployments within 1.2x of {first} (p50, paired)",
                          f"{a.median:.2f}x ({ms(summarize(res.append[last]).median)} vs {ms(summarize(res.append[first]).median)})",
                          verdict(a.median <= 1.2)))
    targets.append(Target(f"context at {last} deployments within 1.2x of {first} (p50, paired)",
                          f"{c.median:.2f}x ({ms(summarize(res.context[last]).median)} vs {ms(summarize(res.context[first]).median)})",
                          verdict(c.median <= 1.2)))
    worst = max(keys, key=lambda k: paired_ratios(res.append[k], res.append[BARE]).median)
    b = paired_ratios(res.append[worst], res.append[BARE])
    targets.append(Target("append below the cap p50 within 3x of bare write+fsync (worst of the store sizes)",
                          f"{b.median:.2f}x at {worst} deployments ({ms(summarize(res.append[worst]).median)} vs "
                          f"{ms(summarize(res.append[BARE]).median)})", verdict(b.median <= 3)))
    if res.checks:
        out += ["", "Checks that failed: " + "; ".join(res.checks)]
    return out
