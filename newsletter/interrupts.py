"""Turn SIGINT/SIGTERM into a stop request while a loop runs: yields a flag that says if one came."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class StopRequest:
    """Set when a signal asked the running loop to stop."""

    def __init__(self) -> None:
        self.signalled = False


@contextlib.contextmanager
def signals_set(event: threading.Event) -> Iterator[StopRequest]:
    """While inside, SIGINT and SIGTERM only set event (and the yielded flag); handlers restored after.

    A KeyboardInterrupt raised at an arbitrary line could fall between claiming rows and handing
    them to a worker, leaving them "sending" for no reason; a flag the loop checks at its own safe
    points cannot. Outside the main thread (the scheduler's workers) signals are not ours to take.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def ask_stop(_signum: int, _frame: object) -> None:
        request.signalled = True
        event.set()

    previous = {sig: signal.signal(sig, ask_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
