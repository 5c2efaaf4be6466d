"""Living beside Backend.AI: its writes to history.json are merged, never quarantined or undone.

Backend.AI's side is tests/store/backend_ai.py, a model of its code; tests/e2e/test_backend_ai.py
runs the real CLI.
"""

import json
import os
import time

import pytest

from eventlog import Caps, Store
from eventlog._keep import KEEP_COUNT

from . import backend_ai
from .backend_ai import BackendAI
from .checks import D1, D2, assert_log_chain_valid, assert_projection_matches, kept_copies, log_path, pairs


def _files(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rounds(n, tag="r"):
    return [(f"{tag}{i}", f"answer {tag}{i}") for i in range(n)]


@pytest.fixture
def ba(root):
    return BackendAI(root)


def _record(store, dep, rounds):
    for u, a in rounds:
        store.record_round(dep, u, a)


def test_rounds_backend_ai_adds_come_after_bais_in_order(make_store, root, ba, warnings):
    store = make_store()
    _record(store, D1, _rounds(2))
    ba.chat(D1, "b0", "answer b0")
    ba.chat(D1, "b1", "answer b1")
    before = _files(root)
    want = _rounds(2) + [("b0", "answer b0"), ("b1", "answer b1")]
    assert pairs(store.rounds(D1)) == want  # readers see them before any bai write...
    assert _files(root) == before  # ...and write nothing
    store.record_round(D1, "r2", "answer r2")
    assert pairs(store.rounds(D1)) == want + [("r2", "answer r2")]
    assert_log_chain_valid(root, D1)
    assert_projection_matches(root, D1, want + [("r2", "answer r2")])
    assert ba.shown(D1) == want + [("r2", "answer r2")]  # and Backend.AI sees bai's as its own
    assert not warnings and not kept_copies(root, "history.json")


def test_a_clear_by_backend_ai_is_a_clear_for_bai(make_store, root, ba, warnings):
    store = make_store()
    _record(store, D1, _rounds(3, "secret"))
    _record(store, D2, _rounds(1, "other"))
    assert ba.clear(D1)
    assert store.rounds(D1) == []  # readers honour it at once
    store.record_round(D2, "q", "a")  # any writer makes it durable
    assert store.rounds(D1) == [] and pairs(store.rounds(D2)) == _rounds(1, "other") + [("q", "a")]
    for path, data in _files(root).items():
        assert b"secret" not in data, path  # gone from every file, bai's included
    assert not warnings


def _written_long_ago(root):
    """As if bai had written every deployment's first rounds into history.json an hour ago."""
    record = json.loads((root / "bai" / "exported.json").read_text())
    for entry in record["deployments"].values():
        entry["since"] -= 3600
    (root / "bai" / "exported.json").write_text(json.dumps(record))


def test_clear_then_chat_in_backend_ai_starts_over_in_bai(make_store, root, ba, warnings):
    store = make_store()
    _record(store, D1, _rounds(3, "old"))
    _written_long_ago(root)
    assert ba.clear(D1)
    ba.chat(D1, "fresh", "answer fresh")
    assert pairs(store.rounds(D1)) == [("fresh", "answer fresh")]
    store.record_round(D1, "next", "answer next")
    assert pairs(store.rounds(D1)) == [("fresh", "answer fresh"), ("next", "answer next")]
    assert not warnings


def test_a_new_deployment_both_tools_start_at_once_loses_nothing(make_store, root, ba, warnings):
    """Backend.AI loads before bai writes the first rounds of a deployment, then saves its own
    first round of it: indistinguishable from a clear-then-chat but for the time; so soon after
    bai's first rounds, bai keeps them."""
    store = make_store()
    store.record_round(D2, "q", "a")
    loaded = backend_ai.load(root)
    store.record_round(D1, "mine", "answer mine")
    ba.chat(D1, "theirs", "answer theirs", loaded=loaded)
    assert pairs(store.rounds(D1)) == [("mine", "answer mine"), ("theirs", "answer theirs")]
    assert warnings.matching("bai keeps them")


def test_backend_ai_fifo_trimming_is_no_loss(make_store, root, ba, warnings):
    store = make_store(Caps(messages=200))
    _record(store, D1, _rounds(60))  # 120 messages: more than Backend.AI keeps
    ba.chat(D1, "b", "answer b")  # Backend.AI trims to its 100
    assert len(backend_ai.load(root)[D1]) == 100
    assert pairs(store.rounds(D1)) == _rounds(60) + [("b", "answer b")]
    store.record_round(D1, "r60", "answer r60")
    assert len(store.rounds(D1)) == 62 and not warnings


def test_a_stale_backend_ai_save_does_not_undo_a_clear_by_bai(make_store, root, ba):
    store = make_store()
    _record(store, D1, _rounds(3, "secret"))
    loaded = backend_ai.load(root)  # Backend.AI's chat loads the file, then waits for its model
    store.clear(D1)
    ba.chat(D1, "b", "answer b", loaded=loaded)  # ...and saves its stale copy with its round
    assert pairs(store.rounds(D1)) == [("b", "answer b")]
    store.record_round(D2, "q", "a")
    assert pairs(store.rounds(D1)) == [("b", "answer b")]
    for path, data in _files(root).items():
        assert b"secret" not in data, path


def test_both_changed_nothing_lost_nothing_twice(make_store, root, ba, warnings):
    store = make_store()
    store.record_round(D1, "r0", "a0")
    loaded = backend_ai.load(root)
    store.record_round(D1, "r1", "a1")  # bai goes on while Backend.AI's chat waits
    ba.chat(D1, "b", "answer b", loaded=loaded)  # its save drops r1 from history.json
    want = [("r0", "a0"), ("r1", "a1"), ("b", "answer b")]
    assert pairs(store.rounds(D1)) == want
    store.record_round(D1, "r2", "a2")
    assert pairs(store.rounds(D1)) == want + [("r2", "a2")]
    assert ba.shown(D1) == want + [("r2", "a2")]
    assert not warnings


def test_a_stale_chat_save_is_no_clear_of_a_deployment_it_never_saw(make_store, root, ba, warnings):
    """Backend.AI loads, bai saves the first rounds of another deployment, Backend.AI saves:
    the file lacks them, though nobody cleared them. bai keeps them and says so."""
    store = make_store()
    store.record_round(D2, "q", "a")
    loaded = backend_ai.load(root)
    store.record_round(D1, "new", "answer new")
    ba.chat(D2, "b", "answer b", loaded=loaded)
    assert pairs(store.rounds(D1)) == [("new", "answer new")]
    store.record_round(D2, "r", "answer r")
    assert pairs(store.rounds(D1)) == [("new", "answer new")]
    assert warnings.matching("bai keeps them") and warnings.matching(f"chat-history clear {D1}")


def test_a_clear_and_a_chat_by_backend_ai_between_two_bai_runs(make_store, root, ba, warnings):
    """A deployment whose rounds went into history.json long before Backend.AI's save was in
    whatever Backend.AI loaded: its absence is a clear, even beside a chat on another one."""
    store = make_store()
    _record(store, D1, _rounds(2, "secret"))
    store.record_round(D2, "q", "a")
    _written_long_ago(root)
    assert ba.clear(D1)
    ba.chat(D2, "b", "answer b")
    assert store.rounds(D1) == []
    store.record_round(D2, "r", "answer r")
    assert store.rounds(D1) == [] and not warnings


def test_messages_that_form_no_round_are_counted_and_kept_once(make_store, root, warnings):
    store = make_store()
    store.record_round(D1, "q", "a")
    doc = json.loads((root / "history.json").read_text())
    t = "2026-01-01T00:00:00Z"
    entry = [{"role": m["role"], "content": m["content"], "created_at": m["created_at"]} for m in doc["deployments"][D1]]
    entry += [{"role": "user", "content": "lonely", "created_at": t},
              {"role": "user", "content": "q2", "created_at": t}, {"role": "assistant", "content": "a2", "created_at": t}]
    bad = {"deployments": {D1: entry, "not an id!": [{"role": "user", "content": "x", "created_at": t}] * 2}}
    (root / "history.json").write_text(json.dumps(bad))
    store.record_round(D1, "q3", "a3")
    assert pairs(store.rounds(D1)) == [("q", "a"), ("q2", "a2"), ("q3", "a3")]
    (w,) = warnings.matching("form no")
    assert "except 3 message(s)" in w  # the lonely one and the two under a key that names no deployment
    (copy,) = kept_copies(root, "history.json")
    assert json.loads(copy.read_bytes()) == bad and str(copy) in w


def test_kept_copies_are_bounded_by_count_and_age(make_store, root, warnings):
    store = make_store()
    for i in range(KEEP_COUNT + 3):
        (root / "history.json").parent.mkdir(parents=True, exist_ok=True)
        (root / "history.json").write_bytes(b"{damaged %d" % i)
        store.record_round(D1, f"q{i}", "a")
    copies = kept_copies(root, "history.json")
    assert len(copies) == KEEP_COUNT
    assert copies[-1].read_bytes() == b"{damaged %d" % (KEEP_COUNT + 2)  # the newest are kept
    old = time.time() - 40 * 86400
    for c in copies[:-1]:
        os.utime(c, (old, old))
    (root / "history.json").write_bytes(b"{damaged again")
    store.record_round(D1, "q", "a")
    assert [c.read_bytes() for c in kept_copies(root, "history.json")] == [copies[-1].read_bytes(), b"{damaged again"]


def test_an_old_copy_of_bais_history_json_clears_nothing(make_store, root, warnings):
    store = make_store()
    store.record_round(D1, "q1", "a1")
    old = (root / "history.json").read_bytes()
    store.record_round(D2, "q2", "a2")
    store.record_round(D1, "q3", "a3")
    (root / "history.json").write_bytes(old)  # a backup restored: bai's own file, not Backend.AI's
    assert pairs(store.rounds(D2)) == [("q2", "a2")]
    store.record_round(D1, "q4", "a4")
    assert pairs(store.rounds(D2)) == [("q2", "a2")]
    assert_projection_matches(root, D2, [("q2", "a2")])
    assert_projection_matches(root, D1, [("q1", "a1"), ("q3", "a3"), ("q4", "a4")])
    assert not warnings


def test_history_json_holds_only_uuids_in_canonical_form(make_store, root):
    store = make_store()
    store.record_round("my-llm", "q", "a")
    store.record_round(D1.upper(), "q", "a")
    store.record_round(D1.replace("-", ""), "q2", "a2")  # one deployment, whatever the spelling
    doc = json.loads((root / "history.json").read_text())
    assert list(doc["deployments"]) == [D1]
    assert pairs(store.rounds(D1.upper())) == [("q", "a"), ("q2", "a2")]
    assert backend_ai.load(root)[D1]  # Backend.AI accepts it
    assert pairs(store.rounds("my-llm")) == [("q", "a")]


def test_first_contact_with_a_backend_ai_only_store(make_store, root, ba, warnings):
    root.mkdir(parents=True)
    ba.chat(D1, "b0", "answer b0")
    ba.chat(D2, "c0", "answer c0")
    before = _files(root)
    assert pairs(make_store().rounds(D1)) == [("b0", "answer b0")]
    assert _files(root) == before
    store = make_store()
    store.record_round(D1, "r", "answer r")
    assert pairs(store.rounds(D1)) == [("b0", "answer b0"), ("r", "answer r")]
    assert pairs(store.rounds(D2)) == [("c0", "answer c0")]
    assert [r.seq for r in store.rounds(D1)] == [1, 2]
    assert backend_ai.load(root)[D1][0]["content"] == "b0"
    assert not warnings and not kept_copies(root, "history.json")


def test_a_store_of_bai_0_1_is_moved_on_the_first_write(root, warnings):
    """bai 0.1 kept logs in logs/, damaged copies as <file>.corrupt-<time> beside the file, any
    id in history.json (Backend.AI refused the whole file over "my-llm"), and an upper-case UUID
    as a deployment of its own."""
    from eventlog._events import RoundEvent, encode_line

    def line(dep, seq, user):
        return encode_line(RoundEvent(v=1, seq=seq, deployment=dep, ts=f"2026-01-01T00:00:0{seq}.000+00:00",
                                      user=user, assistant="a", user_at=f"2026-01-01T00:00:0{seq}.000+00:00"))

    (root / "logs").mkdir(parents=True)
    (root / "logs" / "my-llm.jsonl").write_bytes(line("my-llm", 1, "named"))
    (root / "logs" / f"{D1}.jsonl").write_bytes(line(D1, 1, "lower"))
    (root / "logs" / f"{D1.upper()}.jsonl").write_bytes(line(D1.upper(), 1, "upper"))
    (root / "history.json").write_text(json.dumps({"version": 1, "last_seq": {"my-llm": 1}, "deployments": {
        "my-llm": [{"role": "user", "content": "named", "created_at": "x", "seq": 1},
                   {"role": "assistant", "content": "a", "created_at": "y", "seq": 1}]}}))
    (root / "history.json.corrupt-20260101T000000.000000Z").write_bytes(b"old damage")
    store = Store(root, warn=warnings, refresh_share=0)
    assert pairs(store.rounds("my-llm")) == [("named", "a")]  # readers read the old layout as it is
    store.record_round("my-llm", "q", "a2")
    assert not (root / "logs").exists() and not list(root.glob("*.corrupt-*"))
    assert pairs(store.rounds("my-llm")) == [("named", "a"), ("q", "a2")]
    assert pairs(store.rounds(D1)) == [("lower", "a"), ("upper", "a")]  # one deployment now
    assert sorted(p.name for p in log_path(root, D1).parent.iterdir()) == sorted([f"{D1}.jsonl", "my-llm.jsonl"])
    assert [c.read_bytes() for c in kept_copies(root, "history.json")] == [b"old damage"]
    assert list(backend_ai.load(root)) == [D1]  # Backend.AI accepts the file now


def test_a_turn_reads_and_writes_only_its_own_deployment(make_store, root, monkeypatch):
    """O(1) in the number of deployments: a turn opens its log, the lock and the stamp, and
    stats history.json; never another deployment's log, nor history.json itself (unless a
    refresh is due, which this store's policy is made to say it is not)."""
    store = Store(root, warn=lambda m: None)
    deps = [f"00000000-0000-4000-8000-{i:012x}" for i in range(30)]
    for d in deps:
        store.record_round(d, "q", "a")
    store.refresh_policy.refreshed(3600.0)  # as if a refresh had just taken an hour: none is due
    opened = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.path.basename(os.fspath(path)))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    import builtins
    real_builtin_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: (opened.append(os.path.basename(os.fspath(f))), real_builtin_open(f, *a, **k))[1])
    store.context(deps[7], 10)
    store.record_round(deps[7], "q2", "a2")
    mine = {f"{deps[7]}.jsonl", ".lock", "exported-stamp.json"}
    assert set(opened) <= mine, opened
    assert len(opened) <= 6, opened


