"""Section 2 of the report: commands as whole processes, their floors and the peers."""

from __future__ import annotations

from typing import Any

from ._markdown import NA, Target, cell, ms, table, verdict
from ._stats import Summary, fmt_ratio, paired_ratios, summarize


def _pair(res: Any, a: str, b: str) -> Summary:
    ca, cb = res.by_cycle.get(a, {}), res.by_cycle.get(b, {})
    common = sorted(set(ca) & set(cb))
    return paired_ratios([ca[c] for c in common], [cb[c] for c in common])


def process_section(res: Any, targets: list[Target]) -> list[str]:
    out = [f"## 3. Commands as whole processes ({res.params.cycles} interleaved cycles; milliseconds, median (IQR))", ""]
    tags = []
    for key in res.commands:
        tag = key.split(":")[0]
        if tag not in ("llm", "sgpt") and tag not in tags:
            tags.append(tag)
    rows = []
    results: dict[str, dict[str, Summary]] = {}
    for tag in tags:
        for cmd, floor, name in (("help", "floor-help", "bai --help"), ("show", "floor-show", "chat-history show"),
                                 ("chat", "floor-chat", "chat round trip")):
            a, b = f"{tag}:{cmd}", f"{tag}:{floor}"
            if a not in res.commands:
                continue
            sa, sb = summarize(res.samples.get(a, [])), summarize(res.samples.get(b, []))
            ratio = _pair(res, a, b)
            results.setdefault(name, {})[tag] = ratio
            rows.append([res.commands[a].label, _fail_or(res, a, cell(sa)), ms(sa.p90) if sa.n else "",
                         res.commands[b].label, _fail_or(res, b, cell(sb)), fmt_ratio(ratio),
                         verdict(None if ratio.n == 0 else ratio.median <= 1.3)])
        for extra in ("pass", "whatif-help"):
            k = f"{tag}:{extra}"
            if k in res.commands:
                s = summarize(res.samples.get(k, []))
                ratio = _pair(res, k, f"{tag}:floor-help") if extra == "whatif-help" else None
                rows.append([res.commands[k].label, _fail_or(res, k, cell(s)), ms(s.p90) if s.n else "",
                             "`python -c \"import click\"`" if ratio else "", "", fmt_ratio(ratio) if ratio else "", ""])
    out += table(["command", "median (IQR)", "p90", "its floor", "floor median (IQR)", "÷ floor (paired)",
                   "within 1.3x"], rows)
    for name, what in (("bai --help", "`bai --help`"), ("chat-history show", "`chat-history show`"),
                       ("chat round trip", "`chat` round trip")):
        per = results.get(name, {})
        if per:
            measured = ", ".join(f"{t}: {r.median:.2f}x" for t, r in per.items() if r.n)
            ok = all(r.n and r.median <= 1.3 for r in per.values())
            targets.append(Target(f"{what} within 1.3x of its floor", measured or "failed", verdict(ok if measured else False)))
    out.append("")
    out += peers_rows(res, targets, tags)
    if res.notes:
        out += ["", *[f"- {n}" for n in res.notes]]
    if getattr(res, "profiles", None):
        out += ["", *cli_profile_section(res.profiles)]
    return out


def _fail_or(res: Any, key: str, text: str) -> str:
    if res.samples.get(key):
        n = getattr(res, "failed_runs", {}).get(key, 0)
        return text + (f" ({len(res.samples[key])} timed; failed {n} time(s), first: {res.failures[key]})"
                       if key in res.failures else "")
    if key in res.failures:
        return f"failed: {res.failures[key]}"
    return "not run"


def peers_rows(res: Any, targets: list[Target], tags: list[str]) -> list[str]:
    out = ["### The same chat round trip with the peers (each in its own venv, same instant server)", ""]
    base = f"{tags[0]}:chat" if tags else None
    rows = []
    verdicts = []
    for key in ("llm:chat", "sgpt:chat"):
        name = key.split(":")[0]
        if key in res.missing:
            rows.append([name, f"not measured: {res.missing[key]}", "", "", ""])
            verdicts.append(f"{name}: not measured")
            continue
        if key not in res.commands:
            rows.append([name, "not measured (--no-peers, or could not be installed)", "", "", ""])
            continue
        s = summarize(res.samples.get(key, []))
        ratio = _pair(res, key, base) if base else summarize([])
        rows.append([res.commands[key].label, _fail_or(res, key, cell(s)), ms(s.p90) if s.n else "",
                     fmt_ratio(ratio), verdict(None if ratio.n == 0 else ratio.median >= 3)])
        if ratio.n:
            verdicts.append((name, ratio.median))
    out += table(["command", "median (IQR)", "p90", f"÷ bai chat ({tags[0] if tags else '?'}; paired)",
                   "bai ≥ 3x faster"], rows)
    measured = [v for v in verdicts if isinstance(v, tuple)]
    if measured:
        targets.append(Target("`chat` at least 3x faster than llm and sgpt",
                              ", ".join(f"{n} {r:.1f}x slower" for n, r in measured),
                              verdict(all(r >= 3 for _, r in measured))))
    else:
        targets.append(Target("`chat` at least 3x faster than llm and sgpt", "peers not run", NA))
    return out


def cli_profile_section(profiles: list[Any]) -> list[str]:
    out = ["### Where each bai command's time goes beyond its floor (dev venv)", ""]
    for prof in profiles:
        out.append(f"**`{prof.label}`** vs {prof.floor_label}: modules the floor does not import cost "
                   f"{prof.extra_import_ms:.1f} ms (sum of their own import times, median of 3 runs); the run itself, "
                   f"imports excluded, {prof.runtime_total_ms:.1f} ms under cProfile."
                   + (f" Problem: {prof.problem}" if prof.problem else ""))
        out.append("")
        if prof.extra_imports:
            out.append("Imports beyond the floor (top two levels of the import tree, cumulative ms): " + ", ".join(
                f"`{'  ' * r.depth}{r.name}` {r.cumulative_ms:.1f}" for r in prof.extra_imports))
            out.append("")
        if prof.runtime_top and prof.runtime_total_ms >= 2:
            out += table(["function (run time only)", "cumulative ms", "own ms", "calls"],
                          [[f"`{n}`", f"{ct:.2f}", f"{tt:.2f}", str(nc)] for ct, tt, nc, n in prof.runtime_top[:10]])
            out.append("")
    return out


# -- streaming ----------------------------------------------------------------------------
