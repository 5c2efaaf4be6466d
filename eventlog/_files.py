"""Where the store's files live under its root.

    history.json, config.json, cache.json   shared with Backend.AI, in its shapes
    .lock                                  the writers' lock (bai's; Backend.AI takes none)
    bai/logs/<deployment>.jsonl            each deployment's event log: the truth
    bai/exported.json                      what bai last wrote into history.json (round fingerprints)
    bai/exported-stamp.json                which history.json that was, and when (read on every turn)
    bai/kept/                              original bytes of damaged or unplaceable files, bounded
    bai/...                                bai's own settings, cache and input history (the CLI's)

Stores made before bai 0.2 kept the logs in `logs/`; the first writer moves them (_migrate).
"""

from __future__ import annotations

import os
from pathlib import Path

LOG_SUFFIX = ".jsonl"
# What the root holds: Backend.AI's three files, bai's lock and folder, bai 0.1's logs/ and input history.
_ROOT_NAMES = frozenset({"history.json", "config.json", "cache.json", ".lock", "bai", "logs", "input_history"})


def default_root() -> Path:
    env = os.environ.get("BAI_CHAT_HOME")
    return Path(env) if env else Path.home() / ".backend.ai" / "deployment_chat"


class StorePaths:
    """The store's file names, computed once (a turn asks for them often)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shared_history = root / "history.json"  # Backend.AI's file, and bai's projection of its UUID deployments
        self.lock = root / ".lock"
        self.own = root / "bai"  # bai's own folder: nothing in it is read or written by Backend.AI
        self.logs = self.own / "logs"
        self.legacy_logs = root / "logs"
        self.exported = self.own / "exported.json"
        self.stamp = self.own / "exported-stamp.json"
        self.kept = self.own / "kept"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StorePaths) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"StorePaths({str(self.root)!r})"

    def is_store_name(self, name: str) -> bool:
        """Whether a name in the root is the store's (its files, Backend.AI's, bai's folder, an
        old copy, a temp file): what bai may tighten there. Anything else is someone else's."""
        return name in _ROOT_NAMES or ".corrupt-" in name or (name.startswith(".") and ".tmp." in name)

    def log(self, deployment: str) -> Path:
        return self.logs / f"{deployment}{LOG_SUFFIX}"

    def legacy_log(self, deployment: str) -> Path:
        return self.legacy_logs / f"{deployment}{LOG_SUFFIX}"

    def logged_deployments(self) -> list[str]:
        """Deployments with a log file (in the legacy folder too, before it is moved)."""
        for folder in (self.logs, self.legacy_logs):
            try:
                names = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            return sorted(n[: -len(LOG_SUFFIX)] for n in names if n.endswith(LOG_SUFFIX) and not n.startswith("."))
        return []
