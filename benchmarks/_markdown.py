"""What every section of the report shares: the target rows and markdown formatting."""

from __future__ import annotations

from dataclasses import dataclass

from ._stats import Summary, fmt_ms

MET, MISSED, NA = "met", "**MISSED**", "not measured"


@dataclass
class Target:
    what: str
    measured: str
    verdict: str


def ms(ns: float) -> str:
    return fmt_ms(ns / 1e6)


def cell(s: Summary) -> str:
    if s.n == 0:
        return "n/a"
    return f"{ms(s.median)} ({ms(s.p25)}–{ms(s.p75)})"


def verdict(ok: bool | None) -> str:
    return NA if ok is None else (MET if ok else MISSED)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


# -- the store ----------------------------------------------------------------------------
