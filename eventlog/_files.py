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

import msgspec

LOG_SUFFIX = ".jsonl"


def default_root() -> Path:
    env = os.environ.get("BAI_CHAT_HOME")
    return Path(env) if env else Path.home() / ".backend.ai" / "deployment_chat"


class StorePaths(msgspec.Struct, frozen=True):
    root: Path

    @property
    def shared_history(self) -> Path:
        """history.json: Backend.AI's file, and bai's projection of its UUID deployments."""
        return self.root / "history.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def own(self) -> Path:
        """bai's own folder: nothing in it is read or written by Backend.AI."""
        return self.root / "bai"

    @property
    def logs(self) -> Path:
        return self.own / "logs"

    @property
    def legacy_logs(self) -> Path:
        return self.root / "logs"

    @property
    def exported(self) -> Path:
        return self.own / "exported.json"

    @property
    def stamp(self) -> Path:
        return self.own / "exported-stamp.json"

    @property
    def kept(self) -> Path:
        return self.own / "kept"

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
