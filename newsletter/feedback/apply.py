"""Apply bounce and complaint reports: each once, in one transaction, to the ledger and the list.

    hard bounce   → the row becomes bounced; an active subscriber becomes bounced
    soft bounce   → recorded; bounces.soft_bounce_limit of them on consecutive issues → bounced
    complaint     → the subscriber becomes complained (no more mail); too many for one issue
                    (bounces.complaint_pause_ratio of its delivered messages) pause the list
    blocked, delayed, other → recorded only: they say nothing against the address

Every report is stored under its event key first, so a replayed webhook or a report read twice
changes nothing; each suppression goes on the suppression list with its reason and source.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import distinct, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..db import deliveries, feedback_events, subscribers, utcnow, write_transaction
from ..models import DeliveryState, FeedbackKind, FeedbackOutcome, SubscriberStatus
from ..subscribers import suppression
from . import match, pause
from .report import Report

if TYPE_CHECKING:
    from ..config import BouncesSection

log = logging.getLogger(__name__)

_D, _E, _S = deliveries, feedback_events, subscribers
# Rows whose message went out (or may have): a bounce report can only be about those.
_WENT_OUT = (DeliveryState.SENT, DeliveryState.UNKNOWN, DeliveryState.SENDING, DeliveryState.BOUNCED)
# Rows whose message reached (or may have reached) the recipient: the base of the complaint share.
_DELIVERED = (DeliveryState.SENT, DeliveryState.UNKNOWN)
# Subscribers a hard bounce or a soft-bounce streak moves to bounced: an unsubscribe or a
# complaint already stops mail and says more than a bounce.
_BOUNCEABLE = (SubscriberStatus.ACTIVE, SubscriberStatus.UNCONFIRMED)
_WORDS = {FeedbackKind.HARD_BOUNCE: "hard bounce", FeedbackKind.SOFT_BOUNCE: "soft bounce",
          FeedbackKind.COMPLAINT: "complaint", FeedbackKind.BLOCKED: "blocked",
          FeedbackKind.DELAYED: "delayed", FeedbackKind.OTHER: "report"}


@dataclass(frozen=True)
class Applied:
    """What applying one report did."""

    report: Report
    outcome: str                  # models.FeedbackOutcome
    issue_id: str | None = None
    list: str | None = None
    email: str = ""
    paused: str = ""              # the pause message, when this report paused its list


def apply_report(engine: Engine, settings: "BouncesSection", report: Report) -> Applied:
    """Apply one report (see the module docstring) in one transaction; returns what it did.

    A report whose event key was seen before is a DUPLICATE and changes nothing; one that matches
    no ledger row is kept as UNMATCHED and changes nothing.
    """
    try:
        with write_transaction(engine) as conn:
            seen = conn.execute(select(_E.c.id).where(_E.c.event_key == report.event_key)).first()
            if seen:
                return Applied(report, FeedbackOutcome.DUPLICATE, email=report.email)
            found = match.find(conn, report)
            now = utcnow()
            event_id = _record(conn, report, found, now)
            if found is None:
                return Applied(report, FeedbackOutcome.UNMATCHED, email=report.email)
            outcome, paused = _effects(conn, settings, report, found, now)
            if outcome != FeedbackOutcome.RECORDED:
                conn.execute(update(_E).where(_E.c.id == event_id).values(outcome=outcome))
    except IntegrityError:
        # Another process stored the same event between our look and our insert.
        return Applied(report, FeedbackOutcome.DUPLICATE, email=report.email)
    if paused:
        log.warning("%s", paused)
    return Applied(report, outcome, found.issue_id, found.list, found.email, paused)


def apply_all(engine: Engine, settings: "BouncesSection", reports: Iterable[Report]) -> list[Applied]:
    """Apply each report in turn (each its own transaction); returns what each did, in order."""
    return [apply_report(engine, settings, r) for r in reports]


def _record(conn: Connection, report: Report, found: match.Match | None, now: datetime) -> int:
    """Store the report as an event (outcome recorded or unmatched); returns its id."""
    values = {"event_key": report.event_key[:400], "kind": report.kind, "source": report.source,
              "provider": report.provider, "email": (report.email or (found.email if found else ""))[:320],
              "issue_id": found.issue_id if found else None, "list": found.list if found else None,
              "delivery_id": found.delivery_id if found else None,
              "subscriber_id": found.subscriber_id if found else None, "code": report.code[:40],
              "detail": report.describe(),
              "outcome": FeedbackOutcome.RECORDED if found else FeedbackOutcome.UNMATCHED,
              "received_at": now}
    return conn.execute(insert(_E).values(**values)).inserted_primary_key[0]


def _effects(conn: Connection, settings: "BouncesSection", report: Report, found: match.Match,
             now: datetime) -> tuple[str, str]:
    """Change the row and the subscriber as report.kind asks; returns (outcome, pause message)."""
    reason = f"{_WORDS.get(report.kind, report.kind)} ({report.provider}): {report.describe()}"
    if report.kind == FeedbackKind.HARD_BOUNCE:
        _mark_row(conn, found, reason, now)
        return _suppress(conn, found, SubscriberStatus.BOUNCED, report.source, reason, _BOUNCEABLE, now), ""
    if report.kind == FeedbackKind.SOFT_BOUNCE:
        limit = max(1, settings.soft_bounce_limit)
        if _soft_streak(conn, found, limit):
            reason = f"{limit} soft bounces in a row; the last {reason}"
            return _suppress(conn, found, SubscriberStatus.BOUNCED, report.source, reason, _BOUNCEABLE, now), ""
        return FeedbackOutcome.RECORDED, ""
    if report.kind == FeedbackKind.COMPLAINT:
        others = tuple(s for s in SubscriberStatus if s != SubscriberStatus.COMPLAINED)
        outcome = _suppress(conn, found, SubscriberStatus.COMPLAINED, report.source, reason, others, now)
        return outcome, _complaint_pause(conn, settings, found, now)
    return FeedbackOutcome.RECORDED, ""


def _mark_row(conn: Connection, found: match.Match, reason: str, now: datetime) -> None:
    """Turn a row whose message went out into bounced, keeping the report as its reply."""
    if found.row_status in _WENT_OUT:
        conn.execute(update(_D).where(_D.c.id == found.delivery_id)
                     .values(status=DeliveryState.BOUNCED, reply=reason[:2000], updated_at=now))


def _suppress(conn: Connection, found: match.Match, status: str, source: str, reason: str,
              from_states: tuple[str, ...], now: datetime) -> str:
    """Move the row's subscriber to status when it is in one of from_states; returns the outcome."""
    if found.subscriber_id is None or found.subscriber_status not in from_states:
        return FeedbackOutcome.RECORDED
    result = conn.execute(update(_S).where(_S.c.id == found.subscriber_id, _S.c.status.in_(from_states))
                          .values(status=status, updated_at=now))
    if not result.rowcount:
        return FeedbackOutcome.RECORDED
    suppression.suppress(conn, [found.subscriber_id], status, source, reason, found.issue_id, now)
    log.info("%s on list %r is now %s: %s", found.email, found.list, status, reason)
    return FeedbackOutcome.SUPPRESSED


