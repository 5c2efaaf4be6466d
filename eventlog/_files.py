"""Where the store's files live under its root."""

from __future__ import annotations

import os
import msgspec
from datetime import datetime, timezone
from pathlib import Path

LOG_SUFFIX = ".jsonl"


def default_root() -> Path:
    env = os.environ.get("BAI_CHAT_HOME")
    return Path(env) if env else Path.home() / ".backend.ai" / "deployment_chat"


class StorePaths(msgspec.Struct, frozen=True):
    root: Path

    @property
    def projection(self) -> Path:
        return self.root / "history.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, deployment: str) -> Path:
        return self.logs / f"{deployment}{LOG_SUFFIX}"

    def quarantine(self, original: Path) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        return original.with_name(f"{original.name}.corrupt-{stamp}")

    def logged_deployments(self) -> list[str]:
        try:
            names = os.listdir(self.logs)
        except FileNotFoundError:
            return []
        return sorted(n[: -len(LOG_SUFFIX)] for n in names if n.endswith(LOG_SUFFIX) and not n.startswith("."))
