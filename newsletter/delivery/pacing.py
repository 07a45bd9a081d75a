"""Pacing of a send run: the rate limit, the circuit breaker that stops a run whose results turn
into failures, and SIGINT/SIGTERM as a stop request.

Everything the send loop consults between messages to decide how fast to go and whether to go on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from itertools import islice, repeat

log = logging.getLogger("newsletter.delivery.loop")


class RateLimiter:
    """Spaces sends so that at most `rate` messages per second go out (rate <= 0: no limit)."""

    def __init__(self, rate: float):
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()     # when the next message may leave

    def acquire(self, n: int = 1, stop: threading.Event | None = None) -> bool:
        """Wait until n messages may be sent; return False when stop was set while waiting."""
        if self.rate <= 0:
            return not (stop is not None and stop.is_set())
        with self._lock:
            now = time.monotonic()
            # Idle time is not saved up: a long pause does not allow a burst afterwards.
            start = max(self._next, now)
            self._next = start + n / self.rate
        wait = start - now
        if wait > 0:
            if stop is not None:
                return not stop.wait(wait)
            time.sleep(wait)
        return not (stop is not None and stop.is_set())


class FailureWindow:
    """The last `size` outcomes (True = failed); add() says when the failures pass `ratio` of a full window.

    size 0 never pauses.
    """

    def __init__(self, size: int, ratio: float):
        self._window: deque[bool] = deque(maxlen=max(0, size))
        self._ratio = ratio
        self.bad = 0                                # failures in the window

    def __len__(self) -> int:
        return len(self._window)

    def add(self, failed: bool) -> bool:
        """Add one outcome; return True when the full window now holds too many failures."""
        window = self._window
        if window.maxlen == 0:
            return False
        if len(window) == window.maxlen:
            self.bad -= window[0]                   # the oldest outcome drops out of the window
        window.append(failed)
        self.bad += failed
        return self._too_many()

    def add_successes(self, n: int) -> bool:
        """Add n successful outcomes at once; return what the last of n add(False) calls would have."""
        window = self._window
        if window.maxlen == 0 or n <= 0:
            return False
        room = window.maxlen - len(window)
        if room > 0:
            # Filling the window is the only moment successes can make it "too many": from then
            # on they only push failures out.
            take = min(room, n)
            window.extend(repeat(False, take))
            n -= take
            if self._too_many():
                return True
        if n:
            if self.bad:
                self.bad -= sum(islice(window, 0, min(n, len(window))))   # the oldest drop out
            window.extend(repeat(False, n))
        return False

    def _too_many(self) -> bool:
        """Return True when the window is full and its failures exceed the ratio."""
        return len(self._window) == self._window.maxlen and self.bad > self._ratio * len(self._window)


class CircuitBreaker:
    """Trips when a run's results cluster into failures, so a server refusing everyone does little harm.

    Three rules, from [delivery]: `consecutive` failures in a row (pause_consecutive); more than
    `ratio` of the last `window` results failed (pause_failure_ratio, pause_window); and, at the
    end, a run of two or more results that all failed. The send loop also sends the first
    `consecutive` messages on their own before any other, so a server that refuses everyone sees
    at most that many. add() may be called from several threads; the first reason sticks.
    """

    def __init__(self, consecutive: int, window: int, ratio: float):
        self.consecutive = max(0, consecutive)
        self._window = FailureWindow(window, ratio)
        self._lock = threading.Lock()
        self._streak = 0
        self.ok = 0
        self.failed = 0
        self.reason = ""
        self._last_reply = ""

    def add(self, failures: list[bool], last_reply: str = "") -> str:
        """Add results in order (True = failed); return the reason once the breaker has tripped."""
        with self._lock:
            if self.reason:
                return self.reason
            self._last_reply = last_reply or self._last_reply
            window = self._window
            for failed in failures:
                if failed:
                    self.failed += 1
                    self._streak += 1
                    if self.consecutive and self._streak >= self.consecutive:
                        self._trip(f"{self._streak} messages in a row failed", last_reply)
                else:
                    self.ok += 1
                    self._streak = 0
                if window.add(failed) and not self.reason:
                    self._trip(f"{window.bad} of the last {len(window)} messages failed", last_reply)
                if self.reason:
                    break
            return self.reason

    def add_successes(self, n: int) -> None:
        """Add n successful results at once (the common case: a whole task delivered)."""
        with self._lock:
            if self.reason or n <= 0:
                return
            self.ok += n
            self._streak = 0
            if self._window.add_successes(n):
                self._trip(f"{self._window.bad} of the last {len(self._window)} messages failed", "")

    def final(self) -> str:
        """Return the reason to stop, counting the end-of-run rule: every result (two or more) failed."""
        with self._lock:
            if not self.reason and self.ok == 0 and self.failed >= 2:
                self._trip(f"all {self.failed} messages failed", self._last_reply)
            return self.reason

    def _trip(self, why: str, last_reply: str) -> None:
        """Set the reason (the lock is held)."""
        self.reason = why + (f" (last reply: {last_reply})" if last_reply else "")


@contextlib.contextmanager
def signals_set(event: threading.Event) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM only set event; the previous handlers come back after.
    A second signal ends the process at once with that signal (the state is crash-safe).

    A KeyboardInterrupt raised at an arbitrary line could fall between claiming rows and handing
    them to a worker, leaving them "sending" for no reason; an event the loop checks at its own
    safe points cannot. Outside the main thread (the scheduler's workers) signals are not ours.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask_stop(signum: int, _frame: object) -> None:
        if not event.is_set():
            event.set()
            return
        # Asked twice: the first stop waits for the messages on the wire, which a hanging server
        # may hold for the RFC 5321 timeouts (up to 10 minutes). Die now, as a SIGKILL would:
        # the send journal tells the next run which rows were handed over (those become unknown).
        log.warning("asked again to stop: stopping now; the next run settles the messages on the wire")
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    previous = {sig: signal.signal(sig, ask_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
