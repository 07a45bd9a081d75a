"""Find the ledger row (issue, subscriber) a bounce or complaint report is about.

By the message's Message-ID (deterministic per issue and subscriber, stored in the row), by a
VERP token (subscriber id and a hash of that Message-ID), or by the provider's id (stored in the
row when the API answered; one id may cover a whole batch, so the recipient then picks the row).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..db import deliveries, subscribers
from ..personalize import verp
from ..subscribers.addresses import address_key
from .report import Report, bare_id, id_forms

_D, _S = deliveries, subscribers
_COLUMNS = (_D.c.id, _D.c.issue_id, _D.c.list, _D.c.subscriber_id, _D.c.email, _D.c.status,
            _D.c.message_id, _S.c.status.label("subscriber_status"))
MAX_BATCH_ROWS = 5000     # rows one provider id may cover (a batch of the largest API limit, and more)


@dataclass(frozen=True)
class Match:
    """The ledger row a report is about, with its subscriber's current status."""

    delivery_id: int
    issue_id: str
    list: str
    subscriber_id: int | None     # None when the subscriber was removed since
    email: str
    row_status: str
    subscriber_status: str | None
    how: str                      # message-id | verp | provider-id


def _rows(conn: Connection, *where):
    """Return the ledger rows matching where, joined with their subscribers' status."""
    query = (select(*_COLUMNS).select_from(_D.outerjoin(_S, _S.c.id == _D.c.subscriber_id))
             .where(*where).order_by(_D.c.id).limit(MAX_BATCH_ROWS))
    return conn.execute(query).all()


def _match(row, how: str) -> Match:
    """Return the Match of one joined row."""
    return Match(row.id, row.issue_id, row.list, row.subscriber_id, row.email, row.status,
                 row.subscriber_status, how)


def _pick(rows, email: str):
    """Return the one row among rows, using the report's recipient when there are several; else None."""
    if len(rows) == 1:
        return rows[0]
    if not email:
        return None
    key = address_key(email)
    same = [r for r in rows if address_key(r.email) == key]
    return same[0] if len(same) == 1 else None


def by_message_id(conn: Connection, report: Report) -> Match | None:
    """Return the row whose Message-ID the report names, or None."""
    forms = id_forms(report.message_id)
    if not forms:
        return None
    row = _pick(_rows(conn, _D.c.message_id.in_(forms)), report.email)
    return _match(row, "message-id") if row else None


def by_verp(conn: Connection, report: Report) -> Match | None:
    """Return the row a VERP token names (its subscriber's row whose Message-ID hashes to it), or None."""
    parsed = verp.parse_token(report.verp_token)
    if parsed is None:
        return None
    subscriber_id, digest = parsed
    rows = [r for r in _rows(conn, _D.c.subscriber_id == subscriber_id, _D.c.message_id != "")
            if verp.message_hash(r.message_id) == digest]
    return _match(rows[0], "verp") if len(rows) == 1 else None


def by_provider_id(conn: Connection, report: Report) -> Match | None:
    """Return the row the provider's id names (the recipient picks one out of a batch), or None."""
    bare = bare_id(report.provider_id)
    if not bare:
        return None
    forms = id_forms(bare)
    # SendGrid's per-recipient sg_message_id is the X-Message-Id of the call, a dot, and more.
    if report.provider == "sendgrid" and "." in bare:
        forms += id_forms(bare.split(".", 1)[0])
    row = _pick(_rows(conn, _D.c.provider_id.in_(forms)), report.email)
    return _match(row, "provider-id") if row else None


def find(conn: Connection, report: Report) -> Match | None:
    """Return the ledger row report is about (Message-ID, then VERP, then provider id), or None."""
    for finder in (by_message_id, by_verp, by_provider_id):
        found = finder(conn, report)
        if found is not None:
            return found
    return None
