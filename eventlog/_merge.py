"""Reconciling a history.json that Backend.AI rewrote with what bai last wrote into it.

Backend.AI's `./bai deployment chat` reads history.json whole, changes it and writes it whole,
taking no lock and dropping every key it does not know. What it can have done to one
deployment since bai last wrote the file:

- appended rounds (a chat): they come after every round it had, so everything after the last
  round bai knows is new, and is imported after bai's own rounds, in order;
- trimmed the oldest messages (its FIFO cap of 100): not a loss, bai keeps its own cap;
- removed the deployment (`chat-history clear`): a clear, for bai too;
- cleared and then chatted: none of the rounds bai wrote are left, though the entry is under
  Backend.AI's cap so its FIFO cannot have dropped them: a clear, then the new rounds.

Rounds are recognised by fingerprint (_fingerprint), so Backend.AI's re-serialisation does not
matter. bai remembers the rounds it has removed (cleared or trimmed) for a while, so a
Backend.AI that loaded the file before bai's clear and saved it after cannot bring them back.
Messages that do not pair into user-then-assistant rounds cannot be placed: counted, reported.

Everything here is pure: the writer applies a plan durably, a reader in memory, the same way.
"""

from __future__ import annotations

import msgspec

from ._events import RoundEvent, now_iso
from ._fingerprint import fingerprint, round_fingerprint
from ._projection import Message
from ._state import StreamState
from ._upcast import CURRENT_VERSION

BACKEND_AI_MAX_MESSAGES = 100  # Backend.AI's MAX_PERSISTED_HISTORY_MESSAGES
RETIRED_KEPT = 128  # fingerprints of removed rounds remembered per deployment (Backend.AI holds at most 50 rounds)


class Exported(msgspec.Struct, omit_defaults=True):
    """One deployment as bai last wrote it into history.json."""

    last_seq: int = 0
    rounds: list[str] = []  # fingerprints of the rounds written, oldest first
    retired: list[str] = []  # fingerprints of rounds written before and removed since, newest last


class ImportedRound(msgspec.Struct, frozen=True):
    user: Message
    assistant: Message


class Plan(msgspec.Struct, frozen=True):
    clear: bool = False  # Backend.AI cleared the deployment: everything bai holds before the imports goes
    imports: list[ImportedRound] = []  # rounds Backend.AI added, oldest first
    unplaceable: int = 0  # new messages that form no round

    @property
    def changes(self) -> bool:
        return self.clear or bool(self.imports)


def reconcile(theirs: list[Message] | None, exported: Exported | None, local: list[RoundEvent]) -> Plan:
    """What Backend.AI did to one deployment, as a plan for bai's stream.

    `theirs`: the deployment's entry in the file now (None: no entry); `exported`: what bai
    last wrote for it (None: nothing); `local`: the rounds bai's stream holds now."""
    shown = exported.rounds if exported is not None else []
    if not theirs:
        return Plan(clear=bool(shown))
    known = set(shown)
    if exported is not None:
        known.update(exported.retired)
    known.update(round_fingerprint(r) for r in local)
    items = _pair(theirs)
    last_known = max((i for i, item in enumerate(items) if isinstance(item, ImportedRound) and _fp(item) in known), default=-1)
    new = items[last_known + 1 :]
    imports = [item for item in new if isinstance(item, ImportedRound)]
    clear = last_known < 0 and bool(shown) and len(theirs) < BACKEND_AI_MAX_MESSAGES
    return Plan(clear=clear, imports=imports, unplaceable=len(new) - len(imports))


def apply_plan(state: StreamState, plan: Plan, deployment: str) -> StreamState:
    """The stream after the plan: a clear takes a seq (as a tombstone would), then each import."""
    rounds = [] if plan.clear else list(state.rounds)
    seq = state.last_seq + (1 if plan.clear else 0)
    for item in plan.imports:
        seq += 1
        u, a = item.user, item.assistant
        rounds.append(RoundEvent(
            v=CURRENT_VERSION, seq=seq, deployment=deployment, ts=a.created_at or u.created_at or now_iso(),
            user=u.content, assistant=a.content, user_at=u.created_at,
        ))
    return StreamState(rounds, seq)


def retire(previous: Exported | None, now: list[str]) -> list[str]:
    """The retired fingerprints after bai writes `now` for a deployment it last wrote as `previous`:
    the rounds it no longer shows join them; the oldest beyond RETIRED_KEPT are forgotten."""
    if previous is None:
        return []
    current = set(now)
    retired = [f for f in previous.retired + previous.rounds if f not in current]
    return retired[-RETIRED_KEPT:]


def _pair(messages: list[Message]) -> list[ImportedRound | Message]:
    """Rounds (a user message then an assistant one) and the stray messages between them."""
    out: list[ImportedRound | Message] = []
    i = 0
    while i < len(messages):
        m = messages[i]
        if m.role == "user" and i + 1 < len(messages) and messages[i + 1].role == "assistant":
            out.append(ImportedRound(m, messages[i + 1]))
            i += 2
        else:
            out.append(m)
            i += 1
    return out


def _fp(item: ImportedRound) -> str:
    return fingerprint(item.user.content, item.assistant.content, item.user.created_at, item.assistant.created_at)

