"""A rate limit shared by every worker of a backend, kept in the database (queue_rates).

The same spacing rule as delivery.pacing.RateLimiter (each message takes 1/rate seconds of a
timeline that idle time does not fill up), but the timeline's end lives in one row that every
worker moves forward with a single UPDATE (its row lock orders them), on the database's clock,
so workers on hosts whose clocks differ still share one limit.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from ..config import Config

BLOCK_SECONDS = 0.05      # each worker reserves about this much of the timeline per query

_RESERVE = text(
    "UPDATE queue_rates SET next_at = GREATEST(next_at, EXTRACT(EPOCH FROM clock_timestamp())) + :span "
    "WHERE name = :name RETURNING next_at - :span - EXTRACT(EPOCH FROM clock_timestamp())")
_CREATE = text("INSERT INTO queue_rates (name, next_at) VALUES (:name, 0) ON CONFLICT (name) DO NOTHING")


def rate_key(config: "Config") -> str:
    """Return the name of the backend's shared limit: one per backend and destination."""
    d = config.delivery
    if d.backend == "smtp":
        return f"smtp://{d.smtp.host}:{d.smtp.port}"
    if d.backend == "http":
        return f"http:{d.http.provider}:{d.http.url}"
    return d.backend


class SharedRateLimiter:
    """acquire(n, stop) like delivery.pacing.RateLimiter, against a limit of `rate` messages per
    second shared through the database by every process that uses the same name (rate <= 0: none).

    Each query reserves a block of the timeline (BLOCK_SECONDS of sending, or n messages when
    more) that this process then spends at the same pace; what is left unspent when a run ends is
    never used by anyone, so the limit errs on the slow side.
    """

    def __init__(self, engine: Engine, name: str, rate: float):
        self.engine, self.name, self.rate = engine, name, rate
        self.block = max(1, math.ceil(rate * BLOCK_SECONDS)) if rate > 0 else 0
        self._lock = threading.Lock()
        self._left = 0                      # messages of the reserved block not handed out yet
        self._next = time.monotonic()       # when the next of them may leave

    def _reserve(self, n: int) -> float:
        """Reserve n messages' worth of the shared timeline; return seconds until it starts (may be < 0)."""
        params = {"name": self.name, "span": n / self.rate}
        with self.engine.begin() as conn:
            wait = conn.execute(_RESERVE, params).scalar()
            if wait is None:
                conn.execute(_CREATE, {"name": self.name})
                wait = conn.execute(_RESERVE, params).scalar()
        return float(wait)

    def acquire(self, n: int = 1, stop: threading.Event | None = None) -> bool:
        """Wait until n messages may be sent; return False when stop was set while waiting."""
        if self.rate <= 0:
            return not (stop is not None and stop.is_set())
        with self._lock:
            now = time.monotonic()
            if self._left >= n:
                start = max(self._next, now)
            else:
                take = max(n, self.block)
                start = now + max(0.0, self._reserve(take))
                self._left = take
            self._next = start + n / self.rate
            self._left -= n
        wait = start - time.monotonic()
        if wait > 0:
            if stop is not None:
                return not stop.wait(wait)
            time.sleep(wait)
        return not (stop is not None and stop.is_set())
