"""A thread-safe rate limiter shared by the send loop's worker threads."""

from __future__ import annotations

import threading
import time


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
