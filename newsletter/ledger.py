"""The delivery ledger: one row per (issue, subscriber), claimed before sending and recorded after."""

from __future__ import annotations

import json
import json.scanner
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    DateTime,
    Integer,
    Text,
    bindparam,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Engine

from .db import as_utc, deliveries, issues, subscribers, utcnow, write_transaction
from .errors import SubscriberError
from .models import DeliveryState, IssueState, ReplyClass, Subscriber, SubscriberStatus, SuppressionSource
from .subscribers import suppression

log = logging.getLogger(__name__)

_D, _S, _I = deliveries, subscribers, issues

# pending: never attempted; sending: claimed, its message may be on the wire; deferred: a
# temporary failure, tried again by the next run; unknown: was "sending" when a run died, so it
# may or may not have arrived (resent only on request); skipped: no longer subscribed at send time.
STATES = tuple(DeliveryState)
# An issue is not finished while any of these remain.
OPEN_STATES = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.DEFERRED)
# The reply column holds "[class] the server's reply": the models.ReplyClass the backend read
# the reply as, then its text (format_reply / parse_reply).
_CLASSED = re.compile(r"\[([a-z]+)\] ?")
# Rows per recording UPDATE (6 parameters each: under SQLite's 32,766 and PostgreSQL's 65,535).
# The send loop records whole tasks, so its few statement sizes stay in the driver's cache.
RECORD_SLICE = 5000


# Claimed and Outcome are made once per recipient per send: a tuple costs a third of a frozen
# dataclass, so Claimed carries the subscriber's columns rather than a Subscriber of its own.
class Claimed(NamedTuple):
    """A ledger row claimed for sending: the row id and the subscriber to personalise for."""

    row_id: int
    subscriber_id: int | None
    email: str                    # the address frozen in the ledger row
    name: str
    fields: dict[str, Any]
    status: str                   # the subscriber's status ("active" for every claimed row)
    list: str

    @property
    def subscriber(self) -> Subscriber:
        """Return the row's subscriber as a Subscriber."""
        return Subscriber(self.email, self.name, self.list, self.status, self.fields, self.subscriber_id)


class Outcome(NamedTuple):
    """The result to record for one row: a final or deferred state and what the server said."""

    # The field order matters: record() sends each Outcome as a VALUES row as it stands.
    row_id: int
    status: str                   # sent | deferred | bounced | failed | unknown | pending
    message_id: str = ""
    provider_id: str = ""
    reply: str = ""
    subscriber_id: int | None = None     # set for bounced rows: the subscriber is suppressed too


class Recovered(NamedTuple):
    """What became of the rows a dead run left "sending"."""

    unknown: int = 0          # may have been delivered: resent only on request
    sent: int = 0             # the run's journal shows them delivered
    pending: int = 0          # never handed over (or refused): sent again normally


_tuple_new = tuple.__new__
_status = attrgetter("status")


def format_reply(reply_class: ReplyClass | str, reply: str) -> str:
    """Return the reply column's value for a reply read as reply_class: "[recipient] 550 5.1.1 ..."."""
    return f"[{reply_class}] {reply}"


def parse_reply(stored: str) -> tuple[ReplyClass | None, str]:
    """Return (reply class, reply text) of a stored reply; the class is None for replies stored
    without one (earlier releases, rows the ledger itself annotated)."""
    m = _CLASSED.match(stored)
    if m and m.group(1) in ReplyClass._value2member_map_:
        return ReplyClass(m.group(1)), stored[m.end():]
    return None, stored

# The stored JSON as the driver gives it (text on SQLite, already decoded by psycopg), read by
# _fields: SQLAlchemy's JSON type would call json.loads per row through two Python layers.
_FIELDS_RAW = type_coerce(_S.c.fields, Text)
_scan_json = json.scanner.make_scanner(json.JSONDecoder())     # the C scanner json.loads ends in


def _fields(raw: Any) -> Any:
    """Return a subscriber's custom fields from the stored JSON ({} for none)."""
    if not raw or type(raw) is not str:
        return raw or {}
    try:
        value, end = _scan_json(raw, 0)
    except StopIteration:
        end = -1
    # Surrounding blanks go through json.loads, as does bad JSON (its error says where).
    return (value if end == len(raw) else json.loads(raw)) or {}


def _bind(column: Any, dialect: Any) -> Any:
    """Return the function that turns a Python value into what the driver stores for column."""
    return column.type.bind_processor(dialect) or (lambda value: value)


def _claimable(retry_unknown: bool) -> tuple[str, ...]:
    """Return the row states a run may claim."""
    return ((DeliveryState.PENDING, DeliveryState.DEFERRED, DeliveryState.UNKNOWN) if retry_unknown
            else (DeliveryState.PENDING, DeliveryState.DEFERRED))


