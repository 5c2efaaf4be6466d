"""Running the real `bai` executable and reading the store's real files.

Every test gets its own BAI_CHAT_HOME; every subprocess runs under a timeout, with stdin
closed unless a test feeds it (so a forgotten MESSAGE never blocks on a terminal).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BAI = str(Path(sys.executable).with_name("bai"))  # the installed console script of this venv
if not os.path.exists(BAI):
    BAI = str(REPO / ".venv" / "bin" / "bai")
PYTHON = sys.executable
# The deployments the fixtures configure: UUIDs, as Backend.AI names deployments, so history.json
# (which holds only those) is written and checked too.
G = "00000000-0000-4000-8000-0000000000a9"  # llama-server
M = "00000000-0000-4000-8000-0000000000b7"  # LiteLLM
TIMEOUT = 60.0

# Environment that must not leak into bai from the caller: a proxy would take 127.0.0.1
# traffic elsewhere, BAI_DEBUG would turn errors into tracebacks, NO_COLOR is set per test.
_DROP = {"BAI_DEBUG", "NO_COLOR", "BAI_CHAT_HOME", "http_proxy", "https_proxy", "all_proxy",
         "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}


def bai_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env["BAI_CHAT_HOME"] = str(home)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


@dataclass
class Result:
    args: list[str]
    code: int
    out: str
    err: str

    def __str__(self) -> str:  # shown by a failing assert
        return f"bai {' '.join(self.args)} -> {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def bai(home: Path, *args: str, input: str | None = None, timeout: float = TIMEOUT, **env: str) -> Result:
    proc = subprocess.run(
        [BAI, *args], env=bai_env(home, **env), capture_output=True, text=True, timeout=timeout,
        input=input, stdin=None if input is not None else subprocess.DEVNULL,
    )
    return Result(list(args), proc.returncode, proc.stdout, proc.stderr)


def configure(home: Path, dep: str, endpoint: str, *extra: str) -> None:
    r = bai(home, "deployment", "chat-config", "set", dep, "--endpoint", endpoint, *extra)
    assert r.code == 0, r


def chat(home: Path, dep: str, *args: str, **kw) -> Result:
    return bai(home, "deployment", "chat", dep, *args, **kw)


def show(home: Path, dep: str) -> list[dict]:
    """`chat-history show ID --json` messages (oldest first)."""
    r = bai(home, "deployment", "chat-history", "show", dep, "--json")
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert doc["deployment"] == dep
    return doc["messages"]


def log_records(home: Path, dep: str) -> list[dict]:
    """Every record of bai/logs/<dep>.jsonl, as written (empty if there is no log)."""
    path = home / "bai" / "logs" / f"{dep}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


def log_rounds(home: Path, dep: str) -> list[dict]:
    """The round records of the deployment's log after its last clear (what the log holds)."""
    rounds: list[dict] = []
    for rec in log_records(home, dep):
        if rec["type"] == "clear":
            rounds = []
        elif rec["type"] == "round":
            rounds.append(rec)
    return rounds


def projection(home: Path, dep: str) -> list[dict]:
    """The deployment's messages in history.json."""
    path = home / "history.json"
    if not path.exists():
        return []
    return json.loads(path.read_bytes())["deployments"].get(dep, [])


def printed(text: str) -> str:
    """What bai prints for an answer `text`: the text, with a newline added if it has none."""
    return text if text.endswith("\n") else text + "\n"


def assert_one_line_error(r: Result, code: int = 1) -> str:
    """Exit `code`, exactly one line on stderr, `bai: error:` and no traceback; returns the line."""
    assert r.code == code, r
    assert "Traceback" not in r.err, r
    lines = r.err.splitlines()
    assert len(lines) == 1, r
    assert lines[0].startswith("bai: error: "), r
    return lines[0]


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under root, relative path -> bytes."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def chat_posts(proxy) -> list:
    return [r for r in proxy.requests if r.method == "POST" and r.path.endswith("/chat/completions")]


def model_gets(proxy) -> list:
    return [r for r in proxy.requests if r.method == "GET" and r.path.endswith("/models")]
