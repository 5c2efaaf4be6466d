"""The interactive mode's line history (readline's), kept in bai/input_history (0600).

It mirrors what was typed, so a clear forgets from it what it forgets from the transcript
(forget_typed): the cleared text stays nowhere on disk.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from eventlog._files import StorePaths

HISTORY_FILE = "input_history"  # in bai/, 0600 like the transcript it mirrors
MAX_LINES = 1000


def history_path(paths: StorePaths) -> Path:
    return paths.own / HISTORY_FILE


class InputHistory:
    """readline's line history, kept in bai/input_history (0600). Written like every file of
    the store: into a new private file, then put in place by rename; a link (or a FIFO) in its
    place is refused with one line, and its target left untouched."""

    def __init__(self, path: Path | None, error: Callable[[str], None]) -> None:
        self.path = path
        self.error = error

    def save(self) -> None:
        if self.path is None:
            return
        import readline

        from eventlog._fsio import OddPath, check_replaceable, open_private, tmp_name

        tmp = tmp_name(self.path)
        try:
            check_replaceable(self.path)
            os.close(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL))  # ours, 0600, before readline writes it
            readline.set_history_length(MAX_LINES)
            readline.write_history_file(str(tmp))
            os.replace(tmp, self.path)
        except OddPath as e:
            self.error(f"the input history is not saved: {e}; {e.advice}")
        except OSError:
            pass  # line history is a convenience; the transcript is what matters
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def load_input_history(paths: StorePaths, error: Callable[[str], None]) -> InputHistory:
    try:
        import readline  # line editing for input(); absent on some platforms
    except ImportError:
        return InputHistory(None, error)
    try:
        # A paste of several lines arrives as one line with its newlines in (GNU readline's
        # bracketed paste), not as one message per line. libedit knows no such setting.
        readline.parse_and_bind("set enable-bracketed-paste on")
    except Exception:  # noqa: BLE001 - a convenience: without it, pasted lines are separate messages
        pass
    from eventlog import StoreError
    from eventlog._fsio import read_bytes

    path = history_path(paths)
    legacy = paths.root / HISTORY_FILE  # where bai 0.1 kept it
    try:
        if stat.S_ISREG(os.lstat(legacy).st_mode) and not os.path.lexists(path) and stat.S_ISDIR(os.lstat(path.parent).st_mode):
            os.replace(legacy, path)
    except OSError:
        pass
    try:
        data = read_bytes(path)  # never a FIFO: reading one would wait for a writer forever
    except StoreError:
        data = None
    for line in (data or b"").decode("utf-8", "replace").splitlines()[-MAX_LINES:]:
        readline.add_history(line)
    return InputHistory(path if path.parent.is_dir() else None, error)


def forget_typed(paths: StorePaths, messages: Iterable[str] | None) -> None:
    """Remove the lines of these messages (every line, for None) from the saved line history,
    and from this process's readline history if it is loaded. Written as every store file is
    (new private file, rename); nothing happens if it cannot be (a convenience file)."""
    from eventlog import StoreError
    from eventlog._fsio import atomic_write, read_bytes

    doomed = None if messages is None else {line.strip() for m in messages for line in m.splitlines() if line.strip()}
    _forget_in_readline(doomed)
    path = history_path(paths)
    try:
        data = read_bytes(path)
    except StoreError:
        return
    if data is None:
        return
    if doomed is None:
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    lines = data.decode("utf-8", "replace").splitlines()
    kept = [line for line in lines if line.strip() not in doomed]
    if len(kept) != len(lines):
        try:
            atomic_write(path, "".join(line + "\n" for line in kept).encode())
        except OSError:
            pass


def _forget_in_readline(doomed: set[str] | None) -> None:
    import sys

    readline = sys.modules.get("readline")  # only if this process loaded it (interactive mode)
    if readline is None:
        return
    for i in range(readline.get_current_history_length(), 0, -1):  # 1-based; backwards keeps indices valid
        item = readline.get_history_item(i)
        if item is not None and (doomed is None or item.strip() in doomed):
            readline.remove_history_item(i - 1)  # 0-based
