"""A history.json written by Backend.AI's own `./bai deployment chat` is imported, not lost."""

import os

import msgspec

from .checks import assert_log_chain_valid, assert_projection_matches, pairs, visible

BACKEND_AI = {
    "deployments": {
        "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55": [
            {"role": "user", "content": "hi", "created_at": "2026-05-01T10:00:00+00:00"},
            {"role": "assistant", "content": "hello", "created_at": "2026-05-01T10:00:01+00:00"},
            {"role": "user", "content": "how are you?", "created_at": "2026-05-01T10:01:00+00:00"},
            {"role": "assistant", "content": "fine", "created_at": "2026-05-01T10:01:02+00:00"},
        ],
        "dep-b": [{"role": "user", "content": "q", "created_at": "x"}, {"role": "assistant", "content": "a", "created_at": "y"}],
    }
}
UUID = "0f6a5c1e-8d2b-4c1a-9e3f-2b7d9a1c4e55"


def _write(root, doc):
    os.makedirs(root, exist_ok=True)
    (root / "history.json").write_bytes(msgspec.json.encode(doc))


def test_readers_see_backend_ai_history_before_any_write(root):
    _write(root, BACKEND_AI)
    assert pairs(visible(root, UUID)) == [("hi", "hello"), ("how are you?", "fine")]
    assert not (root / "logs").exists()  # readers never write


def test_first_write_imports_every_deployment(make_store, root, warnings):
    _write(root, BACKEND_AI)
    store = make_store()
    store.record_round(UUID, "third", "answer")
    rounds = store.rounds(UUID)
    assert pairs(rounds) == [("hi", "hello"), ("how are you?", "fine"), ("third", "answer")]
    assert [r.seq for r in rounds] == [1, 2, 3]
    assert rounds[0].user_at == "2026-05-01T10:00:00+00:00" and rounds[0].ts == "2026-05-01T10:00:01+00:00"
    assert pairs(store.rounds("dep-b")) == [("q", "a")]
    assert_log_chain_valid(root, UUID)
    assert_projection_matches(root, "dep-b", [("q", "a")])
    doc = msgspec.json.decode((root / "history.json").read_bytes())
    assert doc["version"] == 1 and set(doc["deployments"]) == {UUID, "dep-b"}
    assert not warnings  # everything formed rounds: nothing to report


def test_messages_that_form_no_round_are_kept_in_a_copy(make_store, root, warnings):
    doc = {"deployments": {"d1": [{"role": "user", "content": "lonely"}, {"role": "user", "content": "q"},
                                   {"role": "assistant", "content": "a"}],
                           "bad id!": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}}
    _write(root, doc)
    make_store().compact()
    assert pairs(visible(root, "d1")) == [("q", "a")]
    assert warnings.matching("left out")
    copies = [p for p in os.listdir(root) if p.startswith("history.json.corrupt-")]
    assert len(copies) == 1 and msgspec.json.decode((root / copies[0]).read_bytes()) == doc


def test_our_projection_is_readable_as_backend_ai_format(make_store, root):
    store = make_store()
    store.record_round("d1", "q", "a")
    doc = msgspec.json.decode((root / "history.json").read_bytes())
    messages = doc["deployments"]["d1"]  # what Backend.AI's loader reads
    assert [(m["role"], m["content"]) for m in messages] == [("user", "q"), ("assistant", "a")]
    assert all(isinstance(m["created_at"], str) for m in messages)
