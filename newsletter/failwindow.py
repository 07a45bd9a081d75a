"""The send loop's pause rule: the last N outcomes of a run, and whether too many of them failed."""

from __future__ import annotations

from collections import deque
from itertools import islice, repeat


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
