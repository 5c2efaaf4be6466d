"""The README's demo: a real model on 127.0.0.1, and two `bai deployment chat` calls that form
one conversation. Run by `bash tests/demo.sh` (which installs everything first)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.realservers.servers import start_llama_server

BAI = str(Path(sys.executable).with_name("bai"))
DEPLOYMENT = "gemma-demo"


def bai(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    print(f"\n$ bai {shlex.join(args)}", flush=True)
    done = subprocess.run([BAI, *args], env=env, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"demo: `bai {shlex.join(args)}` exited {done.returncode}")
    return done


def main() -> None:
    home = Path(os.environ.get("BAI_CHAT_HOME") or tempfile.mkdtemp(prefix="bai-demo-"))
    env = {**os.environ, "BAI_CHAT_HOME": str(home)}
    print(f"Starting llama-server (Gemma 3 270M, base model: it mostly echoes) on 127.0.0.1; store in {home}")
    # The server's log folder goes when the demo ends (the conversation's store stays, said below).
    with tempfile.TemporaryDirectory(prefix="bai-demo-server-") as logs, start_llama_server(log_dir=Path(logs)) as server:
        bai("deployment", "chat-config", "set", DEPLOYMENT, "--endpoint", server.root_url, env=env)
        bai("deployment", "chat", DEPLOYMENT, "My name is Ada and I like prime numbers.",
            "--max-tokens", "24", "--verbose", env=env)
        bai("deployment", "chat", DEPLOYMENT, "What is my name?", "--max-tokens", "24", "--verbose", env=env)
        bai("deployment", "chat", DEPLOYMENT, "What is my name?", "--max-tokens", "24", "--verbose",
            "--history-limit", "0", env=env)
        bai("deployment", "chat-history", "show", DEPLOYMENT, env=env)
        bai("deployment", "chat-history", "list", env=env)
    print("\nThe second call replayed the first round (see 'replayed 2 message(s)' and its larger prompt);"
          "\nthe third, with --history-limit 0, sent the question alone. The server is stopped;"
          f"\nthe conversation stays in {home}.")


if __name__ == "__main__":
    main()
