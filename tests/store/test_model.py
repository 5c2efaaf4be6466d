"""The store against a plain list model, driven by hypothesis: appends of arbitrary text,
clears, compactions, torn in-flight appends, stale projections, leftover temp files and
reopening. Invariant: what the store shows is the model's tail under the cap."""

import os
import shutil
import tempfile
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventlog import Caps, Store
from eventlog._events import RoundEvent, encode_line
from .checks import D1, D2, assert_log_chain_valid, assert_projection_matches, assert_within_caps, log_path, pairs

CAPS = Caps(messages=7, bytes=1 << 20)  # an odd cap: 3 whole rounds
DEPLOYMENTS = st.sampled_from([D1, D2])
TEXT = st.text(max_size=40) | st.sampled_from(["\n", "\u2028", "\x00", "\U0001F600", '"}\n{'])


class StoreModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="bai-model-"))
        self.root = self.dir / "store"
        self.warnings = []
        self.store = Store(self.root, caps=CAPS, warn=self.warnings.append, refresh_share=0)
        self.model = {D1: [], D2: []}  # every acknowledged round since the last clear
        self.seq = {D1: 0, D2: 0}  # the last seq each stream has used
        self.saved_projections = []
        self.wrote = False
        self.torn = set()  # streams with a torn tail no writer has recovered yet

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _expected(self, dep):
        return self.model[dep][max(0, len(self.model[dep]) - CAPS.messages // 2) :]

    def _after_write(self):
        self.wrote = True
        if (self.root / "history.json").exists():
            self.saved_projections.append((self.root / "history.json").read_bytes())

    @rule(dep=DEPLOYMENTS, user=TEXT, assistant=TEXT)
    def append(self, dep, user, assistant):
        recorded = self.store.record_round(dep, user, assistant)
        self.seq[dep] += 1
        assert recorded.seq == self.seq[dep]
        self.model[dep].append((user, assistant))
        self.torn.discard(dep)
        self._after_write()

    @rule(dep=DEPLOYMENTS)
    def clear(self, dep):
        self.store.clear(dep)
        if self.seq[dep]:
            self.seq[dep] += 1  # the tombstone takes a seq (none is written for a stream never used)
        self.model[dep] = []
        self.torn.discard(dep)
        self._after_write()

    @rule()
    def compact(self):
        self.store.compact()
        self.torn.clear()
        self._after_write()

    @rule(dep=DEPLOYMENTS, fraction=st.floats(0, 0.999))
    def torn_inflight_append(self, dep, fraction):
        # A writer killed mid-write: part of the next record, never acknowledged.
        line = encode_line(RoundEvent(v=1, seq=self.seq[dep] + 1, deployment=dep, ts="t", user="torn", assistant="torn"))
        os.makedirs(log_path(self.root, dep).parent, exist_ok=True)
        with open(log_path(self.root, dep), "ab") as f:
            f.write(line[: int(len(line) * fraction)])
        self.torn.add(dep)

    @precondition(lambda self: self.saved_projections)
    @rule(pick=st.integers(0, 50))
    def stale_projection(self, pick):
        # An old history.json of bai's put back (a backup restored; a crash before its stamp).
        old = self.saved_projections[pick % len(self.saved_projections)]
        (self.root / "history.json").write_bytes(old)
        os.utime(self.root / "history.json", ns=(1, 1))

    @precondition(lambda self: self.root.exists())
    @rule()
    def leftover_temp_file(self):
        (self.root / f".history.json.tmp.{os.getpid()}.dead").write_bytes(b'{"deployments": {D1: [')

    @rule()
    def reopen(self):
        self.store = Store(self.root, caps=CAPS, warn=self.warnings.append, refresh_share=0)

    @invariant()
    def shows_the_models_tail(self):
        for dep in (D1, D2):
            assert pairs(self.store.rounds(dep)) == self._expected(dep)
            assert len(self.store.context(dep, 4)) == 2 * min(2, len(self._expected(dep)))

    @invariant()
    def files_hold_the_same_after_a_writer(self):
        if not self.wrote:
            return
        self.wrote = False
        for dep in (D1, D2):
            if log_path(self.root, dep).exists():
                assert_log_chain_valid(self.root, dep, allow_torn_tail=dep in self.torn)
            assert_within_caps(self.root, dep, CAPS)
            if not (self.root / "history.json").exists():
                assert self.seq == {D1: 0, D2: 0}  # only a store never written has none
                continue
            doc = msgspec.json.decode((self.root / "history.json").read_bytes())
            if dep in doc["deployments"]:
                assert_projection_matches(self.root, dep, self._expected(dep))
        assert not [w for w in self.warnings if "damaged" in w], self.warnings


StoreModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("BAI_SOAK", "1")) * 60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoreModel = StoreModel.TestCase
