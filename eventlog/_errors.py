"""Every error the store raises, in one place.

StoreError                    base; its str() is a one-line message fit for a user
├── InvalidDeploymentId       the id breaks the naming rule (also a ValueError)
├── StoreBusy                 another process held the lock past the timeout
├── StoreWriteError           the disk refused a write (ENOSPC, EIO, short write...)
│   └── SharedHistoryStale    a clear is saved, but history.json (Backend.AI's view) still shows it
├── StoreReadError            a file of the store exists but cannot be read (EACCES, EIO, a FIFO...)
├── StoreVersionError         a file was written by a newer version of the store
└── StoreUnwritable           checked before a request is sent: the round could not be saved
                              (read-only, a link or a FIFO in its place, the lock held)

A path holding something bai does not write (a symbolic link, a FIFO, a folder where a file
belongs) is reported through these with the cause _fsio.OddPath, whose text says what it is.
"""

from __future__ import annotations

import errno


class StoreError(Exception):
    """Base of all store errors; the message is one line meant for the user."""


class InvalidDeploymentId(StoreError, ValueError):
    def __init__(self, deployment: object) -> None:
        shown = repr(deployment) if len(repr(deployment)) <= 60 else repr(deployment)[:57] + "..."
        super().__init__(
            f"invalid deployment id {shown}: use 1-128 characters of A-Z a-z 0-9 . _ : -, "
            "starting with a letter or digit"
        )
        self.deployment = deployment


class InvalidConversationName(InvalidDeploymentId):
    def __init__(self, name: object) -> None:
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        StoreError.__init__(self, f"invalid conversation name {shown}: use 1-64 characters of A-Z a-z 0-9 . _ -, "
                                  "starting with a letter or digit")
        self.deployment = name


class TooManyConversations(StoreError):
    """A new conversation would pass the deployment's bound on conversations (see _store)."""


class StoreBusy(StoreError):
    def __init__(self, lock_path: str, timeout: float) -> None:
        super().__init__(
            f"chat history store is busy: another bai process held {lock_path} for over {timeout:g}s; try again"
        )


def _reason(cause: OSError) -> str:
    advice = getattr(cause, "advice", None)  # an _fsio.OddPath: what the path is, and what to do
    if advice is not None:
        return f"{cause.strerror}; {advice}"
    return {
            errno.ENOSPC: "the disk is full",
            errno.EDQUOT: "the disk quota is exceeded",
            errno.EIO: "an I/O error occurred",
            errno.EROFS: "the file system is read-only",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
    }.get(cause.errno or 0, cause.strerror or str(cause))


class StoreWriteError(StoreError):
    """A write did not reach the disk; whatever was there before is still valid, unless
    `uncertain` (the disk failed even at undoing it: it may or may not have been kept)."""

    def __init__(self, what: str, cause: OSError, *, uncertain: bool = False) -> None:
        outcome = "it may or may not have been kept" if uncertain else "nothing was changed"
        super().__init__(f"could not save {what}: {_reason(cause)}; {outcome}")
        self.cause = cause
        self.uncertain = uncertain


class StoreReadError(StoreError):
    def __init__(self, path: str, cause: OSError) -> None:
        if getattr(cause, "advice", None) is not None:  # an _fsio.OddPath
            super().__init__(f"could not read {path}: it is {cause.kind}, not {cause.wanted}; {cause.advice}")  # type: ignore[attr-defined]
        else:
            super().__init__(f"could not read {path}: {_reason(cause)}")
        self.cause = cause
        self.path = path


class StoreVersionError(StoreError):
    def __init__(self, path: str, version: object) -> None:
        super().__init__(f"{path} was written by a newer bai (format version {version}); upgrade bai to use it")


class SharedHistoryStale(StoreWriteError):
    """A clear is committed in bai's log, but history.json could not be rewritten: Backend.AI
    still shows the cleared rounds until bai's next write (which retries) succeeds."""

    def __init__(self, cause: OSError) -> None:
        StoreError.__init__(
            self,
            f"cleared, but history.json (what Backend.AI reads) could not be updated: {_reason(cause)}; "
            "bai's next write retries"
        )
        self.cause = cause
        self.uncertain = False


class StoreUnwritable(StoreError):
    """Found before a request was sent: a round could not be saved now, so nothing is spent."""

    def __init__(self, detail: str, cause: BaseException | None = None) -> None:
        super().__init__(f"nothing was sent, as the answer could not be saved: {detail}")
        self.cause = cause


def describe(cause: BaseException) -> str:
    """A store error's reason, or an OSError's, in a few words (for StoreUnwritable)."""
    if isinstance(cause, StoreWriteError) and isinstance(cause.cause, OSError):
        return _reason(cause.cause)
    if isinstance(cause, OSError):
        return _reason(cause)
    return str(cause)
