"""The ledger's row types and helpers: a claimed row, an outcome to record, what a recovery did,
and a stored reply with its class ("[recipient] 550 5.1.1 ...")."""

from __future__ import annotations

import json
import json.scanner
import logging
import re
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    Text,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection

from ..db import deliveries, issues, subscribers, utcnow
from ..models import DeliveryState, ReplyClass, Subscriber, SubscriberStatus, SuppressionSource
from ..subscribers import suppression

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


