"""What Backend.AI 26.9.6's `./bai deployment chat*` does to history.json, for fast tests.

Modelled on its code (ai/backend/client/cli/v2/deployment/chat/types.py, utils.py): it reads
the file whole (`read_json_file`: missing or not JSON -> empty), validates it with pydantic
(keys are UUIDs, messages need role, content and a parsable created_at; ONE bad entry and the
whole file is "in an invalid format and was ignored", i.e. empty), works on that, and writes
it whole in place (`path.write_text(model_dump_json(indent=2))`: no lock, no rename, only the
keys it knows, created_at re-serialised as `...:SS.ffffffZ`). `chat` appends user + assistant
(both stamped with one `now`) and FIFO-trims to 100 messages; `clear` pops the deployment.

The end-to-end tests (tests/e2e/test_backend_ai.py) run the real CLI; this model lets the store
tests and the two-writer property test run thousands of its operations in seconds.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

MAX_PERSISTED_HISTORY_MESSAGES = 100
_T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)


class Rejected(Exception):
    """Backend.AI would print "invalid format and was ignored" for this file."""


def _datetime(value: object) -> datetime:
    if not isinstance(value, str) or ("T" not in value and " " not in value):
        raise Rejected(f"created_at {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(f"created_at {value!r}") from None


def load(root: Path) -> dict[str, list[dict]]:
    """The deployments as Backend.AI sees them. Raises Rejected where it would ignore the file."""
    try:
        raw = json.loads((root / "history.json").read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, list[dict]] = {}
    deployments = raw.get("deployments", {})
    if not isinstance(deployments, dict):
        raise Rejected("deployments")
    for key, messages in deployments.items():
        try:
            dep = str(uuid.UUID(key))
        except (ValueError, TypeError):
            raise Rejected(f"key {key!r}") from None
        if not isinstance(messages, list):
            raise Rejected(f"entry of {key}")
        entry = []
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise Rejected(f"message of {key}")
            entry.append({"role": m["role"], "content": m["content"], "created_at": _datetime(m.get("created_at"))})
        out[dep] = entry
    return out


def save(root: Path, deployments: dict[str, list[dict]]) -> None:
    doc = {"deployments": {d: [{"role": m["role"], "content": m["content"], "created_at": _dump(m["created_at"])}
                                for m in ms] for d, ms in deployments.items()}}
    (root / "history.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")


def _dump(t: datetime) -> str:
    if t.tzinfo is None:
        return t.isoformat()
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BackendAI:
    """One user of Backend.AI's CLI on a store; `now` ticks a second per chat, so every round
    it records is distinct, as with the real clock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = 0

    def now(self) -> datetime:
        self.clock += 1
        return _T0 + timedelta(seconds=self.clock)

    def chat(self, deployment: str, user: str, assistant: str, *, loaded: dict | None = None) -> None:
        """`chat`: load, append the round, trim, save. `loaded`: what an earlier load returned
        (a chat whose model took a while: the file changed meanwhile, and is overwritten)."""
        history = load(self.root) if loaded is None else loaded
        messages = history.setdefault(deployment, [])
        now = self.now()
        messages.append({"role": "user", "content": user, "created_at": now})
        messages.append({"role": "assistant", "content": assistant, "created_at": now})
        del messages[: max(len(messages) - MAX_PERSISTED_HISTORY_MESSAGES, 0)]
        save(self.root, history)

    def clear(self, deployment: str) -> bool:
        history = load(self.root)
        if history.pop(deployment, None) is None:
            return False
        save(self.root, history)
        return True

    def shown(self, deployment: str) -> list[tuple[str, str]]:
        """`chat-history show`, as (user, assistant) pairs."""
        ms = load(self.root).get(deployment, [])
        return [(ms[i]["content"], ms[i + 1]["content"]) for i in range(0, len(ms) - 1, 2)]
