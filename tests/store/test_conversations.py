"""Several conversations per deployment: each is a stream of its own (`<deployment>~<name>`),
capped like its deployment, bounded in number, never in history.json, and gone with its clear."""

from __future__ import annotations

import json

import pytest

from eventlog import Caps, InvalidDeploymentId, Store, StoreUnwritable
from eventlog._errors import TooManyConversations
from eventlog._ids import MAIN, check_stream_id, split_stream_id, stream_id
from eventlog._store import MAX_CONVERSATIONS

from .checks import D1, D2, log_path, pairs


def test_stream_ids_name_the_deployment_and_the_conversation():
    assert stream_id(D1) == D1 and stream_id(D1, None) == D1 and stream_id(D1, MAIN) == D1
    assert stream_id(D1.upper(), "work") == f"{D1}~work"  # the deployment's part canonical
    assert split_stream_id(f"{D1}~work") == (D1, "work") and split_stream_id(D1) == (D1, None)
    assert check_stream_id(f"{D1.upper()}~work") == f"{D1}~work"
    for bad in ("", "~x", "a b", "a/b", "-x", "x" * 65, "a~b"):
        with pytest.raises(InvalidDeploymentId):
            stream_id(D1, bad) if bad else check_stream_id(f"{D1}~")
    with pytest.raises(InvalidDeploymentId):
        check_stream_id(f"{D1}~a~b")


def test_a_conversation_is_its_own_stream_and_not_backend_ais(make_store, root):
    store = make_store()
    work = stream_id(D1, "work")
    store.record_round(D1, "main q", "main a")
    store.record_round(work, "work q", "work a")
    store.record_round(work, "work q2", "work a2")
    assert pairs(store.rounds(D1)) == [("main q", "main a")]
    assert pairs(store.rounds(work)) == [("work q", "work a"), ("work q2", "work a2")]
    assert [r.seq for r in store.rounds(work)] == [1, 2]  # gapless per stream
    doc = json.loads((root / "history.json").read_text())["deployments"]
    assert list(doc) == [D1] and "work" not in json.dumps(doc)
    assert store.conversations(D1) == ["work"] and store.conversations(D2) == []
    rows = {(r.deployment_id, r.conversation): r.messages for r in store.deployments()}
    assert rows == {(D1, None): 2, (D1, "work"): 4}


def test_a_conversation_is_capped_as_its_deployment_is(root):
    asked = []

    def policy(deployment: str) -> Caps:
        asked.append(deployment)
        return Caps(messages=4)

    store = Store(root, caps=policy, warn=lambda m: None, refresh_share=0)
    work = stream_id(D1, "work")
    for i in range(5):
        store.record_round(work, f"q{i}", f"a{i}")
    assert pairs(store.rounds(work)) == [("q3", "a3"), ("q4", "a4")]
    assert asked and set(asked) == {D1}  # the deployment's settings, not a conversation's


def test_clearing_a_conversation_removes_it_and_leaves_the_main_one(make_store, root):
    store = make_store()
    work = stream_id(D1, "work")
    store.record_round(D1, "keep me", "kept")
    store.record_round(work, "secret", "gone")
    assert store.clear(work) == 2
    assert not log_path(root, work).exists() and store.conversations(D1) == []
    assert not any(b"secret" in p.read_bytes() for p in root.rglob("*") if p.is_file())
    assert pairs(store.rounds(D1)) == [("keep me", "kept")]
    assert store.record_round(work, "again", "fresh").seq == 1  # the name starts afresh
    store.clear(D1)  # the main one's clear leaves the others
    assert pairs(store.rounds(work)) == [("again", "fresh")]
    store.clear_all()
    assert store.conversations(D1) == [] and store.deployments() == []


def test_conversations_are_bounded_per_deployment(make_store):
    store = make_store()
    for i in range(MAX_CONVERSATIONS):
        store.record_round(stream_id(D1, f"c{i}"), "q", "a")
    extra = stream_id(D1, "one-too-many")
    with pytest.raises(TooManyConversations, match="clear one first"):
        store.check_writable(extra)  # before anything is sent
    with pytest.raises(TooManyConversations):
        store.record_round(extra, "q", "a")
    store.record_round(stream_id(D1, "c0"), "q2", "a2")  # an existing one goes on
    store.record_round(D1, "main", "fine")  # the main one is no conversation of the bound
    store.record_round(stream_id(D2, "c0"), "q", "a")  # another deployment has its own bound
    store.clear(stream_id(D1, "c3"))
    store.record_round(extra, "q", "a")  # room again
    assert len(store.conversations(D1)) == MAX_CONVERSATIONS


def test_an_unwritable_conversation_slot_is_found_before_sending(make_store, root):
    store = make_store()
    work = stream_id(D1, "work")
    log_path(root, work).parent.mkdir(parents=True, exist_ok=True)
    log_path(root, work).mkdir()  # a folder in its slot
    with pytest.raises(StoreUnwritable):
        store.check_writable(work)
    store.check_writable(D1)  # the main one's slot is fine
