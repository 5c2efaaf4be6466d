"""Section 3 of the report: streaming latency and memory."""

from __future__ import annotations

import math
from typing import Any

from ._markdown import MISSED, Target, ms, table, verdict
from ._stats import Summary, fmt_bytes, quantile, summarize


def stream_section(res: Any, targets: list[Target]) -> list[str]:
    p = res.params
    out = [f"## 4. Streaming ({p.chunks:,} chunks of 7 bytes of text; server send → the consumer's stdout, "
           "through a pipe)", ""]
    rows = []
    lat: dict[str, Summary] = {}
    for who in ("bai", "floor"):
        runs = [r for r in res.runs if r.who == who and r.paced]
        ok = [r for r in runs if not r.problem]
        values = [v for r in ok for v in r.latencies_ns]
        s = summarize(values)
        lat[who] = s
        problems = "; ".join(r.problem for r in runs if r.problem)
        rows.append([res.labels[who], f"{len(ok)}/{len(runs)}", ms(s.median) if s.n else "n/a",
                     ms(s.p90) if s.n else "", ms(s.p99) if s.n else "", ms(s.maximum) if s.n else "",
                     problems])
    out += table([f"consumer (paced {p.interval_s * 1e3:.2f} ms apart)", "runs ok", "p50", "p90", "p99", "max",
                   "problems"], rows)
    out.append("")
    rows = []
    for who in ("bai", "floor"):
        runs = [r for r in res.runs if r.who == who and not r.paced and not r.problem]
        for n in p.memory_lengths:
            sel = [r for r in runs if r.chunks == n]
            if not sel:
                rows.append([res.labels[who], f"{n:,}", "failed", "", "", "", ""])
                continue
            per = quantile([r.per_chunk_ns for r in sel], 0.5)
            rss = quantile([r.peak_rss_kib for r in sel], 0.5)
            streaming = quantile([r.streaming_rss_kib for r in sel], 0.5) if who == "bai" else math.nan
            rows.append([res.labels[who], f"{n:,}", fmt_bytes(sel[0].wire_bytes), f"{per / 1e3:.1f} µs",
                         "" if math.isnan(streaming) else f"{streaming / 1024:.1f} MiB", f"{rss / 1024:.1f} MiB",
                         str(len(sel))])
    out += table(["consumer (unpaced)", "chunks", "on the wire", "time per chunk (first send → last on stdout)",
                   "peak RSS while streaming", "peak RSS at exit", "runs"], rows)
    out.append("")
    # Growth between the two longest streams: below a few MiB, growth hides in memory the start-up
    # already touched and freed (decoding history.json), so short streams show none.
    mem = {who: _marginal(res, who, "peak_rss_kib") for who in ("bai", "floor")}
    streaming = _marginal(res, "bai", "streaming_rss_kib")
    for who, m in mem.items():
        if m:
            out.append(f"- {res.labels[who]}: from {m[2]:,} to {m[3]:,} chunks, peak memory at exit grows "
                       f"{m[0] * 1024:.0f} bytes per streamed KiB on the wire ({m[1]:.2f} bytes per byte of answer text).")
    if streaming:
        out.append(f"- bai while streaming (its peak just before it saves the round): {streaming[0] * 1024:.0f} bytes per "
                   f"streamed KiB ({streaming[1]:.2f} bytes per byte of answer text).")
    added = lat["bai"].median - lat["floor"].median if lat["bai"].n and lat["floor"].n else math.nan
    if lat["bai"].n:
        targets.append(Target("streaming adds under 1 ms per chunk",
                              f"send→stdout p50 {ms(lat['bai'].median)} (floor {ms(lat['floor'].median)}; "
                              f"added {ms(added)}), p99 {ms(lat['bai'].p99)}",
                              verdict(lat["bai"].median < 1e6)))
    else:
        targets.append(Target("streaming adds under 1 ms per chunk", "failed", MISSED))
    if mem.get("bai") and streaming:
        per_wire, per_text = streaming[:2]
        total_wire, total_text = mem["bai"][:2]
        targets.append(Target("memory flat in stream length (bai must keep the answer to save it, so flat here "
                              "means: while streaming, at most 2 bytes of memory per byte of answer text)",
                              f"while streaming {per_wire * 1024:.0f} B per streamed KiB = {per_text:.1f} B per answer "
                              f"byte; with the save {total_wire * 1024:.0f} B per KiB = {total_text:.1f} B per answer byte",
                              verdict(per_text <= 2)))
    else:
        targets.append(Target("memory flat in stream length", "failed", MISSED))
    return out


def _marginal(res: Any, who: str, attr: str) -> tuple[float, float, int, int] | None:
    """(bytes per wire byte, bytes per answer byte, from, to) between the two longest streams' medians."""
    runs = [r for r in res.runs if r.who == who and not r.paced and not r.problem and getattr(r, attr)]
    lengths = sorted({r.chunks for r in runs})
    if len(lengths) < 2:
        return None
    a, b = lengths[-2], lengths[-1]
    med = {n: quantile([getattr(r, attr) * 1024 for r in runs if r.chunks == n], 0.5) for n in (a, b)}
    ra = next(r for r in runs if r.chunks == a)
    rb = next(r for r in runs if r.chunks == b)
    dy = med[b] - med[a]
    return dy / (rb.wire_bytes - ra.wire_bytes), dy / (rb.text_bytes - ra.text_bytes), a, b


# -- concurrency --------------------------------------------------------------------------
