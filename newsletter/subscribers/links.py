"""The subscriber a link names: look-up by row id (links carry an opaque reference, not the
address), and the confirmation that only a link newer than the subscriber's last change may make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from ..db import as_utc, subscribers, utcnow, write_transaction
from ..models import Subscriber, SubscriberStatus
from .store import SubscriberStore, _subscriber
from . import suppression

_T = subscribers
# States a confirmation moves to active: a pending sign-up, or someone who left and asked back in.
CONFIRMABLE = (SubscriberStatus.UNCONFIRMED, SubscriberStatus.UNSUBSCRIBED)


@dataclass(frozen=True)
class LinkedSubscriber:
    """A subscriber found from a link, with the time its row last changed (UTC)."""

    subscriber: Subscriber
    changed_at: datetime


def find_by_id(store: SubscriberStore, subscriber_id: int) -> LinkedSubscriber | None:
    """Return the subscriber with this row id and when its row last changed, or None when gone."""
    with store.engine.connect() as conn:
        row = conn.execute(select(_T).where(_T.c.id == subscriber_id)).first()
    return LinkedSubscriber(_subscriber(row), as_utc(row.updated_at)) if row else None


def find_by_address(store: SubscriberStore, email: str, list_name: str) -> LinkedSubscriber | None:
    """Return the subscriber with this address in list_name (links of earlier releases), or None.

    Raises SubscriberError when the address or list name breaks its rule.
    """
    found = store.get(email, list_name)
    return find_by_id(store, found.id) if found is not None and found.id is not None else None


def confirm_unchanged(store: SubscriberStore, subscriber_id: int, issued_at: datetime,
                      states: tuple[SubscriberStatus, ...] = CONFIRMABLE) -> bool:
    """Make the subscriber active when it is still confirmable and its row has not changed since
    issued_at (when the confirmation link was made); return True when this call confirmed it.

    One conditional UPDATE, so a link is used once: confirming changes the row, and so does a
    later unsubscribe, after which the same link (or any older one) confirms nothing. states
    narrows which states may be confirmed (default CONFIRMABLE).
    """
    now = utcnow()
    with write_transaction(store.engine) as conn:
        result = conn.execute(
            update(_T)
            .where(_T.c.id == subscriber_id, _T.c.status.in_([str(s) for s in states]),
                   _T.c.updated_at <= issued_at)
            .values(status=str(SubscriberStatus.ACTIVE), updated_at=now,
                    confirmed_at=func.coalesce(_T.c.confirmed_at, now)))
        if result.rowcount > 0:
            # An unsubscribed address that signs up again leaves the suppression list (no-op otherwise).
            suppression.lift(conn, [subscriber_id], "confirmed sign-up", now)
    return result.rowcount > 0
