"""Section 4 of the report: rounds saved with many processes on one conversation."""

from __future__ import annotations

from typing import Any

from ._markdown import NA, Target, table, verdict
from ._stats import quantile


def concurrency_section(res: Any, targets: list[Target]) -> list[str]:
    out = ["## 5. Concurrency: one conversation, N processes at once", ""]
    rows = []
    by: dict[tuple[str, int], list[Any]] = {}
    for w in res.waves:
        by.setdefault((w.tool, w.level), []).append(w)
    for (tool, level), waves in by.items():
        sent = sum(w.sent for w in waves)
        ack = sum(w.acknowledged for w in waves)
        saved = sum(w.saved for w in waves)
        stored = sum(w.stored for w in waves if w.stored is not None) if any(w.stored is not None for w in waves) else None
        counts: dict[str, int] = {}
        for e in (e for w in waves for e in w.errors):
            counts[e] = counts.get(e, 0) + 1
        errs = [f"{e} (×{n})" for e, n in sorted(counts.items(), key=lambda kv: -kv[1])]
        rows.append([res.labels.get(tool, tool), str(level), str(len(waves)), str(sent), str(ack),
                     f"{saved} ({100 * saved / sent:.0f}%)", "" if stored is None else str(stored),
                     str(sum(w.duplicates for w in waves)), f"{quantile([w.seconds for w in waves], 0.5):.1f} s",
                     "; ".join(errs)[:300]])
    for tool, why in res.missing.items():
        rows.append([tool, "", "", "", "", f"not measured: {why}", "", "", "", ""])
    out += table(["tool", "at once", "waves", "rounds sent", "exit 0", "saved in the conversation",
                   "stored at all", "duplicates", "wall per wave", "errors"], rows)
    for tool in ("llm", "sgpt"):
        if tool not in res.labels and tool not in res.missing:
            out.append(f"\n{tool}: not measured (--no-peers, or could not be installed).")
    if any(w.stored is not None for w in res.waves):
        out.append("\nllm: a round \"stored at all\" but not \"in the conversation\" is in logs.db on a fork: two "
                   "processes read the same conversation tip, and `llm -c` continues only one of them.")
    bai16 = by.get(("bai", 16), [])
    if bai16:
        sent = sum(w.sent for w in bai16)
        saved = sum(w.saved for w in bai16)
        dups = sum(w.duplicates for w in bai16)
        targets.append(Target("100% of rounds saved under 16 concurrent processes",
                              f"{saved}/{sent} saved, {dups} duplicates", verdict(saved == sent and dups == 0)))
    else:
        targets.append(Target("100% of rounds saved under 16 concurrent processes", "not run", NA))
    return out


# -- the whole document -------------------------------------------------------------------
