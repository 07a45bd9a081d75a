"""The suppression list: why and since when an address stopped receiving (reason, source, time).

Each change of a subscriber into bounced, complained or unsubscribed adds a row to the
`suppressions` table inside the caller's transaction; reactivating lifts the open row. The
subscriber's status stays the rule for who gets mail; these rows explain it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..db import SUPPRESSED, as_utc, suppressions, utcnow

_P = suppressions
REASON_LIMIT = 2000       # characters of a reason kept (a server reply, a report's diagnostic)


@dataclass(frozen=True)
class Suppression:
    """The open suppression of one subscriber: its state, where it came from, why and when."""

    subscriber_id: int
    status: str
    source: str                  # models.SuppressionSource
    reason: str
    issue_id: str | None
    created_at: datetime


def suppress(conn: Connection, subscriber_ids: Sequence[int], status: str, source: str,
             reason: str = "", issue_id: str | None = None, now: datetime | None = None) -> None:
    """Record that subscriber_ids became status (a suppression) now, in conn's transaction.

    Earlier open rows of the same subscribers are closed ("superseded"), so each has at most one
    open row. status must be one of the suppressed states (db.SUPPRESSED); raises ValueError otherwise.
    """
    if status not in SUPPRESSED:
        raise ValueError(f"{status!r} is not a suppression")
    ids = sorted({int(i) for i in subscriber_ids})
    if not ids:
        return
    now = now or utcnow()
    lift(conn, ids, f"superseded by {status}", now)
    conn.execute(insert(_P), [
        {"subscriber_id": i, "status": status, "source": source, "reason": (reason or "")[:REASON_LIMIT],
         "issue_id": issue_id, "created_at": now, "lifted_at": None, "lifted_reason": ""} for i in ids])


def lift(conn: Connection, subscriber_ids: Iterable[int], why: str, now: datetime | None = None) -> int:
    """Close the open suppressions of subscriber_ids (reactivated, resubscribed); returns rows closed."""
    ids = sorted({int(i) for i in subscriber_ids})
    if not ids:
        return 0
    result = conn.execute(update(_P).where(_P.c.subscriber_id.in_(ids), _P.c.lifted_at.is_(None))
                          .values(lifted_at=now or utcnow(), lifted_reason=why))
    return result.rowcount


def open_for(engine: Engine, subscriber_ids: Iterable[int]) -> dict[int, Suppression]:
    """Return {subscriber id: its open Suppression} for those of subscriber_ids that have one."""
    ids = sorted({int(i) for i in subscriber_ids})
    out: dict[int, Suppression] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(select(_P).where(and_(_P.c.subscriber_id.in_(ids[start:start + 500]),
                                                      _P.c.lifted_at.is_(None))).order_by(_P.c.id))
            for r in rows:
                out[r.subscriber_id] = Suppression(r.subscriber_id, r.status, r.source, r.reason,
                                                   r.issue_id, as_utc(r.created_at))
    return out
