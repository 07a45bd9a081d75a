"""The send loop of one run: claim rows, send them on worker threads, record, retry, stop in time."""

from __future__ import annotations

import gc
import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from ..backends.base import Backend, MessageSource
from ..errors import DeliveryError, NewsletterError, PolicyRefusal, SendStopped, StopRun
from ..ledger import Ledger, Outcome
from ..models import DeliveryState, Recipient
from .claims import CLAIM_ROWS, Claims
from .journal import AnyJournal
from .pacing import CircuitBreaker, RateLimiter, signals_set
from .record import Recorder
from .outcomes import LoopTally, RowOutcomes
from .task import TaskResult, TaskRunner

if TYPE_CHECKING:
    from ..config import DeliverySection

log = logging.getLogger(__name__)

TASK_ROWS = 128         # rows per worker task when the backend sends few messages per call
FLUSH_ROWS = 1024       # record results at least this often (rows) ...
FLUSH_SECONDS = 0.25    # ... or this often (seconds); the journal, not these, bounds a crash's loss


def _freeze_older_objects() -> bool:
    """Move every object alive now out of the garbage collector's way; return True when this call did."""
    # Each full collection during the send would also walk every module, table and config object
    # alive before it: 7% of the run's time at 50,000 rows/s. An application that froze its own
    # objects keeps its choice (and its freeze).
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