def test_history_json_refresh_is_rate_limited_but_never_after_a_clear(root):
    store = Store(root, warn=lambda m: None)  # the default policy
    store.record_round(D1, "q1", "a1")  # the first refresh: history.json appears
    assert json.loads((root / "history.json").read_text())["deployments"][D1]
    store.refresh_policy.refreshed(3600.0)  # this process refreshed and it took an hour
    store.record_round(D1, "q2", "a2")
    assert len(json.loads((root / "history.json").read_text())["deployments"][D1]) == 2  # q2 waits
    other = Store(root, warn=lambda m: None)  # another process: a cheap refresh is due for it
    other.record_round(D2, "x", "y")
    doc = json.loads((root / "history.json").read_text())["deployments"]
    assert len(doc[D1]) == 4 and len(doc[D2]) == 2  # q2 went along
    store.clear(D2)  # a clear never waits
    assert D2 not in json.loads((root / "history.json").read_text())["deployments"]


def _stamp_saying(root, stamp, refreshed_at: float, seconds: float) -> None:
    (root / "bai" / "exported-stamp.json").write_bytes(json.dumps(
        {"identity": list(stamp.identity), "refreshed_at": refreshed_at, "refresh_seconds": seconds}).encode())


def _next_process(root, budget_bytes: int | None = None) -> Store:
    store = Store(root, warn=lambda m: None)
    if budget_bytes is not None:
        store.refresh_policy.budget_bytes = budget_bytes
    return store


