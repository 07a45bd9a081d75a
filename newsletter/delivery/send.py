"""One send run through the ledger (resumable, duplicate-free), a dry run, or one message outside it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TYPE_CHECKING

from ..backends.base import Backend
from ..errors import DeliveryError
from ..ledger import Ledger, marks
from ..models import Delivery, Recipient
from ..personalize.message import MessageFactory
from ..render.saved import render_dir
from ..subscribers.store import SubscriberStore
from .journal import AnyJournal, Journal, LedgerJournal, read_journal
from .loop import SendLoop
from .pacing import RateLimiter

if TYPE_CHECKING:
    from ..config import DeliverySection

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]   # (rows done in this run, rows to do in this run)


@dataclass
class SendReport:
    """What one `send` did, and where the issue stands afterwards."""

    issue_id: str
    list_name: str
    sent: int = 0
    bounced: int = 0
    deferred: int = 0            # left for the next run after max_attempts temporary failures
    failed: int = 0
    skipped: int = 0             # unsubscribed or removed after the issue was planned
    released: int = 0            # claimed, then handed back untried because the run stopped
    unknown: int = 0             # may have been delivered (no reply after the message): not retried
    retries: int = 0
    recovered_unknown: int = 0   # rows a dead run left in flight that may have arrived (now "unknown")
    recovered_sent: int = 0      # rows a dead run left in flight that its journal shows delivered
    recovered_pending: int = 0   # rows a dead run had claimed but never handed over (sent again)
    to_send: int = 0             # rows this run set out to send
    paused: str = ""             # why the run paused (too many failures), when it did
    dry_run: bool = False
    would_send: int = 0          # dry run: messages built, nothing sent
    would_send_bytes: int = 0
    state: str = ""              # the issue's state after the run: sending | sent
    counts: dict[str, int] = field(default_factory=dict)   # ledger rows per state after the run
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        """Return messages handed to the transport per second in this run."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


def deliver(report: SendReport, ledger: Ledger, backend: Backend, factory: MessageFactory,
            delivery: "DeliverySection", *, retry_unknown: bool = False, progress: Progress | None = None,
            halt: threading.Event | None = None, journal_dir: Path | None = None) -> SendReport:
    """Send report.issue_id to report.list_name through the ledger with an opened backend.

    Settles the rows a dead run left in flight (from its journal: delivered, never handed over,
    or unknown), plans a row per active subscriber, then claims, sends and records every
    claimable row, journaling in journal_dir (default: the issue's state folder, next to its
    send lock; the caller holds that lock); fills and returns report. Raises StopRun or
    ConfigError when a reply or the backend stops the run (what went out is recorded, the rest
    stays pending), DeliveryError when the backend failed unexpectedly and SendStopped when
    halt (or SIGINT/SIGTERM) stopped it.
    """
    issue_id, list_name = report.issue_id, report.list_name
    folder = journal_dir or render_dir(factory.config.paths.state, issue_id)
    run_id, settled = read_journal(folder) or ("", None)       # what the last run's journal says
    recovered = ledger.recover(issue_id, settled, run_id)
    report.recovered_unknown, report.recovered_sent, report.recovered_pending = recovered
    ledger.plan(issue_id, list_name)
    report.to_send = ledger.claimable(issue_id, list_name, retry_unknown)
    _run(report, Journal(folder), ledger=ledger, backend=backend, source=factory, factory_recipient=factory.recipient_for,
         delivery=delivery, issue_id=issue_id, list_name=list_name, retry_unknown=retry_unknown,
         total=report.to_send, progress=progress, halt=halt)
    report.state = ledger.finish(issue_id, list_name)
    return report


