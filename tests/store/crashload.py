"""The short workload that the power-loss, fault and kill tests interrupt, and a model of what
must be visible afterwards.

The model is independent of the store: a deployment shows the rounds acknowledged since its last
acknowledged clear, the newest `CAPS.messages // 2` of them (the rounds are small, so the byte cap
never binds). A crashed or failed operation may add its own effect or not, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eventlog import Caps, Recorded, Store
from eventlog._events import RoundEvent

from .checks import assert_log_chain_valid, assert_projection_matches, assert_within_caps, log_events, pairs

CAPS = Caps(messages=6)  # 3 rounds: the workload goes over it, so appends compact
KEEP = CAPS.messages // 2

# Deployments of Backend.AI's kind (UUIDs), so history.json is written and checked too; "n" is a
# bai-only name, never in history.json.
A, B, C, Z = (f"00000000-0000-4000-8000-00000000000{x}" for x in "abcf")
N = "named"
K = f"{A}~work"  # a conversation of A besides its main one: a stream like any other, never in history.json


def make_store(root: Path, warn=lambda m: None) -> Store:
    """The store the crash tests drive: history.json refreshed after every save (refresh_share=0),
    so its state after a crash is as demanding as it gets."""
    return Store(root, caps=CAPS, warn=warn, refresh_share=0)

Pair = tuple[str, str]
Op = tuple  # ("round", dep, user, assistant) | ("clear", dep) | ("compact",)


class Warned(list):
    """Collects a Store's warnings; each must be one line."""

    def __call__(self, message: str) -> None:
        assert "\n" not in message, f"a warning must be one line: {message!r}"
        self.append(message)

    def matching(self, text: str) -> list[str]:
        return [w for w in self if text in w]


def _round(dep: str, n: int) -> Op:
    # varied content: the log is split on b"\n" only, so U+2028 and an escaped newline are data
    extra = ["", " line\nbreak", " sep\u2028", " \u00e9\U0001F600"][n % 4]
    return ("round", dep, f"q{n}-{dep}{extra}", f"a{n}-{dep}")


SEED: list[Op] = [_round(A, 0), _round(A, 1), _round(B, 2), _round(N, 3), _round(K, 4)]

WORKLOAD: list[Op] = [
    _round(A, 10),  # a: 3 rounds, a plain append
    _round(B, 11),
    _round(A, 12),  # a over its cap: the append is a compaction
    _round(B, 13),
    ("clear", A),  # tombstone, then compaction
    _round(A, 14),  # first round after the clear
    _round(C, 15),  # a new deployment: a new log file
    _round(B, 16),  # b over its cap
    _round(N, 18),  # a bai-only deployment: history.json untouched
    _round(K, 19),  # A's other conversation: A's main one and history.json untouched
    _round(K, 21),
    _round(K, 22),  # over its cap (A's): the append is a compaction
    ("compact",),
    _round(A, 17),
    ("clear", C),
    ("clear", K),  # a conversation's clear removes its log
    _round(K, 23),  # and the name starts afresh
    ("clear", N),
]

DEPLOYMENTS = [A, B, C, N, K, Z]  # z: only ever written by the checks


def apply(store: Store, op: Op):
    if op[0] == "round":
        return store.record_round(op[1], op[2], op[3])
    if op[0] == "clear":
        return store.clear(op[1])
    store.compact()
    return None


@dataclass
class Expected:
    """What acknowledged operations have made visible."""

    acked: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)  # since the last clear
    seq_of: dict[Pair, int] = field(default_factory=dict)  # every acknowledged round's seq
    inflight: Op | None = None  # the operation running when the crash or fault hit

    def ack(self, op: Op, result) -> None:
        if op[0] == "round":
            assert isinstance(result, Recorded), result
            self.acked.setdefault(op[1], []).append((result.seq, op[2], op[3]))
            self.seq_of[(op[2], op[3])] = result.seq
        elif op[0] == "clear":
            self.acked[op[1]] = []

    def visible(self, dep: str) -> list[Pair]:
        return [(u, a) for _, u, a in self.acked.get(dep, [])][-KEEP:]

    def options(self, dep: str, inflight: Op | None) -> list[list[Pair]]:
        """What may be visible while `inflight` is unacknowledged: without it or with it."""
        now = self.visible(dep)
        if inflight is None or len(inflight) < 2 or inflight[1] != dep:
            return [now]
        if inflight[0] == "round":
            with_it = [(u, a) for _, u, a in self.acked.get(dep, [])] + [(inflight[2], inflight[3])]
            return [now, with_it[-KEEP:]]
        return [now, []]  # a clear


def seed_store(root: Path, warn=lambda m: None) -> Expected:
    store = make_store(root, warn)
    exp = Expected()
    for op in SEED:
        exp.ack(op, apply(store, op))
    return exp


def run_workload(store: Store, exp: Expected, ops: list[Op] = WORKLOAD, on_error=None) -> None:
    """Run `ops`, acknowledging each that returns. An exception propagates with `exp.inflight` set,
    unless `on_error(op, exc)` returns True (then the next operation runs)."""
    for op in ops:
        exp.inflight = op
        try:
            result = apply(store, op)
        except BaseException as e:
            if on_error is None or not on_error(op, e):
                raise
            continue
        exp.inflight = None
        exp.ack(op, result)
    exp.inflight = None


def check_visible(root: Path, exp: Expected, inflight: Op | None, warn, where: str) -> dict[str, list[Pair]]:
    """P1/P3/P5: each deployment shows the acknowledged rounds (within the cap), plus at most
    the in-flight operation's effect; acknowledged rounds keep their seqs; seqs are contiguous."""
    store = make_store(root, warn)
    seen = {}
    for dep in DEPLOYMENTS:
        rounds = store.rounds(dep)
        got = pairs(rounds)
        opts = exp.options(dep, inflight)
        assert got in opts, f"{where}: {dep} shows {got}, expected one of {opts}"
        check_seqs(rounds, exp, f"{where}: {dep}")
        seen[dep] = got
    return seen


def check_seqs(rounds: list[RoundEvent], exp: Expected, where: str) -> None:
    seqs = [r.seq for r in rounds]
    if seqs:
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{where}: seqs {seqs}"
    for r in rounds:
        want = exp.seq_of.get((r.user, r.assistant))
        assert want is None or r.seq == want, f"{where}: round {r.user!r} has seq {r.seq}, was acknowledged as {want}"


def check_after_writer(root: Path, expected: dict[str, list[Pair]], touched: list[str], where: str) -> None:
    """After a writer ran: visible as expected, history.json matches (P7), logs the writer touched
    hold a valid chain (P3/P4) of exactly the visible rounds, everything within the caps (P8)."""
    store = make_store(root)
    for dep in DEPLOYMENTS:
        assert pairs(store.rounds(dep)) == expected[dep], f"{where}: {dep}"
        assert_projection_matches(root, dep, expected[dep])
        assert_within_caps(root, dep, CAPS)
        if dep in touched:
            assert_log_chain_valid(root, dep)
            chain = log_events(root, dep).chain
            rounds = [e for e in chain if isinstance(e, RoundEvent)]
            assert pairs(rounds) == expected[dep], f"{where}: the log of {dep} holds {pairs(rounds)}"
