"""bai and Backend.AI taking turns on one store, against a plain model, driven by hypothesis.

Backend.AI's side is tests/store/backend_ai.py (its load-change-save of history.json, with no
lock); bai's is the real Store. Operations: rounds and clears by either tool; a Backend.AI chat
whose load came several operations before its save (its model was slow: a stale snapshot);
compaction; a new bai process. Everything happens within minutes of bai writing, so while the
file holds a Backend.AI chat bai has not merged yet, a missing entry is not taken for a clear
(it may be a save that began before bai wrote: eventlog/_merge.py); test_shared_history covers
the hour-old case. The model keeps Backend.AI's operations pending until a bai writer merges
them, and shows them merged the way that rule says, including its one blind spot: a stale save
that left out a deployment, followed by a Backend.AI clear of the round it added, before bai
runs again, leaves nothing to tell the drop from a clear.

Invariant: bai shows the model's conversation (within bai's cap); Backend.AI never refuses the
file; right after a bai write, Backend.AI shows what bai shows.
"""

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventlog import Caps, Store

from . import backend_ai
from .backend_ai import BackendAI
from .checks import D1, D2, assert_log_chain_valid, assert_projection_matches, pairs

CAPS = Caps(messages=120)  # 60 rounds: more than Backend.AI keeps (50), so its FIFO trims too
KEEP = CAPS.messages // 2
DEPLOYMENTS = st.sampled_from([D1, D2])


class TwoWriters(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="bai-two-"))
        self.root = self.dir / "store"
        self.root.mkdir()
        self.warnings: list[str] = []
        self.store = self._bai()
        self.ba = BackendAI(self.root)
        self.model: dict[str, list[tuple[str, str]]] = {D1: [], D2: []}  # as of bai's last write
        self.pending: list[tuple] = []  # Backend.AI's operations since: ("chat", dep, pair) | ("clear", dep)
        self.n = 0
        self.snapshot = None  # what a slow Backend.AI chat loaded
        self.bai_wrote_last = False

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _bai(self) -> Store:
        return Store(self.root, caps=CAPS, warn=self.warnings.append, refresh_share=0)

    def _text(self, who: str) -> tuple[str, str]:
        self.n += 1
        return f"{who}{self.n}", f"answer {who}{self.n}"

    def _add(self, dep, pair):
        self.model[dep] = (self.model[dep] + [pair])[-KEEP:]

    def _merged(self) -> dict[str, list[tuple[str, str]]]:
        """The model with Backend.AI's pending operations merged: what bai shows, and what its
        next write keeps. A clear counts only while no round of Backend.AI's is waiting in the
        file too (a clear also removes the rounds Backend.AI itself added before it)."""
        new: dict[str, list[tuple[str, str]]] = {d: [] for d in self.model}
        cleared: set[str] = set()
        for op in self.pending:
            if op[0] == "chat":
                new[op[1]].append(op[2])
            elif op[0] == "clear":
                new[op[1]] = []
                cleared.add(op[1])
            else:  # "drop": a stale save left the deployment out; no chat left to say so, it reads as a clear
                cleared.add(op[1])
        chats = any(new.values())
        out = {}
        for d, mine in self.model.items():
            base = [] if d in cleared and not chats else mine
            out[d] = (base + new[d])[-KEEP:]
        return out

    def _bai_writes(self):
        self.model = self._merged()
        self.pending = []
        self.bai_wrote_last = True

    @rule(dep=DEPLOYMENTS, count=st.sampled_from([1, 1, 1, 25]))
    def bai_round(self, dep, count):
        for _ in range(count):
            pair = self._text("bai")
            self.store.record_round(dep, *pair)
            self._bai_writes()
            self._add(dep, pair)

    @rule(dep=DEPLOYMENTS)
    def bai_clear(self, dep):
        self.store.clear(dep)
        self._bai_writes()
        self.model[dep] = []

    @rule()
    def bai_compact(self):
        self.store.compact()
        self._bai_writes()

    @rule()
    def bai_new_process(self):
        self.store = self._bai()

    # Backend.AI's commands do not overlap one another here: two of them at once lose each
    # other's changes in its own file (its problem, not bai's); bai overlapping it is the point.
    @precondition(lambda self: self.snapshot is None)
    @rule(dep=DEPLOYMENTS)
    def backend_ai_chat(self, dep):
        pair = self._text("ba")
        self.ba.chat(dep, *pair)
        self.pending.append(("chat", dep, pair))
        self.bai_wrote_last = False

    @precondition(lambda self: self.snapshot is None)
    @rule(dep=DEPLOYMENTS)
    def backend_ai_clear(self, dep):
        if self.ba.clear(dep):
            self.pending.append(("clear", dep))
            self.bai_wrote_last = False

    @precondition(lambda self: self.snapshot is None)
    @rule()
    def backend_ai_slow_chat_loads(self):
        self.snapshot = backend_ai.load(self.root)

    @precondition(lambda self: self.snapshot is not None)
    @rule(dep=DEPLOYMENTS)
    def backend_ai_slow_chat_saves(self, dep):
        pair = self._text("ba")
        dropped = [d for d in (D1, D2) if d != dep and d not in self.snapshot and self._merged()[d]]
        self.ba.chat(dep, *pair, loaded=self.snapshot)
        self.snapshot = None
        self.pending += [("drop", d) for d in dropped]
        # Its stale copy drops whatever bai did meanwhile from history.json: bai loses none of
        # it (its rounds stay, its clears stay), and gains the new round.
        self.pending.append(("chat", dep, pair))
        self.bai_wrote_last = False

    @invariant()
    def bai_shows_the_model(self):
        merged = self._merged()
        for dep in (D1, D2):
            assert pairs(self.store.rounds(dep)) == merged[dep], dep

    @invariant()
    def backend_ai_accepts_the_file_and_agrees_after_bai_wrote(self):
        backend_ai.load(self.root)  # raises Rejected if Backend.AI would ignore the file
        if not self.bai_wrote_last:
            return
        for dep in (D1, D2):
            assert self.ba.shown(dep) == self.model[dep], dep
            if (self.root / "history.json").exists() or self.model[dep]:
                assert_projection_matches(self.root, dep, self.model[dep])
            if self.model[dep]:
                assert_log_chain_valid(self.root, dep)

    @invariant()
    def nothing_to_warn_about_but_kept_rounds(self):
        assert all("bai keeps them" in w for w in self.warnings), self.warnings


TwoWriters.TestCase.settings = settings(
    max_examples=int(os.environ.get("BAI_SOAK", "1")) * 30, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestTwoWriters = TwoWriters.TestCase