def deliver_chunk(report: SendReport, ledger: Ledger, backend: Backend, factory: MessageFactory,
                  delivery: "DeliverySection", rows: tuple[int, int], *, retry_unknown: bool = False,
                  limiter: RateLimiter | None = None, halt: threading.Event | None = None) -> SendReport:
    """deliver() for one queue chunk: the claimable rows of report's (issue, list) whose ids lie in
    rows, an inclusive (first, last) range planned earlier; fills and returns report.

    The caller holds the chunk's lock (lock.chunk_lock), so rows of the range left "sending" were
    in flight in a run of this chunk that died: its journal, kept in those rows (LedgerJournal:
    readable from any host, so a chunk retried on another host after its worker died settles
    them too), says which were delivered, never handed over, or maybe delivered ("unknown").
    limiter is the rate limit shared by every worker. The issue's state is left to the
    caller (ledger.finish scans the whole send: once, after its last chunk). Raises as deliver().
    """
    issue_id, list_name = report.issue_id, report.list_name
    run_id, settled = marks.read_marks(ledger.engine, issue_id, list_name, rows) or ("", None)
    recovered = ledger.recover_range(issue_id, list_name, rows, settled, run_id)
    report.recovered_unknown, report.recovered_sent, report.recovered_pending = recovered
    report.to_send = ledger.claimable(issue_id, list_name, retry_unknown, rows=rows)
    _run(report, LedgerJournal(ledger.engine, issue_id), ledger=ledger, backend=backend, source=factory,
         factory_recipient=factory.recipient_for, delivery=delivery, issue_id=issue_id, list_name=list_name,
         retry_unknown=retry_unknown, total=report.to_send, halt=halt, rows=rows, limiter=limiter)
    return report


def _run(report: SendReport, journal: AnyJournal, **loop: Any) -> None:
    """Run a SendLoop (loop: its arguments) noting its events in journal; copy its tally into report.

    The journal is removed after a run that ended cleanly, and kept while any row may still be
    "sending" (a crash, a database error): the next run reads it."""
    clean = False
    try:
        send_loop = SendLoop(journal=journal, **loop)
        try:
            send_loop.run()
        finally:
            for name in ("sent", "bounced", "deferred", "failed", "skipped", "released", "unknown",
                         "retries", "paused"):
                setattr(report, name, getattr(send_loop.tally, name))
        clean = True
    finally:
        journal.close(remove=clean)


def finish_report(report: SendReport, ledger: Ledger, started: float) -> SendReport:
    """Fill the counts per state, the issue state and the elapsed seconds since started; return report."""
    report.counts = ledger.counts(report.issue_id, report.list_name)
    report.state = report.state or (ledger.issue_state(report.issue_id) or "")
    report.elapsed = time.monotonic() - started
    log.debug("issue %s to %s: %d sent, %d bounced, %d deferred, %d failed, %d skipped in %.1fs",
              report.issue_id, report.list_name, report.sent, report.bounced, report.deferred,
              report.failed, report.skipped, report.elapsed)
    return report


def dry_run(report: SendReport, factory: MessageFactory, ledger: Ledger, store: SubscriberStore,
            retry_unknown: bool) -> SendReport:
    """Build every message a real run would send, without sending or writing anything."""
    issue_id, list_name = report.issue_id, report.list_name
    if list_name in ledger.lists_of(issue_id):
        # Already planned: the rows a run would claim (in-flight rows count as unknown by then).
        def subscribers():
            """Yield the subscribers of the rows a run would claim, 1000 rows per query."""
            after = 0
            while True:
                rows = ledger.peek(issue_id, list_name, after_id=after, limit=1000,
                                   retry_unknown=retry_unknown)
                for row in rows:
                    if row.status == "active":
                        yield row.subscriber
                if len(rows) < 1000:
                    return
                after = rows[-1].row_id
        source = subscribers()
    else:
        source = store.iter_active(list_name)
    for subscriber in source:
        report.would_send_bytes += len(factory.build(factory.recipient(subscriber)))
        report.would_send += 1
    report.to_send = report.would_send
    return report


def send_one(backend: Backend, factory: MessageFactory, recipient: Recipient) -> Delivery:
    """Hand one message to an opened backend outside the ledger; return its Delivery.

    Raises the DeliveryError the backend reported for it (or one when it reported nothing).
    """
    results = backend.send(factory, [recipient])
    if not results:
        raise DeliveryError(f"{recipient.email}: the backend returned no result", recipient=recipient.email)
    result = results[0]
    if isinstance(result, DeliveryError):
        raise result
    return result
