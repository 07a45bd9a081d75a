"""Undo suppressions made by mistake: reactivate bounced (and, when asked, complained) subscribers.

Imports never re-subscribe anyone; this is the explicit undo. An unsubscribe is the subscriber's
own choice and is never undone here. With an issue, the reactivated subscribers' bounced rows of
that issue go back to pending, so `newsletter send ISSUE` delivers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Connection, Engine

from ..db import as_utc, deliveries, issues, subscribers, suppressions, utcnow, write_transaction
from ..errors import SubscriberError
from ..models import DeliveryState, IssueState, SubscriberStatus
from ..subscribers import suppression
from ..subscribers.addresses import address_key, normalise_address
from ..timeutil import parse_duration, parse_moment

_S, _P, _D, _I = subscribers, suppressions, deliveries, issues
UNDOABLE = (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


@dataclass(frozen=True)
class Reactivated:
    """One subscriber made active again, and the suppression that was lifted."""

    email: str
    was: str                      # bounced | complained
    source: str                   # where the suppression came from ("" when none was recorded)
    reason: str
    since: datetime | None


@dataclass
class UndoReport:
    """What a reactivation did (or, with dry_run, would do)."""

    list: str
    reactivated: list[Reactivated] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)    # (address, why not)
    rows_reset: int = 0           # ledger rows of the issue set back to pending
    dry_run: bool = False


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """Return the UTC moment "7d"/"12h" ago, or of an ISO date or date-time (UTC unless it says).

    Raises SubscriberError saying what was expected.
    """
    now = now or utcnow()
    value = (text or "").strip()
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        return parse_moment(value)
    except ValueError as err:
        raise SubscriberError(f"--bounced-since {text!r}: expected a duration such as 12h or 7d, or "
                              "an ISO date or time such as 2026-05-01 or 2026-05-01T09:00") from err


def _candidates(conn: Connection, list_name: str, where) -> list:
    """Return list_name's subscribers matching where, each with its open suppression (if any)."""
    query = (select(_S.c.id, _S.c.email, _S.c.email_key, _S.c.status, _S.c.updated_at,
                    _P.c.source, _P.c.reason, _P.c.created_at, _P.c.issue_id)
             .select_from(_S.outerjoin(_P, and_(_P.c.subscriber_id == _S.c.id, _P.c.lifted_at.is_(None))))
             .where(_S.c.list == list_name, where).order_by(_S.c.id))
    return conn.execute(query).all()


def reactivate(engine: Engine, list_name: str, addresses: Sequence[str], *, issue_id: str | None = None,
               dry_run: bool = False) -> UndoReport:
    """Reactivate the bounced or complained subscribers among addresses in list_name.

    Addresses that are unsubscribed, already receiving, invalid or not on the list are refused
    with the reason (the others still change). With issue_id, their bounced rows of that issue
    go back to pending. Returns the UndoReport.
    """
    report = UndoReport(list_name, dry_run=dry_run)
    keys: dict[str, str] = {}
    for address in addresses:
        try:
            keys[address_key(normalise_address(address))] = address
        except SubscriberError as err:
            report.refused.append((address, str(err)))
    with write_transaction(engine) as conn:
        rows = {r.email_key: r for r in _candidates(conn, list_name, _S.c.email_key.in_(list(keys)))}
        chosen = []
        for key, address in keys.items():
            row = rows.get(key)
            if row is None:
                report.refused.append((address, f"not on list {list_name!r}"))
            elif row.status == SubscriberStatus.UNSUBSCRIBED:
                report.refused.append((address, "unsubscribed by their own choice: only they can subscribe "
                                                "again (the sign-up form or the link in any issue)"))
            elif row.status not in UNDOABLE:
                report.refused.append((address, f"already {row.status}: nothing to undo"))
            else:
                chosen.append(row)
        _reactivate(conn, report, list_name, chosen, issue_id, "reactivated by hand")
    return report


def reactivate_matching(engine: Engine, list_name: str, *, since: datetime | None = None,
                        issue_id: str | None = None, include_complaints: bool = False,
                        dry_run: bool = False) -> UndoReport:
    """Reactivate list_name's bounced subscribers suppressed since `since` and/or by issue_id.

    With include_complaints, complained subscribers that match count too. A suppression made
    before the suppression list existed is dated by the subscriber's last change and tied to an
    issue by its bounced ledger row. Returns the UndoReport (unsubscribed ones are never touched).
    """
    if since is None and issue_id is None:
        raise SubscriberError("say which suppressions to undo: --bounced-since TIME and/or --issue ID")
    statuses = UNDOABLE if include_complaints else (SubscriberStatus.BOUNCED,)
    report = UndoReport(list_name, dry_run=dry_run)
    with write_transaction(engine) as conn:
        rows = _candidates(conn, list_name, _S.c.status.in_(statuses))
        bounced_in_issue: set[int] = set()
        if issue_id is not None:
            bounced_in_issue = set(conn.execute(select(_D.c.subscriber_id).where(
                _D.c.issue_id == issue_id, _D.c.list == list_name,
                _D.c.status == DeliveryState.BOUNCED)).scalars())
        chosen = []
        for row in rows:
            when = as_utc(row.created_at or row.updated_at)
            if since is not None and (when is None or when < since):
                continue
            if issue_id is not None and row.issue_id != issue_id and row.id not in bounced_in_issue:
                continue
            chosen.append(row)
        what = f"issue {issue_id}" if issue_id else f"since {since:%Y-%m-%d %H:%M} UTC"
        _reactivate(conn, report, list_name, chosen, issue_id, f"reactivated in a mass undo ({what})")
    return report


def _reactivate(conn: Connection, report: UndoReport, list_name: str, rows: list, issue_id: str | None,
                why: str) -> None:
    """Make rows active, lift their suppressions and reset their bounced rows of issue_id (unless dry run)."""
    report.reactivated = [Reactivated(r.email, r.status, r.source or "", r.reason or "",
                                      as_utc(r.created_at)) for r in rows]
    ids = [r.id for r in rows]
    if not ids:
        return
    reset = (_D.c.issue_id == issue_id, _D.c.list == list_name, _D.c.subscriber_id.in_(ids),
             _D.c.status == DeliveryState.BOUNCED)
    if report.dry_run:
        if issue_id is not None:
            report.rows_reset = conn.execute(select(func.count()).select_from(_D).where(*reset)).scalar_one()
        return
    now = utcnow()
    conn.execute(update(_S).where(_S.c.id.in_(ids), _S.c.status.in_(UNDOABLE)).values(
        status=SubscriberStatus.ACTIVE, updated_at=now, confirmed_at=func.coalesce(_S.c.confirmed_at, now)))
    suppression.lift(conn, ids, why, now)
    if issue_id is not None:
        report.rows_reset = conn.execute(update(_D).where(*reset).values(
            status=DeliveryState.PENDING, updated_at=now)).rowcount
        if report.rows_reset:
            # The issue has rows to send again: it is not finished any more.
            conn.execute(update(_I).where(_I.c.id == issue_id, _I.c.list == list_name)
                         .values(state=IssueState.SENDING, finished_at=None))

