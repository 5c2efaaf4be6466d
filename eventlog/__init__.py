"""The transcript store of `bai`: per-deployment event logs, compaction and the history.json projection.

    store = Store()                                   # $BAI_CHAT_HOME or ~/.backend.ai/deployment_chat
    store.record_round("dep-1", "hi", "hello!")       # durable when it returns
    store.context("dep-1", limit=10)                  # [{"role": "user", ...}, ...] for replay
    store.history("dep-1"); store.clear("dep-1"); store.compact(); store.deployments()
    store.record_round(stream_id("dep-1", "work"), "hi", "hello!")  # another conversation of dep-1

Nothing here knows about HTTP or the command line.
"""

from ._context import as_messages, recent_rounds
from ._caps import DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES, Caps, CapsPolicy
from ._errors import (
    InvalidConversationName, InvalidDeploymentId, SharedHistoryStale, StoreBusy, StoreError, StoreReadError, StoreUnwritable, StoreVersionError,
    StoreWriteError, TooManyConversations,
)
from ._events import RoundEvent
from ._files import default_root
from ._ids import (
    MAIN, canonical_deployment_id, check_conversation_name, check_deployment_id, check_stream_id, is_uuid,
    is_valid_deployment_id, split_stream_id, stream_id,
)
from ._projection import Message
from ._store import DeploymentSummary, Recorded, Store

__all__ = [
    "MAIN", "Caps", "CapsPolicy", "InvalidConversationName", "TooManyConversations", "check_conversation_name",
    "check_stream_id", "split_stream_id", "stream_id", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_MESSAGES", "DeploymentSummary",
    "InvalidDeploymentId", "Message", "Recorded", "RoundEvent", "SharedHistoryStale", "Store", "StoreBusy",
    "StoreError", "StoreReadError", "StoreUnwritable", "StoreVersionError", "StoreWriteError", "as_messages", "canonical_deployment_id",
    "check_deployment_id", "default_root", "is_uuid", "is_valid_deployment_id", "recent_rounds",
]
