"""Timer threads that leave the process's signals to the main thread.

CPython runs signal handlers only in the main thread, and a signal interrupts a blocking read
only in the thread the kernel hands it to. A timer thread that could take SIGINT, SIGTERM or
SIGHUP would swallow it while the main thread kept waiting on the server (Ctrl-C or SIGTERM
then did nothing until the read timed out). A thread inherits the signal mask it is started
with, so timers are started with those signals blocked: the kernel gives them to the main thread.
"""

from __future__ import annotations

import signal
import threading

_MAIN_THREAD_ONLY = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def start_timer(timer: threading.Thread) -> None:
    """`timer.start()`, the new thread blocking SIGINT, SIGTERM and SIGHUP."""
    if threading.current_thread() is not threading.main_thread():
        timer.start()  # started from a thread that is not the main one: its mask is its own
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_THREAD_ONLY)
    try:
        timer.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a signal that came meanwhile is handled now
