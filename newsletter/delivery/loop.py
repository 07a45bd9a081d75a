"""The send loop of one run: claim rows, send them on worker threads, record, retry, pause."""

from __future__ import annotations

import gc
import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from ..backends.base import Backend, MessageSource
from ..errors import (
    DeliveryError,
    NewsletterError,
    RecipientRejected,
    SendStopped,
    TransientDeliveryError,
)
from ..ledger import Ledger, Outcome
from ..models import Delivery, DeliveryState, Recipient
from .pacing import FailureWindow, RateLimiter, signals_set
from .task import Marker, TaskResult, TaskRunner

if TYPE_CHECKING:
    from ..config import DeliverySection

log = logging.getLogger(__name__)

TASK_ROWS = 32          # rows per worker task when the backend sends one message per call
FLUSH_ROWS = 256        # record results at least this often (rows) ...
FLUSH_SECONDS = 0.1     # ... or this often (seconds): fewer unknown rows after a crash
MAX_RETRY_WAIT = 300.0  # a retry further away than this is left deferred for the next run


def _freeze_older_objects() -> bool:
    """Move every object alive now out of the garbage collector's way; return True when this call did."""
    # Each full collection during the send would also walk every module, table and config object
    # alive before it: 7% of the run's time at 50,000 rows/s. An application that froze its own
    # objects keeps its choice (and its freeze).
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


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
                 progress: Callable[[int, int], None] | None = None, halt: threading.Event | None = None):
        self.ledger, self.backend, self.source = ledger, backend, source
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
        self.task_rows = task
        # One task more than workers: a worker that finishes finds the next task waiting, while
        # few rows sit claimed but unsent (those would be reported unknown after a crash).
        self.depth = self.concurrency + 1
        self.max_attempts = max(1, delivery.max_attempts)
        self.backoff = max(0.0, delivery.backoff_seconds)
        self.window = FailureWindow(delivery.pause_window, delivery.pause_failure_ratio)
        self.total, self.progress = total, progress
        self.tally = LoopTally()
        self.stop = threading.Event()
        self.halt = halt or threading.Event()     # set from outside (a scheduler shutting down)
        self._task = TaskRunner(recipient=factory_recipient, backend=backend, source=source, batch=batch,
                                limiter=RateLimiter(rate), stop=self.stop)
        self.fatal: BaseException | None = None
        self.done = 0
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
        frozen = _freeze_older_objects()
        if self.progress is not None:
            self.progress(0, self.total)          # the first message is about to go: clocks start here
        try:
            with signals_set(self.halt):
                self._loop(pool)
        except KeyboardInterrupt:
            # A Ctrl-C outside our signal handler's reach (another thread's SIGINT handling):
            # stop claiming, let the batches on the wire finish, record them, then re-raise.
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
            if frozen:
                gc.unfreeze()
            pool.shutdown(wait=True)
            self._flush()
        if isinstance(self.fatal, NewsletterError):
            raise self.fatal
        if self.halt.is_set():
            # What was on the wire is recorded: now stop as asked.
            raise SendStopped(f"issue {self.issue_id}: send stopped as asked; `newsletter send "
                              f"{self.issue_id}` resumes it", issue_id=self.issue_id)
        if self.fatal is not None:
            raise DeliveryError(f"the {type(self.backend).__name__} backend failed unexpectedly: "
                                f"{self.fatal}; those messages are marked unknown") from self.fatal
        return self.tally

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        """Keep the pipeline full until no row is left to send or the run stops."""
        while True:
            if self.halt.is_set():
                self.stop.set()
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
            if done and not self.stop.is_set():
                # New work before recording the old: the workers finish their tasks together (they
                # share one interpreter lock) and would all wait for the record, then the claim.
                self._refill(pool)
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
        if due:
            self._flush()                          # a retried row's "deferred" must be on disk first
        claimed = self.ledger.claim_rows(due)
        self.tally.retries += len(claimed)
        for c in claimed:
            # Only retried rows are counted here: a row absent from _tries is on its first attempt.
            self._tries[c.row_id] = self._tries.get(c.row_id, 1) + 1
        need = room * self.task_rows - len(claimed)
        if need > 0 and not self._exhausted:
            rows, skipped, self._cursor = self.ledger.claim(
                self.issue_id, self.list_name, after_id=self._cursor, limit=need,
                retry_unknown=self.retry_unknown)
            self.tally.skipped += skipped
            self.done += skipped
            self._exhausted = len(rows) + skipped < need
            claimed.extend(rows)
        for i in range(0, len(claimed), self.task_rows):
            self._inflight[pool.submit(self._task, claimed[i:i + self.task_rows])] = None

    def _collect(self, task: TaskResult) -> None:
        """Turn one task's results into outcomes, retries, tallies and the pause decision."""
        rows, recipients, results, delivered = task
        buffer, tries_of = self._buffer, self._tries
        if delivered is not None:
            # Every row went out (the common case): the worker made the outcomes already.
            if tries_of:
                for claimed in rows:
                    tries_of.pop(claimed.row_id, None)
            buffer += delivered
            self._note_ok(len(delivered))
            return
        for claimed, rec, result in zip(rows, recipients, results):
            rid = claimed.row_id
            tries = tries_of.pop(rid, 1)           # kept only while retried: memory stays flat
            if isinstance(result, Marker) and result.kind == "unbuildable":
                self._finish(Outcome(rid, DeliveryState.FAILED, reply=str(result.error)), failed=True)
                self.tally.failed += 1
                continue
            if isinstance(result, Delivery):
                self._finish(Outcome(rid, DeliveryState.SENT, result.message_id or rec.message_id,
                                     result.provider_id, result.reply), failed=False)
                self.tally.sent += 1
            elif isinstance(result, RecipientRejected):
                log.warning("%s rejected: %s", rec.email, result.reply or result)
                self._finish(Outcome(rid, DeliveryState.BOUNCED, rec.message_id, reply=result.reply or str(result),
                                     subscriber_id=claimed.subscriber_id), failed=True)
                self.tally.bounced += 1
            elif isinstance(result, TransientDeliveryError):
                self._transient(rid, rec, result, tries)
            elif isinstance(result, DeliveryError):
                log.warning("%s failed: %s", rec.email, result.reply or result)
                self._finish(Outcome(rid, DeliveryState.FAILED, rec.message_id, reply=result.reply or str(result)), failed=True)
                self.tally.failed += 1
            elif result.kind == "fatal":
                self.fatal = self.fatal or result.error
                self._buffer.append(Outcome(rid, DeliveryState.DEFERRED, rec.message_id, reply=str(result.error)))
                self.tally.deferred += 1
            elif result.kind == "broken":
                self.fatal = self.fatal or result.error
                self._finish(Outcome(rid, DeliveryState.UNKNOWN, rec.message_id, reply=f"backend error: {result.error}"),
                             failed=True)
                self.tally.unknown += 1
            else:
                self._buffer.append(Outcome(rid, DeliveryState.PENDING))
                self.tally.released += 1

    def _transient(self, rid: int, rec: Recipient, err: TransientDeliveryError, tries: int) -> None:
        """Record a temporary failure and schedule the retry, or leave the row for the next run."""
        reply = err.reply or str(err)
        delay = err.retry_after if err.retry_after is not None else self.backoff * 2 ** (tries - 1)
        outcome = Outcome(rid, DeliveryState.DEFERRED, rec.message_id, reply=reply)
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

    def _note_ok(self, n: int) -> None:
        """Count n rows sent and add them to the failure window."""
        self.tally.sent += n
        self.done += n
        if not self.stop.is_set() and self.window.add_successes(n):
            self._pause()

    def _note(self, failed: bool) -> None:
        """Add one outcome to the failure window; pause the run when too many recent ones failed."""
        if not self.stop.is_set() and self.window.add(failed):
            self._pause()

    def _pause(self) -> None:
        """Stop the run because the failure window holds too many failures."""
        last = self._buffer[-1].reply if self._buffer else ""
        self.tally.paused = (f"{self.window.bad} of the last {len(self.window)} messages failed"
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