def test_a_large_history_json_waits_for_every_process(root):
    from eventlog._export import read_stamp

    store = Store(root, warn=lambda m: None)
    store.record_round(D1, "q1", "a1")
    stamp = read_stamp(store.paths)
    small = stamp.identity[1] - 1  # the file counts as large: over the budget
    _stamp_saying(root, stamp, time.time(), 10.0)  # the last refresh took 10 s, just now
    _next_process(root, small).record_round(D1, "q2", "a2")
    assert len(json.loads((root / "history.json").read_text())["deployments"][D1]) == 2  # waits
    stamp = read_stamp(store.paths)
    _stamp_saying(root, stamp, time.time() - 300, 10.0)
    _next_process(root, small).record_round(D1, "q3", "a3")  # 20 x 10 s have passed
    assert len(json.loads((root / "history.json").read_text())["deployments"][D1]) == 6


def test_a_small_history_json_is_refreshed_by_the_next_process_however_slow_the_last_refresh(root):
    """On a busy machine a refresh of a small file can be measured slow; the next `bai` must
    still show Backend.AI its round (eight processes at once all land)."""
    from eventlog._export import BUDGET_BYTES, read_stamp

    store = Store(root, warn=lambda m: None)
    store.record_round(D1, "q1", "a1")
    stamp = read_stamp(store.paths)
    assert stamp.identity[1] <= BUDGET_BYTES
    _stamp_saying(root, stamp, time.time(), 10.0)
    _next_process(root).record_round(D1, "q2", "a2")  # the default policy
    assert len(json.loads((root / "history.json").read_text())["deployments"][D1]) == 4


