"""Work done after the answer: sign-ups are handled in the background so that every answer takes
the same time, whether the address was new (database write, SMTP conversation) or not."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)


class BackgroundJobs:
    """One worker thread running submitted jobs in order; a failing job is logged, never raised."""

    def __init__(self, name: str = "newsletter-web-jobs"):
        # One worker: sign-ups are rare, and in-order work keeps mail to one address in order too.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def submit(self, job: Callable[..., None], *args: object) -> None:
        """Queue job(*args); raises RuntimeError once shut down."""
        future = self._pool.submit(self._run, job, *args)
        with self._lock:
            if not future.done():
                self._pending.add(future)
        future.add_done_callback(self._done)

    @staticmethod
    def _run(job: Callable[..., None], *args: object) -> None:
        """Run one job, logging (with its traceback) anything it raises."""
        try:
            job(*args)
        except Exception:  # a background job has nobody to raise to: the log is its reader
            log.exception("background job %s failed", getattr(job, "__name__", job))

    def _done(self, future: Future[None]) -> None:
        """Forget a finished job and wake wait_idle() when none is left."""
        with self._lock:
            self._pending.discard(future)
            if not self._pending:
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job has finished; return False when timeout came first."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._pending, timeout)

    def shutdown(self, wait: bool = True, cancel: bool = False) -> None:
        """Stop accepting jobs; with wait, finish the running one (and, unless cancel, the queued ones)."""
        self._pool.shutdown(wait=wait, cancel_futures=cancel)
