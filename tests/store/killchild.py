"""The child process of test_sigkill.py: a writer that gets killed.

    python killchild.py loop  '{"root": ..., "dep": ..., "prefix": ..., "messages": N}'
        record rounds forever; after each acknowledged one print "<seq> <user text>" (one write)
    python killchild.py point '{"root": ..., "dep": ..., "messages": N, "point": NAME, "op": [...]}'
        run one operation with the store's I/O patched to SIGKILL this process at the named
        point (see POINTS); exit 3 if the operation ends without reaching it

Warnings go to stderr, so the parent can show them when a check fails.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _name(fd: int) -> str:
    return Path(os.readlink(f"/proc/self/fd/{fd}")).name


def install(point: str, dep: str) -> None:
    """Patch the os functions the store calls (it looks them up at call time)."""
    log = f"{dep}.jsonl"
    real_fsync, real_replace, real_open, real_ftruncate = os.fsync, os.replace, os.open, os.ftruncate
    state = {"quarantined": False}

    def fsync(fd):
        if point == "append:after-write" and _name(fd) == log:
            _die()  # the line is written, not yet fsynced
        real_fsync(fd)
        if point in ("append:after-fsync", "clear:after-tombstone") and _name(fd) == log:
            _die()  # the record is durable; history.json not refreshed / the clear not compacted

    def replace(src, dst, **kw):
        name = Path(dst).name
        if point == "compaction:before-replace" and name == log:
            _die()  # the compacted tmp file is written and fsynced, not yet in place
        if point == "projection:before-replace" and name == "history.json":
            _die()
        real_replace(src, dst, **kw)
        if point == "compaction:after-replace" and name == log:
            _die()  # in place, but the directory not fsynced
        if Path(dst).parent.name == "kept":
            state["quarantined"] = True

    def open_(path, flags, mode=0o777, **kw):
        if point == "recovery:after-quarantine" and state["quarantined"] and Path(path).name.startswith(f".{log}.tmp."):
            _die()  # the damaged log's copy is durable; the rewrite has not started
        return real_open(path, flags, mode, **kw)

    def ftruncate(fd, length):
        real_ftruncate(fd, length)
        if point == "recovery:after-truncate" and _name(fd) == log:
            _die()  # the torn tail is cut, the cut not fsynced

    os.fsync, os.replace, os.open, os.ftruncate = fsync, replace, open_, ftruncate


POINTS = [
    "append:after-write", "append:after-fsync", "compaction:before-replace", "compaction:after-replace",
    "projection:before-replace", "clear:after-tombstone", "recovery:after-quarantine", "recovery:after-truncate",
]


def main() -> None:
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    from eventlog import Caps, Store

    store = Store(args["root"], caps=Caps(messages=args["messages"]), warn=lambda m: print(m, file=sys.stderr),
                  refresh_share=0)  # history.json refreshed on every save: a kill can land in it
    dep = args["dep"]
    if mode == "loop":
        out = sys.stdout.buffer
        out.write(b"ready\n")
        out.flush()
        i = 0
        while True:
            text = f"{args['prefix']}-{i}"
            rec = store.record_round(dep, text, f"answer to {text}")
            out.write(f"{rec.seq} {text}\n".encode())  # one write: the parent never sees half a line
            out.flush()
            i += 1
    assert mode == "point" and args["point"] in POINTS, args
    install(args["point"], dep)
    op = args["op"]
    if op[0] == "round":
        store.record_round(dep, op[1], op[2])
    elif op[0] == "clear":
        store.clear(dep)
    else:
        store.compact()
    print("survived: the operation never reached", args["point"], flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
