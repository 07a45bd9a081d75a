"""Send a built issue to a list through the ledger (resumable, duplicate-free), or one test copy."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .backends.base import make_backend
from .errors import DeliveryError
from .frozen import load_rendered
from .ledger import Ledger
from .models import Delivery, Subscriber
from .personalize import MessageFactory
from .sendlock import send_lock
from .sendloop import SendLoop
from .store import get_engine
from .subscribers import SubscriberStore, normalise_address

if TYPE_CHECKING:
    from .config import Config

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
    retries: int = 0
    recovered_unknown: int = 0   # rows found in flight from a run that died (now "unknown")
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


def send_issue(config: "Config", issue_id: str, *, list_name: str | None = None, retry_unknown: bool = False,
               dry_run: bool = False, progress: Progress | None = None,
               halt: threading.Event | None = None) -> SendReport:
    """Send issue_id to every active subscriber of the list not yet sent to; returns a SendReport.

    Raises IssueError (never built, being sent elsewhere), SubscriberError (unknown or empty list),
    ConfigError (backend cannot connect or log in: raised before any row is claimed) and
    DeliveryError (the backend failed in a way that stops the run; what went out is recorded),
    and KeyboardInterrupt when halt (or SIGINT/SIGTERM) stopped it after recording what was sent.
    """
    started = time.monotonic()
    list_name = list_name or config.delivery.default_list
    rendered = load_rendered(config.paths.state, issue_id)
    engine = get_engine(config)
    ledger, store = Ledger(engine), SubscriberStore(engine)
    if list_name not in ledger.lists_of(issue_id):
        store.require_list(list_name)
    factory = MessageFactory(rendered, config, list_name=list_name)
    report = SendReport(issue_id=issue_id, list_name=list_name, dry_run=dry_run)
    if dry_run:
        _dry_run(report, factory, ledger, store, retry_unknown)
    else:
        with send_lock(config.paths.state, engine, issue_id):
            backend = make_backend(config)
            backend.open()       # bad credentials or no server: stop here, before any row is touched
            try:
                report.recovered_unknown = ledger.recover(issue_id)
                ledger.plan(issue_id, list_name)
                report.to_send = ledger.claimable(issue_id, list_name, retry_unknown)
                loop = SendLoop(ledger=ledger, backend=backend, source=factory,
                                factory_recipient=factory.recipient_for, delivery=config.delivery,
                                issue_id=issue_id, list_name=list_name, retry_unknown=retry_unknown,
                                total=report.to_send, progress=progress, halt=halt)
                tally = loop.run()
            finally:
                backend.close()
            for name in ("sent", "bounced", "deferred", "failed", "skipped", "released", "retries", "paused"):
                setattr(report, name, getattr(tally, name))
            report.state = ledger.finish(issue_id, list_name)
    report.counts = ledger.counts(issue_id, list_name)
    report.state = report.state or (ledger.issue_state(issue_id) or "")
    report.elapsed = time.monotonic() - started
    log.debug("issue %s to %s: %d sent, %d bounced, %d deferred, %d failed, %d skipped in %.1fs",
             issue_id, list_name, report.sent, report.bounced, report.deferred, report.failed,
             report.skipped, report.elapsed)
    return report


def _dry_run(report: SendReport, factory: MessageFactory, ledger: Ledger, store: SubscriberStore,
             retry_unknown: bool) -> None:
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


def send_test(config: "Config", issue_id: str, address: str, *, list_name: str | None = None) -> Delivery:
    """Send one copy of issue_id to address with "[TEST]" before the subject, outside the ledger.

    Uses the subscriber's own name and fields when address is on the list. Returns the Delivery;
    raises SubscriberError (bad address), IssueError (never built), ConfigError or DeliveryError.
    """
    list_name = list_name or config.delivery.default_list
    email = normalise_address(address)
    rendered = load_rendered(config.paths.state, issue_id)
    known = SubscriberStore(get_engine(config)).get(email, list_name)
    subscriber = Subscriber(email=email, list=list_name,
                            name=known.name if known else "", fields=known.fields if known else {})
    factory = MessageFactory(rendered, config, list_name=list_name, test=True)
    recipient = factory.recipient(subscriber)
    with make_backend(config) as backend:
        results = backend.send(factory, [recipient])
    if not results:
        raise DeliveryError(f"{email}: the backend returned no result", recipient=email)
    result = results[0]
    if isinstance(result, DeliveryError):
        raise result
    log.info("test copy of %s sent to %s (%s)", issue_id, email, result.message_id)
    return result
