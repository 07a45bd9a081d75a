"""The recording side of the send loop: outcomes buffered for the ledger, bounces held on probation.

A refusal that names the address (a bounce) suppresses the subscriber for good, so it is
recorded only once it can be trusted: when the run went on long enough after it without the
circuit breaker tripping (the refusals were not a server refusing everyone), or the run ended
normally. When the run stops instead (the breaker, a StopRun, a signal), the held bounces go
back to pending with their reply kept: the next run asks again, and nobody was suppressed for
a fault of the server or of our settings.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from ..ledger import Ledger, Outcome
from ..models import DeliveryState

Progress = Callable[[int, int], None]


class Recorder:
    """Buffers outcomes and writes them in one transaction per flush; holds bounces on probation.

    maturity: how many later results a bounce waits for (the breaker's reach) before it is
    trusted. Used by the send loop's main thread only.
    """

    def __init__(self, ledger: Ledger, maturity: int, progress: Progress | None = None):
        self.ledger, self.maturity, self.progress = ledger, max(0, maturity), progress
        self.buffer: list[Outcome] = []
        self.held: deque[tuple[int, Outcome]] = deque()   # (results seen when held, outcome)
        self.seen = 0                # results collected so far in this run
        self.last_flush = time.monotonic()

    def add(self, outcome: Outcome) -> None:
        """Buffer one outcome."""
        self.buffer.append(outcome)

    def hold(self, outcome: Outcome) -> None:
        """Hold a bounce, or a policy refusal of one message (failed), until it can be trusted
        (see the module's docstring)."""
        self.held.append((self.seen, outcome))

    def saw(self, n: int) -> list[Outcome]:
        """Count n more results; buffer the held outcomes that matured and return them."""
        self.seen += n
        matured: list[Outcome] = []
        while self.held and self.held[0][0] + self.maturity <= self.seen:
            matured.append(self.held.popleft()[1])
        self.buffer += matured
        return matured

    def release_held(self) -> list[Outcome]:
        """Trust every held outcome (the run ended normally); return them."""
        released = [outcome for _, outcome in self.held]
        self.buffer += released
        self.held.clear()
        return released

    def void_held(self, why: str) -> list[Outcome]:
        """Send every held outcome back to pending, its reply kept and why noted; return the held ones."""
        voided = [o for _, o in self.held]
        for o in voided:
            self.buffer.append(Outcome(o.row_id, DeliveryState.PENDING, o.message_id, o.provider_id,
                                       f"{o.reply} (not {o.status}: {why})"))
        self.held.clear()
        return voided

    def flush(self, done: int, total: int) -> None:
        """Write the buffered outcomes in one transaction and report progress (done of total)."""
        if self.buffer:
            self.ledger.record(self.buffer)
            self.buffer = []
        self.last_flush = time.monotonic()
        if self.progress is not None:
            self.progress(done, total)
