"""Summaries of timing samples: median, p90/p99, IQR, and paired ratios (for interleaved runs)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (q in [0, 1]); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    if len(s) == 1:
        return float(s[0])
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p10: float
    p25: float
    p75: float
    p90: float
    p99: float
    minimum: float
    maximum: float

    @property
    def iqr(self) -> float:
        return self.p75 - self.p25


def summarize(values: Sequence[float]) -> Summary:
    v = [float(x) for x in values]
    return Summary(
        n=len(v), median=quantile(v, 0.5), p10=quantile(v, 0.1), p25=quantile(v, 0.25),
        p75=quantile(v, 0.75), p90=quantile(v, 0.9), p99=quantile(v, 0.99),
        minimum=min(v) if v else math.nan, maximum=max(v) if v else math.nan,
    )


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> Summary:
    """a[i] / b[i] for samples taken side by side (ABAB...), so slow drift cancels."""
    n = min(len(a), len(b))
    return summarize([a[i] / b[i] for i in range(n) if b[i] > 0])


def ms(ns: float) -> float:
    return ns / 1e6


def fmt_ms(value_ms: float) -> str:
    if math.isnan(value_ms):
        return "n/a"
    if value_ms >= 100:
        return f"{value_ms:.0f} ms"
    if value_ms >= 10:
        return f"{value_ms:.1f} ms"
    if value_ms >= 1:
        return f"{value_ms:.2f} ms"
    return f"{value_ms * 1000:.0f} µs"


def fmt_spread_ms(s: Summary, scale: float = 1e-6) -> str:
    """'median (IQR a–b, p90 c)' for samples in ns (scale converts to ms)."""
    return (f"{fmt_ms(s.median * scale)} (IQR {fmt_ms(s.p25 * scale)}–{fmt_ms(s.p75 * scale)}, "
            f"p90 {fmt_ms(s.p90 * scale)})")


def fmt_ratio(s: Summary) -> str:
    if s.n == 0 or math.isnan(s.median):
        return "n/a"
    return f"{s.median:.2f}x (IQR {s.p25:.2f}–{s.p75:.2f})"


def fmt_bytes(n: float) -> str:
    if math.isnan(n):
        return "n/a"
    if abs(n) >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if abs(n) >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n:.0f} B"
