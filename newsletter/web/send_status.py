"""Where a send stands, for the web editor's status panel, the API and the dashboard: the ledger's
rows per state, progress, and the failures with the server's replies (what `newsletter status
ID --failures` prints), a page at a time."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, func, select

from ..config import Config
from ..db import as_utc, deliveries, get_engine, issues, subscribers, suppressions
from ..ledger import STATES, Ledger, parse_reply
from ..models import DeliveryState, SubscriberStatus
from .sending import SendRunner, is_running

# The rows `newsletter status --failures` lists: refused, bounced, or of unknown fate.
FAILURE_STATES = (DeliveryState.FAILED, DeliveryState.BOUNCED, DeliveryState.UNKNOWN)
UNDONE = (DeliveryState.PENDING, DeliveryState.SENDING)


@dataclass(frozen=True)
class Failure:
    """One failed, bounced or unknown message: the address, its state and the server's reply."""

    email: str
    list: str
    state: str
    reply_class: str               # models.ReplyClass the backend read the reply as ("" when none)
    reply: str                     # the server's reply text, as it came


@dataclass
class SendStatus:
    """A send's state: phase is "not sent", "running", "stopped" (part-way, nothing runs) or "finished"."""

    issue_id: str
    state: str                     # the ledger's: "" (never sent), sending, sent
    phase: str
    lists: list[str]
    counts: dict[str, int]
    total: int
    done: int                      # rows no longer pending or being sent
    rate: float                    # messages per second of the run (0 when unknown)
    error: str = ""                # why the last run here stopped early
    failures: list[Failure] = field(default_factory=list)
    failures_total: int = 0
    page: int = 1
    per_page: int = 50

    @property
    def running(self) -> bool:
        """Return True while the send runs."""
        return self.phase == "running"

    @property
    def percent(self) -> int:
        """Return done as a whole percentage of total."""
        return 100 * self.done // self.total if self.total else 0

    @property
    def pages(self) -> int:
        """Return how many pages of failures there are (at least 1)."""
        return max(1, -(-self.failures_total // self.per_page))

    def as_json(self) -> dict[str, Any]:
        """Return the status as the API and the polling script read it."""
        data = asdict(self)
        data.update(state=self.state or "not sent", running=self.running, finished=self.phase == "finished",
                    rate=round(self.rate, 1), percent=self.percent,
                    failures={"items": data.pop("failures"), "total": data.pop("failures_total"),
                              "page": data.pop("page"), "per_page": data.pop("per_page")})
        return data


def send_status(config: Config, runner: SendRunner, issue_id: str, *, page: int = 1,
                per_page: int = 50) -> SendStatus:
    """Return the SendStatus of issue_id (every list it was sent to) with one page of failures
    (page is 1-based; per_page rows, oldest first)."""
    engine = get_engine(config)
    ledger = Ledger(engine)
    state = ledger.issue_state(issue_id) or ""
    lists = ledger.lists_of(issue_id)
    counts = ledger.counts(issue_id) if state else dict.fromkeys(STATES, 0)
    total = sum(counts.values())
    done = total - sum(counts[s] for s in UNDONE)
    tracked = runner.get(issue_id)
    running = any(is_running(config, runner, issue_id, name) for name in lists or [config.delivery.default_list])
    if running and not state:
        state = "sending"       # started here a moment ago: its thread is planning the ledger rows
    phase = ("running" if running else "finished" if state == "sent" else "stopped" if state else "not sent")
    rate = tracked.rate if tracked is not None else _ledger_rate(engine, issue_id, done)
    status = SendStatus(issue_id, state, phase, lists, counts, total, done, rate,
                        error=tracked.error if tracked is not None and not running else "",
                        page=page, per_page=per_page)
    status.failures_total = sum(counts[s] for s in FAILURE_STATES)
    status.failures = failures(engine, issue_id, offset=(page - 1) * per_page, limit=per_page)
    return status


def _ledger_rate(engine: Any, issue_id: str, done: int) -> float:
    """Return done per second since the issue's send started (until it finished): a send run
    elsewhere (the queue's workers, the CLI, the scheduler)."""
    with engine.connect() as conn:
        row = conn.execute(select(func.min(issues.c.started_at), func.max(issues.c.finished_at))
                           .where(issues.c.id == issue_id)).first()
    if row is None or row[0] is None:
        return 0.0
    end = as_utc(row[1]).timestamp() if row[1] is not None else time.time()
    seconds = end - as_utc(row[0]).timestamp()
    return done / seconds if seconds > 0 else 0.0


def failures(engine: Any, issue_id: str, *, offset: int = 0, limit: int = 50) -> list[Failure]:
    """Return failed, bounced and unknown rows of issue_id (every list), oldest first, with the
    server's reply split into its class and text (ledger.parse_reply)."""
    d = deliveries
    query = (select(d.c.email, d.c.list, d.c.status, d.c.reply)
             .where(d.c.issue_id == issue_id, d.c.status.in_(FAILURE_STATES))
             .order_by(d.c.id).offset(offset).limit(limit))
    out = []
    with engine.connect() as conn:
        for email, list_name, state, reply in conn.execute(query):
            reply_class, text = parse_reply(reply or "")
            out.append(Failure(email, list_name, state, str(reply_class or ""), " ".join((text or "").split())))
    return out


def outcomes(engine: Any, issue_id: str) -> dict[str, int]:
    """Return the dashboard's figures of a sent issue: delivered (accepted by the server),
    bounced (refused, or reported back later) and unsubscribed (recipients who unsubscribed
    since the send started and are still unsubscribed)."""
    counts = Ledger(engine).counts(issue_id)
    d, su, s, i = deliveries, suppressions, subscribers, issues
    gone = (select(func.count(func.distinct(d.c.subscriber_id)))
            .select_from(d.join(i, and_(i.c.id == d.c.issue_id, i.c.list == d.c.list))
                         .join(s, s.c.id == d.c.subscriber_id)
                         .join(su, and_(su.c.subscriber_id == d.c.subscriber_id, su.c.lifted_at.is_(None))))
            .where(d.c.issue_id == issue_id, d.c.status == DeliveryState.SENT,
                   s.c.status == SubscriberStatus.UNSUBSCRIBED, su.c.status == SubscriberStatus.UNSUBSCRIBED,
                   su.c.created_at >= i.c.started_at))
    with engine.connect() as conn:
        unsubscribed = int(conn.execute(gone).scalar_one())
    return {"delivered": counts["sent"], "bounced": counts["bounced"], "unsubscribed": unsubscribed}