def _suppress_bounced(conn: Connection, bounced: list[Outcome]) -> None:
    """Mark the still-active subscribers of bounced rows bounced, with the reply on the suppression list."""
    ids = [o.subscriber_id for o in bounced]
    active = set(conn.execute(select(_S.c.id).where(_S.c.id.in_(ids), _S.c.status == SubscriberStatus.ACTIVE))
                 .scalars())
    if not active:
        return
    now = utcnow()
    conn.execute(update(_S).where(_S.c.id.in_(sorted(active))).values(status=SubscriberStatus.BOUNCED, updated_at=now))
    issue_of = dict(conn.execute(select(_D.c.id, _D.c.issue_id).where(_D.c.id.in_([o.row_id for o in bounced]))).all())
    for o in bounced:
        if o.subscriber_id in active:
            active.discard(o.subscriber_id)
            suppression.suppress(conn, [o.subscriber_id], SubscriberStatus.BOUNCED, SuppressionSource.REPLY,
                                 o.reply, issue_of.get(o.row_id), now)


class Ledger:
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

    def recover(self, issue_id: str, settled: Mapping[int, tuple[str, str]] | None = None,
                run_id: str = "", *, list_name: str | None = None,
                rows: tuple[int, int] | None = None) -> Recovered:
        """Settle the rows a run that died left "sending"; return how many became what.

        settled maps subscriber ids to the last event the journal of run run_id noted for them
        (delivery/journal.py): "S" (with the Message-ID) → sent, "W" (handed over, no result) →
        unknown, "N" or absent (never handed over, or refused) → pending. It speaks only for the
        rows that run claimed; every other "sending" row (no journal, another run's, another
        host's) may have been delivered, so it becomes unknown. list_name and rows (an inclusive
        range of row ids: a queue chunk, whose one runner calls this with its lock held) narrow
        it to those rows: other chunks' rows may be on the wire right now.
        """
        unknown: list[int] = []
        sent: list[dict[str, Any]] = []
        pending: list[int] = []
        with write_transaction(self.engine) as conn:
            query = select(_D.c.id, _D.c.subscriber_id, _D.c.provider_id).where(
                _D.c.issue_id == issue_id, _D.c.status == DeliveryState.SENDING)
            if list_name is not None:
                query = query.where(_D.c.list == list_name)
            if rows is not None:
                query = query.where(_D.c.id.between(*rows))
            for row_id, sid, claimed_by in conn.execute(query).all():
                known = settled is not None and run_id and claimed_by == run_id
                kind, message_id = settled.get(sid, ("N", "")) if known else ("W", "")
                if kind == "S":
                    sent.append({"b_id": row_id, "b_mid": message_id})
                elif kind == "W":
                    unknown.append(row_id)
                else:
                    pending.append(row_id)
            now = utcnow()
            for i in range(0, len(unknown), RECORD_SLICE):
                conn.execute(update(_D).where(_D.c.id.in_(unknown[i:i + RECORD_SLICE])).values(
                    status=DeliveryState.UNKNOWN, updated_at=now, provider_id="",
                    reply="in flight when an earlier run stopped: may or may not have arrived"))
            for i in range(0, len(pending), RECORD_SLICE):
                # Claimed but never handed over: as if never claimed (the claim's attempt undone).
                conn.execute(update(_D).where(_D.c.id.in_(pending[i:i + RECORD_SLICE])).values(
                    status=DeliveryState.PENDING, updated_at=now, provider_id="",
                    attempts=_D.c.attempts - 1))
            if sent:
                conn.execute(update(_D).where(_D.c.id == bindparam("b_id")).values(
                    status=DeliveryState.SENT, message_id=bindparam("b_mid"), updated_at=now, provider_id="",
                    reply=format_reply(ReplyClass.DELIVERED, "delivered before an earlier run stopped "
                                       "(from its journal)")), sent)
        if unknown:
            log.warning("issue %s: %d messages were in flight when an earlier run stopped (now unknown)",
                        issue_id, len(unknown))
        if sent or pending:
            log.info("issue %s: of the rows an earlier run left in flight, %d were delivered and %d "
                     "never handed over (sent again)", issue_id, len(sent), len(pending))
        return Recovered(len(unknown), len(sent), len(pending))

    def recover_range(self, issue_id: str, list_name: str, rows: tuple[int, int],
                      settled: Mapping[int, tuple[str, str]] | None = None, run_id: str = "") -> Recovered:
        """recover() for one queue chunk: the rows of (issue_id, list_name) with ids in the inclusive
        range rows. Only the chunk's one runner may call it (its lock held)."""
        return self.recover(issue_id, settled, run_id, list_name=list_name, rows=rows)

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

    def finish(self, issue_id: str, list_name: str) -> str:
        """Mark (issue_id, list_name) sent when no row is still open; return its state."""
        with write_transaction(self.engine) as conn:
            still_open = conn.execute(select(_D.c.id).where(
                _D.c.issue_id == issue_id, _D.c.list == list_name,
                _D.c.status.in_(OPEN_STATES)).limit(1)).first()
            state = IssueState.SENDING if still_open else IssueState.SENT
            conn.execute(update(_I).where(_I.c.id == issue_id, _I.c.list == list_name, _I.c.state != state)
                         .values(state=state, finished_at=None if still_open else utcnow()))
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
                  rows: tuple[int, int] | None = None) -> int:
        """Return how many rows of (issue_id, list_name) a run would try to send (only ids in rows,
        an inclusive (first, last) range, when given)."""
        query = select(func.count()).select_from(_D).where(
            _D.c.issue_id == issue_id, _D.c.list == list_name, _D.c.status.in_(_claimable(retry_unknown)))
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