def test_an_incremental_refresh_sees_a_log_written_in_the_same_clock_tick(root):
    """A refresh copies the entries of logs not changed since the last one (by mtime). A log
    appended in the same clock tick as history.json was written has the same mtime: a tie
    counts as changed."""
    store = Store(root, warn=lambda m: None)
    store.record_round(D1, "q1", "a1")
    store.record_round(D2, "x1", "y1")
    store.refresh_policy.refreshed(3600.0)
    store.record_round(D1, "q2", "a2")  # not refreshed
    t = os.stat(root / "history.json").st_mtime_ns
    os.utime(log_path(root, D1), ns=(t, t))
    Store(root, warn=lambda m: None).record_round(D2, "x2", "y2")  # refreshes; D1 untouched by it
    assert_projection_matches(root, D1, [("q1", "a1"), ("q2", "a2")])


def test_a_clear_forgets_the_kept_copies_that_may_hold_its_text(root):
    """Kept copies of damaged files are bounded, but a clear must not leave the cleared text
    in them: copies of the deployment's log, and history.json copies naming it, go; copies of
    other deployments' logs, history.json copies not naming it, and settings copies stay."""
    from eventlog._keep import keep_aside

    store = Store(root, warn=lambda m: None)
    store.record_round(D1, "q1", "a1")
    store.record_round("my.llm", "q", "a")
    mine = keep_aside(store.paths, f"{D1}.jsonl", b"D1 text")
    lookalike = keep_aside(store.paths, "my.llm.jsonl", b"other text")  # a prefix of no use
    naming = keep_aside(store.paths, "history.json", json.dumps({D1.upper(): []}).encode())
    other = keep_aside(store.paths, "history.json", json.dumps({D2: []}).encode())
    settings = keep_aside(store.paths, "config.json", b"{}")
    store.clear(D1)
    assert not mine.exists() and not naming.exists()
    assert lookalike.exists() and other.exists() and settings.exists()
    store.clear("my")  # no such deployment: my.llm's copy is not its
    assert lookalike.exists()
    store.clear_all()
    assert not lookalike.exists() and not other.exists() and settings.exists()


def test_a_clear_forgets_kept_copies_of_its_log_under_another_spelling_of_its_id(root):
    """bai 0.1 kept copies under the id as it was spelled; they are moved as they are."""
    from eventlog._keep import keep_aside

    store = Store(root, warn=lambda m: None)
    store.record_round(D1, "q1", "a1")
    legacy = keep_aside(store.paths, f"{D1.upper()}.jsonl", b"D1 text, spelled in upper case")
    store.clear(D1)
    assert not legacy.exists()
