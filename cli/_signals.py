"""SIGTERM and SIGHUP end bai the way Ctrl-C does: one line, exit 128 + the signal, nothing
half-saved.

While a round is being written (`saving()`, from the moment the store's lock is taken),
SIGINT, SIGTERM and SIGHUP are held: the save completes, then the signal takes effect, and the
line says the answer was saved. Elsewhere a signal raises at once, waiting for the lock
included: an answer still arriving, or waiting to be saved, is not saved (the store's writes
are whole or absent whenever they are cut short).
"""

from __future__ import annotations

# The C module under `signal`: the same functions and constants, without the 1 ms `signal`
# spends building its enums on every `bai` start (`bai --help` has a speed target).
import _signal as signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

NAMES = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)", signal.SIGHUP: "hung up (SIGHUP)"}


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived (a BaseException, like KeyboardInterrupt: no `except
    Exception` on the way may swallow it)."""

    def __init__(self, signum: int, *, saved: bool = False) -> None:
        super().__init__(signum)
        self.signum = signum
        self.saved = saved

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class InterruptedAfterSave(KeyboardInterrupt):
    """Ctrl-C arrived while the answer was being saved: it is saved."""

    saved = True


def _raise(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _handled(*signals: int) -> list[int]:
    """The signals not ignored: `nohup bai ...` ignores SIGHUP, a background job SIGINT; they stay so."""
    return [s for s in signals if signal.getsignal(s) is not signal.SIG_IGN]


def outcome(saved: object) -> str:
    """How an interrupted turn ended, for the line that says so."""
    return "the answer was saved" if saved else "nothing was saved"


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def terminating() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Terminated while inside (the previous handlers are restored)."""
    if not on_main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in _handled(signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def saving() -> Iterator[Callable[[], None]]:
    """Yields `hold`: once it is called (when the store has its lock), SIGINT, SIGTERM and
    SIGHUP are held until the block ends; then the first that came takes effect."""
    if not on_main_thread():
        yield lambda: None
        return
    pending: list[int] = []
    previous: dict[int, object] = {}

    def held(signum: int, frame: object) -> None:
        pending.append(signum)

    def hold() -> None:
        for s in _handled(signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous.setdefault(s, signal.signal(s, held))

    try:
        yield hold
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if pending:
        if pending[0] == signal.SIGINT:
            raise InterruptedAfterSave()
        raise Terminated(pending[0], saved=True)
