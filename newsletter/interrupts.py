"""Turn SIGINT/SIGTERM into a stop request while a loop runs: the signal only sets an event."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def signals_set(event: threading.Event) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM only set event; the previous handlers come back after.

    A KeyboardInterrupt raised at an arbitrary line could fall between claiming rows and handing
    them to a worker, leaving them "sending" for no reason; an event the loop checks at its own
    safe points cannot. Outside the main thread (the scheduler's workers) signals are not ours.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask_stop(_signum: int, _frame: object) -> None:
        event.set()

    previous = {sig: signal.signal(sig, ask_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