def _soft_streak(conn: Connection, found: match.Match, limit: int) -> bool:
    """Return True when the subscriber's last `limit` messages up to this one all bounced."""
    if found.subscriber_id is None:
        return False
    rows = conn.execute(select(_D.c.id).where(
        _D.c.subscriber_id == found.subscriber_id, _D.c.id <= found.delivery_id,
        _D.c.status.in_(_WENT_OUT)).order_by(_D.c.id.desc()).limit(limit)).scalars().all()
    if len(rows) < limit:
        return False
    bounced = conn.execute(select(func.count(distinct(_E.c.delivery_id))).where(
        _E.c.delivery_id.in_(rows),
        _E.c.kind.in_((FeedbackKind.SOFT_BOUNCE, FeedbackKind.HARD_BOUNCE)))).scalar_one()
    return bounced >= limit


def _complaint_pause(conn: Connection, settings: "BouncesSection", found: match.Match, now: datetime) -> str:
    """Pause the list when the issue's complaints passed the ratio; returns the message, or ""."""
    ratio = settings.complaint_pause_ratio
    if ratio <= 0:
        return ""
    complaints = conn.execute(select(func.count(distinct(_E.c.delivery_id))).where(
        _E.c.issue_id == found.issue_id, _E.c.list == found.list,
        _E.c.kind == FeedbackKind.COMPLAINT)).scalar_one()
    delivered = conn.execute(select(func.count()).select_from(_D).where(
        _D.c.issue_id == found.issue_id, _D.c.list == found.list,
        _D.c.status.in_(_DELIVERED))).scalar_one()
    if not delivered or complaints / delivered <= ratio:
        return ""
    reason = (f"list {found.list!r}: scheduled sends paused: issue {found.issue_id} drew {complaints} "
              f"spam complaint(s) from {delivered} messages ({100 * complaints / delivered:.2f} %, "
              f"over bounces.complaint_pause_ratio = {100 * ratio:.2f} %); check the list and the "
              f"content, then run `newsletter bounces resume --list {found.list}`")
    return reason if pause.pause(conn, found.list, found.issue_id, reason, now) else ""


@dataclass(frozen=True)
class Event:
    """A report kept for an issue: what it said about which address, from where, and what it did."""

    kind: str
    email: str
    list: str
    source: str
    provider: str
    detail: str
    outcome: str
    received_at: datetime


def issue_events(engine: Engine, issue_id: str, list_name: str | None = None) -> list[Event]:
    """Return the reports matched to issue_id's messages (one list, or all), oldest first."""
    query = select(_E).where(_E.c.issue_id == issue_id).order_by(_E.c.id)
    if list_name is not None:
        query = query.where(_E.c.list == list_name)
    with engine.connect() as conn:
        return [Event(r.kind, r.email, r.list, r.source, r.provider, r.detail, r.outcome, r.received_at)
                for r in conn.execute(query)]
