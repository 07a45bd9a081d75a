"""The send loop of one run: claim rows, send them on worker threads, record, retry, pause."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from .backends.base import Backend, MessageSource
from .errors import ConfigError, DeliveryError, NewsletterError, RecipientRejected, TransientDeliveryError
from .ledger import Claimed, Ledger, Outcome
from .models import Delivery, Recipient
from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from .config import DeliverySection

log = logging.getLogger(__name__)

TASK_ROWS = 32          # rows per worker task when the backend sends one message per call
FLUSH_ROWS = 256        # record results at least this often (rows) ...
FLUSH_SECONDS = 0.1     # ... or this often (seconds): fewer unknown rows after a crash
MAX_RETRY_WAIT = 300.0  # a retry further away than this is left deferred for the next run


class _Marker:
    """Stands for a row's result when the backend gave none.

    kind "release": handed back untried (the run stopped first); "broken": its batch failed
    unexpectedly, so it may or may not have gone out; "fatal": its batch hit a ConfigError, not
    sent and the run stops; "unbuildable": its message could not be personalised.
    """

    def __init__(self, kind: str, error: BaseException | None = None):
        self.kind, self.error = kind, error


RELEASE = _Marker("release")
_NO_RECIPIENT = Recipient(email="", message_id="")
Result = Delivery | DeliveryError | _Marker


@dataclass
class LoopTally:
    """What one run did, row by row."""

    sent: int = 0
    bounced: int = 0
    deferred: int = 0       # left deferred for the next run
    failed: int = 0
    skipped: int = 0
    unknown: int = 0        # batches that failed unexpectedly mid-send
    released: int = 0       # claimed but handed back untried when the run stopped
    retries: int = 0
    paused: str = ""        # why the run paused, when it did


class SendLoop:
    """One run over the claimable rows of (issue, list); run() returns a LoopTally or raises."""

    def __init__(self, *, ledger: Ledger, backend: Backend, source: MessageSource,
                 factory_recipient: Callable[..., Recipient], delivery: "DeliverySection", issue_id: str,
                 list_name: str, retry_unknown: bool, total: int,
                 progress: Callable[[int, int], None] | None = None):
        self.ledger, self.backend, self.source = ledger, backend, source
        self.recipient = factory_recipient
        self.issue_id, self.list_name, self.retry_unknown = issue_id, list_name, retry_unknown
        self.concurrency = max(1, delivery.concurrency)
        rate = delivery.rate_per_second
        batch = max(1, int(backend.max_batch))
        task = batch if batch > 1 else TASK_ROWS
        if rate > 0:
            # Claim about a tenth of a second of sending per worker: at a low rate a full batch
            # would be claimed long before it goes out (and be "unknown" after a crash).
            per_worker = max(1, int(rate / (10 * self.concurrency)))
            batch = min(batch, per_worker)
            task = max(batch, min(task, per_worker))
        self.batch, self.task_rows = batch, task
        # One task more than workers: a worker that finishes finds the next task waiting, while
        # few rows sit claimed but unsent (those would be reported unknown after a crash).
        self.depth = self.concurrency + 1
        self.limiter = RateLimiter(rate)
        self.max_attempts = max(1, delivery.max_attempts)
        self.backoff = max(0.0, delivery.backoff_seconds)
        self.pause_ratio = delivery.pause_failure_ratio
        self.window: deque[bool] = deque(maxlen=max(0, delivery.pause_window))   # maxlen 0: never pause
        self.total, self.progress = total, progress
        self.tally = LoopTally()
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self.done = 0
        self._bad = 0                              # failures in self.window
        self._cursor = 0
        self._exhausted = False
        self._tries: dict[int, int] = {}          # attempts in this run, per row
        self._retries: list[tuple[float, int]] = []  # (due time, row id)
        self._inflight: dict[Future, None] = {}
        self._buffer: list[Outcome] = []
        self._last_flush = time.monotonic()

    # -- main thread -----------------------------------------------------------------------------

    def run(self) -> LoopTally:
        """Send every claimable row once (plus in-run retries); return the tally, raise on a fatal error."""
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="newsletter-send")
        try:
            self._loop(pool)
        except KeyboardInterrupt:
            # Ctrl-C: stop claiming, let the batches on the wire finish, record them, then re-raise.
            self.stop.set()
            self._drain()
            raise
        except SQLAlchemyError as err:
            # The database failed under us: what is in flight stays "sending" and the next run
            # reports it as unknown, exactly as after a crash.
            self.stop.set()
            self._inflight.clear()
            self._buffer = []
            reason = str(getattr(err, "orig", None) or err).splitlines()[0]
            raise DeliveryError(f"database error while sending: {reason}; run the send again to resume") from err
        finally:
            pool.shutdown(wait=True)
            self._flush()
        if isinstance(self.fatal, NewsletterError):
            raise self.fatal
        if self.fatal is not None:
            raise DeliveryError(f"the {type(self.backend).__name__} backend failed unexpectedly: "
                                f"{self.fatal}; those messages are marked unknown") from self.fatal
        return self.tally

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        """Keep the pipeline full until no row is left to send or the run stops."""
        while True:
            if not self.stop.is_set():
                self._refill(pool)
            if not self._inflight:
                if self.stop.is_set() or (self._exhausted and not self._retries):
                    return
                self._flush()
                delay = self._retries[0][0] - time.monotonic() if self._retries else 0
                if delay > 0:
                    self.stop.wait(min(delay, 1.0))   # only retries are left: wait for the next one
                continue
            done, _ = wait(list(self._inflight), timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
            for fut in done:
                del self._inflight[fut]
                self._collect(fut.result())
            if len(self._buffer) >= FLUSH_ROWS or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                self._flush()

    def _drain(self) -> None:
        """Wait for the tasks in flight and collect their results."""
        for fut in list(self._inflight):
            self._collect(fut.result())
        self._inflight.clear()

    def _refill(self, pool: ThreadPoolExecutor) -> None:
        """Claim rows (due retries first) and submit them as tasks while the pipeline has room."""
        room = self.depth - len(self._inflight)
        if room <= 0:
            return
        now = time.monotonic()
        due: list[int] = []
        while self._retries and self._retries[0][0] <= now and len(due) < room * self.task_rows:
            due.append(heapq.heappop(self._retries)[1])
        if not due and self._exhausted:
            return
        self._flush()                              # a retried row's "deferred" must be on disk first
        claimed = self.ledger.claim_rows(due)
        self.tally.retries += len(claimed)
        need = room * self.task_rows - len(claimed)
        if need > 0 and not self._exhausted:
            rows, skipped, self._cursor = self.ledger.claim(
                self.issue_id, self.list_name, after_id=self._cursor, limit=need,
                retry_unknown=self.retry_unknown)
            self.tally.skipped += skipped
            self.done += skipped
            self._exhausted = len(rows) + skipped < need
            claimed.extend(rows)
        for c in claimed:
            self._tries[c.row_id] = self._tries.get(c.row_id, 0) + 1
        for i in range(0, len(claimed), self.task_rows):
            self._inflight[pool.submit(self._task, claimed[i:i + self.task_rows])] = None

    def _collect(self, results: list[tuple[Claimed, Recipient, Result]]) -> None:
        """Turn one task's results into outcomes, retries, tallies and the pause decision."""
        for claimed, rec, result in results:
            rid = claimed.row_id
            tries = self._tries.pop(rid, 1)        # kept only while in flight: memory stays flat
            if isinstance(result, _Marker) and result.kind == "unbuildable":
                self._finish(Outcome(rid, "failed", reply=str(result.error)), failed=True)
                self.tally.failed += 1
                continue
            if isinstance(result, Delivery):
                self._finish(Outcome(rid, "sent", result.message_id or rec.message_id,
                                     result.provider_id, result.reply), failed=False)
                self.tally.sent += 1
            elif isinstance(result, RecipientRejected):
                log.warning("%s rejected: %s", rec.email, result.reply or result)
                self._finish(Outcome(rid, "bounced", rec.message_id, reply=result.reply or str(result),
                                     subscriber_id=claimed.subscriber.id), failed=True)
                self.tally.bounced += 1
            elif isinstance(result, TransientDeliveryError):
                self._transient(rid, rec, result, tries)
            elif isinstance(result, DeliveryError):
                self._finish(Outcome(rid, "failed", rec.message_id, reply=result.reply or str(result)), failed=True)
                self.tally.failed += 1
            elif result.kind == "fatal":
                self.fatal = self.fatal or result.error
                self._buffer.append(Outcome(rid, "deferred", rec.message_id, reply=str(result.error)))
                self.tally.deferred += 1
            elif result.kind == "broken":
                self.fatal = self.fatal or result.error
                self._finish(Outcome(rid, "unknown", rec.message_id, reply=f"backend error: {result.error}"),
                             failed=True)
                self.tally.unknown += 1
            else:
                self._buffer.append(Outcome(rid, "pending"))
                self.tally.released += 1

    def _transient(self, rid: int, rec: Recipient, err: TransientDeliveryError, tries: int) -> None:
        """Record a temporary failure and schedule the retry, or leave the row for the next run."""
        reply = err.reply or str(err)
        delay = err.retry_after if err.retry_after is not None else self.backoff * 2 ** (tries - 1)
        outcome = Outcome(rid, "deferred", rec.message_id, reply=reply)
        if tries < self.max_attempts and delay <= MAX_RETRY_WAIT and not self.stop.is_set():
            log.debug("%s deferred (%s): retry %d in %.1fs", rec.email, reply, tries + 1, delay)
            self._buffer.append(outcome)
            heapq.heappush(self._retries, (time.monotonic() + delay, rid))
            self._tries[rid] = tries
            self._note(failed=True)
        else:
            log.warning("%s deferred to the next run (attempt %d failed): %s", rec.email, tries, reply)
            self._finish(outcome, failed=True)
            self.tally.deferred += 1

    def _finish(self, outcome: Outcome, *, failed: bool) -> None:
        """Buffer a row's outcome for this run and count it as done."""
        self._buffer.append(outcome)
        self.done += 1
        self._note(failed)

    def _note(self, failed: bool) -> None:
        """Add one outcome to the failure window; pause the run when too many recent ones failed."""
        if self.window.maxlen == 0 or self.stop.is_set():
            return
        if len(self.window) == self.window.maxlen:
            self._bad -= self.window[0]            # the oldest outcome drops out of the window
        self.window.append(failed)
        self._bad += failed
        bad = self._bad
        if len(self.window) == self.window.maxlen and bad > self.pause_ratio * len(self.window):
            last = self._buffer[-1].reply if self._buffer else ""
            self.tally.paused = (f"{bad} of the last {len(self.window)} messages failed"
                                 + (f" (last reply: {last})" if last else ""))
            log.warning("pausing the send: %s", self.tally.paused)
            self.stop.set()

    def _flush(self) -> None:
        """Write the buffered outcomes in one transaction and report progress."""
        if self._buffer:
            self.ledger.record(self._buffer)
            self._buffer = []
        self._last_flush = time.monotonic()
        if self.progress is not None:
            self.progress(self.done, self.total)

    # -- worker threads --------------------------------------------------------------------------

    def _task(self, claimed: list[Claimed]) -> list[tuple[Claimed, Recipient, Result]]:
        """Personalise and send rows in backend-sized batches; return each with its result (never raises)."""
        out: list[tuple[Claimed, Recipient, Result]] = []
        items: list[tuple[Claimed, Recipient]] = []
        # Built here rather than in the main thread, which meanwhile talks to the database.
        for c in claimed:
            try:
                items.append((c, self.recipient(c.subscriber)))
            except NewsletterError as err:
                out.append((c, _NO_RECIPIENT, _Marker("unbuildable", err)))
        for i in range(0, len(items), self.batch):
            part = items[i:i + self.batch]
            if self.stop.is_set() or not self.limiter.acquire(len(part), self.stop):
                out.extend((c, r, RELEASE) for c, r in part)
                continue
            results: list[Result]
            try:
                results = list(self.backend.send(self.source, [r for _, r in part]))
            except ConfigError as err:
                self.stop.set()
                results = [_Marker("fatal", err)] * len(part)
            except DeliveryError as err:
                results = [err] * len(part)        # the whole batch failed the same way
            except Exception as err:  # noqa: BLE001 - a backend bug must not lose track of the rows
                self.stop.set()
                results = [_Marker("broken", err)] * len(part)
            if len(results) != len(part):
                self.stop.set()
                broken = _Marker("broken", ValueError(f"{len(results)} results for {len(part)} messages"))
                results = [broken] * len(part)
            out.extend((c, r, res) for (c, r), res in zip(part, results))
        return out
