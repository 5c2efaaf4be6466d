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

A missing entry, or one holding none of bai's rounds, is taken for a clear only when it must be
one. Backend.AI's `chat` loads the file, waits for the model, then saves: if bai wrote a new
deployment's first rounds meanwhile, that save lacks them without anyone having cleared them.
So when the deployment's first rounds went into history.json less than STALE_WINDOW before the
file was saved, and the save also brought a new round (a chat, not just a clear), bai keeps its
rounds and says how to clear them if that was meant (Plan.doubtful).

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
STALE_WINDOW = 30 * 60  # seconds a Backend.AI `chat` may plausibly take between loading the file and saving it


class Exported(msgspec.Struct, omit_defaults=True):
    """One deployment as bai last wrote it into history.json."""

    last_seq: int = 0
    rounds: list[str] = []  # fingerprints of the rounds written, oldest first
    retired: list[str] = []  # fingerprints of rounds written before and removed since, newest last
    since: float = 0.0  # time.time() when the entry last went from empty to holding rounds


class ImportedRound(msgspec.Struct, frozen=True):
    user: Message
    assistant: Message


class Plan(msgspec.Struct, frozen=True):
    clear: bool = False  # Backend.AI cleared the deployment: everything bai holds before the imports goes
    imports: list[ImportedRound] = []  # rounds Backend.AI added, oldest first
    unplaceable: int = 0  # new messages that form no round
    doubtful: bool = False  # looked like a clear, but may be a save that began before bai wrote these rounds

    @property
    def changes(self) -> bool:
        return self.clear or bool(self.imports)


def reconcile(theirs: list[Message] | None, exported: Exported | None, local: list[RoundEvent], *,
              saved_at: float = 0.0, chats_seen: bool = False) -> Plan:
    """What Backend.AI did to one deployment, as a plan for bai's stream.

    `theirs`: the deployment's entry in the file now (None: no entry); `exported`: what bai
    last wrote for it (None: nothing); `local`: the rounds bai's stream holds now;
    `saved_at`: when the file was saved; `chats_seen`: whether it brought new rounds anywhere."""
    shown = exported.rounds if exported is not None else []
    if not theirs:
        return _clear_if_sure(exported, shown, saved_at, chats_seen, [], 0)
    known = set(shown)
    if exported is not None:
        known.update(exported.retired)
    known.update(round_fingerprint(r) for r in local)
    items = _pair(theirs)
    last_known = max((i for i, item in enumerate(items) if isinstance(item, ImportedRound) and _fp(item) in known), default=-1)
    new = items[last_known + 1 :]
    imports = [item for item in new if isinstance(item, ImportedRound)]
    unplaceable = len(new) - len(imports)
    if last_known < 0 and len(theirs) < BACKEND_AI_MAX_MESSAGES:
        # None of bai's rounds, and not for want of room: cleared, then chatted on.
        return _clear_if_sure(exported, shown, saved_at, chats_seen, imports, unplaceable)
    return Plan(imports=imports, unplaceable=unplaceable)


def _clear_if_sure(exported: Exported | None, shown: list[str], saved_at: float, chats_seen: bool,
                   imports: list[ImportedRound], unplaceable: int) -> Plan:
    """The entry is gone (or holds none of bai's rounds): a clear, unless the save that did it
    may have begun before bai wrote the deployment's first rounds (see the module's doc)."""
    if not shown:
        return Plan(imports=imports, unplaceable=unplaceable)
    recent = exported is not None and saved_at - exported.since < STALE_WINDOW
    if recent and chats_seen:
        return Plan(imports=imports, unplaceable=unplaceable, doubtful=True)
    return Plan(clear=True, imports=imports, unplaceable=unplaceable)


def doubt_message(deployment: str) -> str:
    return (f"Backend.AI's history.json lacks {deployment}'s rounds, but a Backend.AI chat that began before bai "
            f"saved them may have dropped them: bai keeps them (if you cleared {deployment} in Backend.AI, clear "
            f"it in bai too: bai deployment chat-history clear {deployment})")


def has_new_rounds(theirs: list[Message], exported: Exported | None) -> bool:
    """Whether an entry holds a round bai never wrote (a chat by Backend.AI), judged from the
    record alone."""
    known = set(exported.rounds) | set(exported.retired) if exported is not None else set()
    return any(isinstance(item, ImportedRound) and _fp(item) not in known for item in _pair(theirs))


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

