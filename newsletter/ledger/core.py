"""The delivery ledger: one row per (issue, subscriber), claimed before sending and recorded after."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from ..db import as_utc, deliveries, issues, subscribers, utcnow, write_transaction
from ..errors import SubscriberError
from ..models import DeliveryState, IssueState, SubscriberStatus

from .recovery import Recovery
from .rows import (OPEN_STATES, RECORD_SLICE, STATES, Claimed, Outcome, _bind, _claimable, _fields,
                   _FIELDS_RAW, _status, _suppress_bounced, _tuple_new)

log = logging.getLogger("newsletter.ledger")
_D, _S, _I = deliveries, subscribers, issues


class Ledger(Recovery):
    """Reads and writes the deliveries and issues tables; every method is one short transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def plan(self, issue_id: str, list_name: str) -> int:
        """Freeze the recipients of issue_id in list_name (first call only); return the row count.

        The first call creates the issue and one pending row per active subscriber in a single
        transaction; later calls change nothing, so subscribers who join later do not get an old
        issue by a re-run. Raises SubscriberError when the list has no active subscriber.
        """
        with write_transaction(self.engine) as conn:
            return self.plan_in(conn, issue_id, list_name)

    def plan_in(self, conn: Connection, issue_id: str, list_name: str) -> int:
        """plan() inside the caller's write transaction on conn (the queue plans and enqueues in one)."""
        now = utcnow()
        if conn.execute(select(_I.c.id).where(_I.c.id == issue_id, _I.c.list == list_name)).first():
            return self._count(conn, issue_id, list_name)
        active = conn.execute(select(func.count()).select_from(_S).where(
            _S.c.list == list_name, _S.c.status == SubscriberStatus.ACTIVE)).scalar_one()
        if not active:
            raise SubscriberError(f"list {list_name!r} has no active subscriber: nothing to send")
        conn.execute(insert(_I).values(id=issue_id, list=list_name, state=IssueState.SENDING, started_at=now))
        source = select(
            literal(issue_id), _S.c.list, _S.c.id, _S.c.email, literal(DeliveryState.PENDING.value),
            literal(0, Integer), literal(""), literal(""), literal(""),
            literal(now, DateTime(timezone=True)),
        ).where(_S.c.list == list_name, _S.c.status == SubscriberStatus.ACTIVE).order_by(_S.c.id)
        conn.execute(insert(_D).from_select(
            ["issue_id", "list", "subscriber_id", "email", "status", "attempts", "message_id",
             "provider_id", "reply", "updated_at"], source))
        n = self._count(conn, issue_id, list_name)
        log.info("issue %s: %d recipients in list %s", issue_id, n, list_name)
        return n

    @staticmethod
    def _count(conn: Connection, issue_id: str, list_name: str) -> int:
        """Return how many ledger rows (issue_id, list_name) has."""
        return int(conn.execute(select(func.count()).select_from(_D).where(
            _D.c.issue_id == issue_id, _D.c.list == list_name)).scalar_one())

    def _select(self, issue_id: str, list_name: str, after_id: int, limit: int, retry_unknown: bool,
                until_id: int | None = None):
        """Return the select of claimable rows after after_id (up to until_id), joined with their subscribers."""
        query = (select(_D.c.id, _D.c.subscriber_id, _D.c.email, _S.c.name, _FIELDS_RAW, _S.c.status)
                 .select_from(_D.outerjoin(_S, _S.c.id == _D.c.subscriber_id))
                 .where(_D.c.issue_id == issue_id, _D.c.list == list_name, _D.c.id > after_id,
                        _D.c.status.in_(_claimable(retry_unknown)))
                 .order_by(_D.c.id).limit(limit))
        return query if until_id is None else query.where(_D.c.id <= until_id)

    def claim(self, issue_id: str, list_name: str, *, after_id: int, limit: int,
              retry_unknown: bool = False, until_id: int | None = None,
              run_id: str = "") -> tuple[list[Claimed], int, int]:
        """Claim up to limit rows after after_id (pending → sending, attempts + 1) in one transaction.

        until_id, when given, is the last row id that may be claimed (a queue chunk's end).
        Returns (claimed rows, rows skipped because the subscriber left, id of the last row looked
        at, or after_id when none). Skipped rows are marked "skipped" in the same transaction.
        While a row is "sending" its provider_id holds run_id: the run whose journal speaks for it.
        """
        claimable = _claimable(retry_unknown)
        with write_transaction(self.engine) as conn:
            rows = conn.execute(self._select(issue_id, list_name, after_id, limit, retry_unknown, until_id)).all()
            if not rows:
                return [], 0, after_id
            last = rows[-1][0]
            claimed: list[Claimed] = []
            gone: list[dict[str, Any]] = []
            for row_id, sub_id, email, name, fields, status in rows:     # tuples: fast at 50k rows/s
                if status == SubscriberStatus.ACTIVE:
                    # tuple.__new__ skips the Python-level __new__ a NamedTuple adds (same object).
                    claimed.append(_tuple_new(Claimed, (row_id, sub_id, email, name or "", _fields(fields),
                                                        "active", list_name)))
                else:
                    gone.append({"b_id": row_id, "b_reply": f"subscriber is {status or 'removed'}"})
            now = utcnow()
            if gone:
                conn.execute(update(_D).where(_D.c.id == bindparam("b_id")).values(
                    status="skipped", updated_at=now, reply=bindparam("b_reply")), gone)
            if claimed:
                # The select above took every claimable row in (after_id, last] inside this same
                # write transaction, so one range update claims exactly those rows.
                conn.execute(update(_D).where(
                    _D.c.issue_id == issue_id, _D.c.list == list_name, _D.c.id > after_id,
                    _D.c.id <= last, _D.c.status.in_(claimable))
                    .values(status=DeliveryState.SENDING, attempts=_D.c.attempts + 1, updated_at=now,
                            provider_id=run_id))
        return claimed, len(gone), last

    def claim_rows(self, row_ids: Sequence[int], run_id: str = "") -> list[Claimed]:
        """Claim specific deferred rows again (deferred → sending) for an in-run retry; returns them."""
        if not row_ids:
            return []
        with write_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_D.c.id, _D.c.list, _D.c.subscriber_id, _D.c.email, _S.c.name, _S.c.fields, _S.c.status)
                .select_from(_D.outerjoin(_S, _S.c.id == _D.c.subscriber_id))
                .where(_D.c.id.in_(list(row_ids)), _D.c.status == DeliveryState.DEFERRED, _S.c.status == SubscriberStatus.ACTIVE)
                .order_by(_D.c.id)).all()
            if rows:
                conn.execute(update(_D).where(_D.c.id.in_([r.id for r in rows]))
                             .values(status=DeliveryState.SENDING, attempts=_D.c.attempts + 1, updated_at=utcnow(),
                                     provider_id=run_id))
        return [Claimed(r.id, r.subscriber_id, r.email, r.name or "", dict(r.fields or {}), "active", r.list)
                for r in rows]

    def peek(self, issue_id: str, list_name: str, *, after_id: int, limit: int,
             retry_unknown: bool = False) -> list[Claimed]:
        """Return the next claimable rows without claiming them (dry runs); skips departed subscribers."""
        with self.engine.connect() as conn:
            rows = conn.execute(self._select(issue_id, list_name, after_id, limit, retry_unknown)).all()
        return [Claimed(r.id, r.subscriber_id, r.email, r.name or "", dict(_fields(r.fields)),
                        r.status or "removed", list_name) for r in rows]

    def record(self, outcomes: Iterable[Outcome]) -> None:
        """Write a batch of outcomes (and suppress bounced subscribers) in one transaction."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        with write_transaction(self.engine) as conn:
            dialect = conn.dialect
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            stamp = _bind(_D.c.updated_at, dialect)(utcnow())
            # One UPDATE ... FROM (VALUES ...) per slice rather than an executemany: the driver
            # releases the GIL for every statement it runs, and under busy sender threads each
            # of those hand-overs costs far more than the row update itself. Each Outcome is a
            # VALUES row as it stands (its subscriber goes unused): no Python work per row.
            for i in range(0, len(outcomes), RECORD_SLICE):
                part = outcomes[i:i + RECORD_SLICE]
                rows = ", ".join([f"({', '.join([mark] * len(Outcome._fields))})"] * len(part))
                conn.exec_driver_sql(
                    "UPDATE deliveries SET status = v.column2, message_id = v.column3, "
                    "provider_id = v.column4, reply = substr(v.column5, 1, 2000), "
                    # A row handed back unattempted ("pending") does not count as an attempt.
                    "attempts = attempts - CASE WHEN v.column2 = 'pending' THEN 1 ELSE 0 END, "
                    f"updated_at = {mark} FROM (VALUES {rows}) AS v WHERE deliveries.id = v.column1",
                    (stamp, *chain.from_iterable(part)))
            if "bounced" in map(_status, outcomes):          # a scan in C: bounces are rare
                bounced = [o for o in outcomes if o.status == DeliveryState.BOUNCED and o.subscriber_id]
                if bounced:
                    _suppress_bounced(conn, bounced)

    def finish(self, issue_id: str, list_name: str,
               then: Callable[[Connection], None] | None = None) -> str:
        """Mark (issue_id, list_name) sent when no row is still open; return its state.

        then, when given, is called with the connection when the send is marked sent, inside the
        same transaction (the scheduler's records of the send finish with it, or not at all)."""
        with write_transaction(self.engine) as conn:
            still_open = conn.execute(select(_D.c.id).where(
                _D.c.issue_id == issue_id, _D.c.list == list_name,
                _D.c.status.in_(OPEN_STATES)).limit(1)).first()
            state = IssueState.SENDING if still_open else IssueState.SENT
            conn.execute(update(_I).where(_I.c.id == issue_id, _I.c.list == list_name, _I.c.state != state)
                         .values(state=state, finished_at=None if still_open else utcnow()))
            if then is not None and state == IssueState.SENT:
                then(conn)
        return state

    def counts(self, issue_id: str, list_name: str | None = None) -> dict[str, int]:
        """Return {row state: count} for issue_id (one list, or all), every state present."""
        out = dict.fromkeys(STATES, 0)
        query = select(_D.c.status, func.count()).where(_D.c.issue_id == issue_id).group_by(_D.c.status)
        if list_name is not None:
            query = query.where(_D.c.list == list_name)
        with self.engine.connect() as conn:
            for status, n in conn.execute(query):
                out[status] = int(n)
        return out

    def claimable(self, issue_id: str, list_name: str, retry_unknown: bool = False,
                  rows: tuple[int, int] | None = None, *, active_only: bool = False) -> int:
        """Return how many rows of (issue_id, list_name) a run would try to send (only ids in rows,
        an inclusive (first, last) range, when given); active_only: only those whose subscriber is
        still active, the messages a run would really hand over (it skips the others)."""
        source = _D.join(_S, _S.c.id == _D.c.subscriber_id) if active_only else _D
        query = select(func.count()).select_from(source).where(
            _D.c.issue_id == issue_id, _D.c.list == list_name, _D.c.status.in_(_claimable(retry_unknown)))
        if active_only:
            query = query.where(_S.c.status == SubscriberStatus.ACTIVE)
        if rows is not None:
            query = query.where(_D.c.id.between(*rows))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def rows(self, issue_id: str, status: str, limit: int = 100,
             list_name: str | None = None) -> list[tuple[str, str, str]]:
        """Return up to limit (email, message_id, reply) of issue_id's rows in one state (one list or all)."""
        query = (select(_D.c.email, _D.c.message_id, _D.c.reply)
                 .where(_D.c.issue_id == issue_id, _D.c.status == status).order_by(_D.c.id).limit(limit))
        if list_name is not None:
            query = query.where(_D.c.list == list_name)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]

    def lists_of(self, issue_id: str) -> list[str]:
        """Return the lists issue_id was planned for."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(_I.c.list).where(_I.c.id == issue_id)).scalars())

    def sent_issues(self) -> list[tuple[str, datetime]]:
        """Return (issue id, when it finished) for every issue sent to at least one list, oldest first."""
        finished = func.min(_I.c.finished_at)
        with self.engine.connect() as conn:
            rows = conn.execute(select(_I.c.id, finished).where(_I.c.state == IssueState.SENT)
                                .group_by(_I.c.id).order_by(finished, _I.c.id)).all()
        return [(issue_id, as_utc(when)) for issue_id, when in rows]

    def issue_state(self, issue_id: str) -> str | None:
        """Return "sending" while any list of issue_id is unfinished, "sent" when all are, else None."""
        with self.engine.connect() as conn:
            states = set(conn.execute(select(_I.c.state).where(_I.c.id == issue_id)).scalars())
        if not states:
            return None
        return IssueState.SENDING if IssueState.SENDING in states else IssueState.SENT

    def is_frozen(self, issue_id: str) -> bool:
        """Return True once issue_id has ledger rows (its recipients and content are fixed)."""
        with self.engine.connect() as conn:
            return conn.execute(select(_D.c.id).where(_D.c.issue_id == issue_id).limit(1)).first() is not None