class SendLoop(RowOutcomes):
    """One run over the claimable rows of (issue, list); run() returns a LoopTally or raises.

    The first delivery.pause_consecutive rows go out as one task on their own; only when they
    did not all fail does the loop fill every worker. Results reach the circuit breaker as they
    come (Backend.on_results, else when each backend call returns: task.py), bounces wait on
    probation (record.py), and with a journal every message handed over is noted so that a
    crash leaves few rows unknown (journal.py).
    """

    def __init__(self, *, ledger: Ledger, backend: Backend, source: MessageSource,
                 factory_recipient: Callable[..., Recipient], delivery: "DeliverySection", issue_id: str,
                 list_name: str, retry_unknown: bool, total: int,
                 progress: Callable[[int, int], None] | None = None, halt: threading.Event | None = None,
                 journal: AnyJournal | None = None, rows: tuple[int, int] | None = None,
                 limiter: RateLimiter | None = None):
        self.ledger, self.backend, self.source = ledger, backend, source
        self.issue_id, self.list_name, self.retry_unknown = issue_id, list_name, retry_unknown
        self.concurrency = max(1, delivery.concurrency)
        rate = delivery.rate_per_second
        batch = max(1, int(backend.max_batch))
        task = batch if batch >= TASK_ROWS else TASK_ROWS - TASK_ROWS % batch
        if rate > 0:
            # Claim about a tenth of a second of sending per worker: at a low rate a full batch
            # would be claimed long before it goes out.
            per_worker = max(1, int(rate / (10 * self.concurrency)))
            batch = min(batch, per_worker)
            task = max(batch, min(task, per_worker))
        self.task_rows = task
        # One task more than workers: a worker that finishes finds the next task waiting.
        self.depth = self.concurrency + 1
        self.max_attempts = max(1, delivery.max_attempts)
        self.backoff = max(0.0, delivery.backoff_seconds)
        self.breaker = CircuitBreaker(delivery.pause_consecutive, delivery.pause_window,
                                      delivery.pause_failure_ratio)
        self.probe = max(0, delivery.pause_consecutive)       # rows of the first task, sent alone
        self.total = total
        self.tally = LoopTally()
        self.stop = threading.Event()
        self.halt = halt or threading.Event()     # set from outside (a scheduler shutting down)
        # A queue worker passes the rate limit it shares with the other workers (kept in the
        # database) and rows, the inclusive range of ledger row ids (its chunk) to keep within.
        backend.on_handover = journal.handed if journal is not None else None
        backend.should_stop = self.stop.is_set
        self._task = TaskRunner(recipient=factory_recipient, backend=backend, source=source, batch=batch,
                                limiter=limiter or RateLimiter(rate), stop=self.stop, breaker=self.breaker,
                                journal=journal)
        backend.on_results = self._task.settle
        self.book = Recorder(ledger, max(delivery.pause_window, delivery.pause_consecutive), progress)
        # Claimed rows wait in a reserve until a task takes them: at a limited rate never more
        # than about a second of sending.
        self.claims = Claims(ledger, issue_id, list_name, retry_unknown=retry_unknown,
                             run_id=journal.run_id if journal is not None else "",
                             chunk=min(CLAIM_ROWS, max(1, int(rate))) if rate > 0 else CLAIM_ROWS,
                             rows=rows)
        self.fatal: BaseException | None = None   # what stops the run (ConfigError, StopRun, a bug)
        self.refusal: PolicyRefusal | None = None
        self.done = 0
        self._probing = self.probe > 0
        self._tries: dict[int, int] = {}          # attempts in this run, per row
        self._retries: list[tuple[float, int]] = []  # (due time, row id)
        self._inflight: dict[Future, None] = {}

    # -- main thread -----------------------------------------------------------------------------

    def run(self) -> LoopTally:
        """Send every claimable row once (plus in-run retries); return the tally, raise on a fatal error."""
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="newsletter-send")
        frozen = _freeze_older_objects()
        finished = False
        if self.book.progress is not None:
            self.book.progress(0, self.total)     # the first message is about to go: clocks start here
        try:
            with signals_set(self.halt):
                self._loop(pool)
            finished = True
        except KeyboardInterrupt:
            # A Ctrl-C outside our signal handler's reach (another thread's SIGINT handling):
            # stop claiming, let the batches on the wire finish, record them, then re-raise.
            self.stop.set()
            self._drain()
            raise
        except SQLAlchemyError as err:
            # The database failed under us: what is in flight stays "sending" and the next run
            # settles it from the journal, exactly as after a crash.
            self.stop.set()
            self._inflight.clear()
            self.claims.release()                     # left "sending": the journal settles them
            self.book.buffer, self.book.held = [], type(self.book.held)()
            reason = str(getattr(err, "orig", None) or err).splitlines()[0]
            raise DeliveryError(f"database error while sending: {reason}; run the send again to resume") from err
        finally:
            if frozen:
                gc.unfreeze()
            pool.shutdown(wait=True)
            self._settle_held(finished)
            unused = self.claims.release()           # claimed, never handed to a task
            for c in unused:
                self.book.add(Outcome(c.row_id, DeliveryState.PENDING))
            self.tally.released += len(unused)
            self.book.flush(self.done, self.total)
        return self._outcome()

    def _outcome(self) -> LoopTally:
        """Return the tally of a run that ended, or raise what stopped it."""
        if isinstance(self.fatal, StopRun):
            err = self.fatal
            raise StopRun(f"{err}; the run stopped and nobody was marked bounced: fix the cause, then "
                          f"`newsletter send {self.issue_id}` sends the rest", err.recipient,
                          err.reply) from err
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

    def _settle_held(self, finished: bool) -> None:
        """Trust the held bounces when the run ended normally; else send them back to pending."""
        reason = self.breaker.final()
        if reason and not self.tally.paused:
            self.tally.paused = reason
            log.warning("the send stopped: %s", reason)
        if finished and not reason and self.fatal is None and not self.halt.is_set():
            self._count_settled(self.book.release_held())
        else:
            why = "the run stopped before this refusal could be trusted"
            voided = self.book.void_held(why)
            self.tally.released += len(voided)
            if reason and self.fatal is None and voided and all(o.status == DeliveryState.FAILED for o in voided):
                # The breaker tripped on policy refusals: the server refuses us, not one mailbox.
                self.fatal = self.refusal

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        """Keep the pipeline full until no row is left to send or the run stops."""
        while True:
            if self.halt.is_set():
                self.stop.set()
            if not self.stop.is_set():
                self._refill(pool)
            if not self._inflight:
                if self.stop.is_set() or (self.claims.empty and not self._retries):
                    return
                self.book.flush(self.done, self.total)
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
            book = self.book
            if len(book.buffer) >= FLUSH_ROWS or time.monotonic() - book.last_flush >= FLUSH_SECONDS:
                book.flush(self.done, self.total)

    def _drain(self) -> None:
        """Wait for the tasks in flight and collect their results."""
        for fut in list(self._inflight):
            self._collect(fut.result())
        self._inflight.clear()

    def _refill(self, pool: ThreadPoolExecutor) -> None:
        """Claim rows (due retries first) and submit them as tasks while the pipeline has room.

        While probing (the run's first rows) one task of self.probe rows goes out alone.
        """
        if self._probing:
            if self._inflight:
                return
            room, task_rows = 1, min(self.task_rows, self.probe)
        else:
            room, task_rows = self.depth - len(self._inflight), self.task_rows
        if room <= 0:
            return
        now = time.monotonic()
        due: list[int] = []
        while self._retries and self._retries[0][0] <= now and len(due) < room * task_rows:
            due.append(heapq.heappop(self._retries)[1])
        if not due and self.claims.empty:
            return
        if due:
            self.book.flush(self.done, self.total)  # a retried row's "deferred" must be on disk first
        claimed = self.claims.again(due)
        self.tally.retries += len(claimed)
        for c in claimed:
            # Only retried rows are counted here: a row absent from _tries is on its first attempt.
            self._tries[c.row_id] = self._tries.get(c.row_id, 1) + 1
        need = room * task_rows - len(claimed)
        if need > 0:
            rows, skipped = self.claims.take(need)
            self.tally.skipped += skipped
            self.done += skipped
            claimed += rows
        for i in range(0, len(claimed), task_rows):
            self._inflight[pool.submit(self._task, claimed[i:i + task_rows])] = None

    def _count_settled(self, outcomes: list[Outcome]) -> None:
        """Count held outcomes that were trusted: bounces, and policy refusals of one mailbox."""
        for o in outcomes:
            if o.status == DeliveryState.BOUNCED:
                self.tally.bounced += 1
            else:
                self.tally.failed += 1

    def _collect(self, task: TaskResult) -> None:
        """Turn one task's results into outcomes, retries and tallies; stop the run when told to."""
        rows, recipients, results, delivered = task
        book, tries_of = self.book, self._tries
        self._probing = False
        if delivered is not None:
            # Every row went out (the common case): the worker made the outcomes already.
            if tries_of:
                for claimed in rows:
                    tries_of.pop(claimed.row_id, None)
            book.buffer += delivered
            self.tally.sent += len(delivered)
            self.done += len(delivered)
        else:
            for claimed, rec, result in zip(rows, recipients, results):
                self._one(claimed.row_id, claimed.subscriber_id, rec, result, tries_of.pop(claimed.row_id, 1))
        reason = self.breaker.reason
        if reason or self.fatal is not None:
            self.stop.set()
            if reason and not self.tally.paused:
                self.tally.paused = reason
                log.warning("the send stopped: %s", reason)
        else:
            self._count_settled(book.saw(len(rows)))
