"""Sliding-window rate limits for the sign-up form, kept in this process's memory.

In memory on purpose: sign-ups are rare, waitress runs one process with threads, and a limit
that resets on restart costs a bot one extra hour at most. Run several processes (or several
hosts) and each keeps its own count: the effective limit is then multiplied by their number.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimit:
    """Allows at most `limit` hits per key within `window` seconds; thread-safe."""

    def __init__(self, limit: int, window: float = 3600.0, max_keys: int = 50_000,
                 clock: Callable[[], float] = time.monotonic):
        if limit < 0 or window <= 0 or max_keys < 1:
            raise ValueError("limit must be >= 0, window > 0 and max_keys >= 1")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        """Record one attempt for key; return True when it is within the limit, False when over it."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._prune(now)
                hits = self._hits[key] = deque()
            self._expire(hits, now)
            if len(hits) >= self.limit:
                # Refused attempts are not recorded: a bot that keeps trying does not extend
                # its own ban forever, it simply waits for the window to slide.
                return False
            hits.append(now)
            return True

    def remaining(self, key: str) -> int:
        """Return how many more hits key may make in the current window."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                return self.limit
            self._expire(hits, now)
            return max(0, self.limit - len(hits))

    def _expire(self, hits: deque[float], now: float) -> None:
        """Drop the hits older than the window from one key's queue."""
        cutoff = now - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()

    def _prune(self, now: float) -> None:
        """Forget idle keys; when every key is busy, forget the oldest half so memory stays bounded."""
        cutoff = now - self.window
        idle = [k for k, h in self._hits.items() if not h or h[-1] <= cutoff]
        for k in idle:
            del self._hits[k]
        if len(self._hits) >= self.max_keys:
            by_age = sorted(self._hits, key=lambda k: self._hits[k][-1])
            for k in by_age[: len(by_age) // 2 + 1]:
                del self._hits[k]
