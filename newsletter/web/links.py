"""From a link token to its subscriber: verified, looked up by opaque reference, and for the
address-bearing links of earlier releases, honoured only within signing.legacy_link_days.

How old links keep working: a database records (newsletter_meta.opaque_links_since) when a release
writing opaque references first opened it. A link that still names an address is honoured while
the ledger shows that its subscriber was sent an issue started before that moment and less than
signing.legacy_link_days ago: so links in the issues already sent keep working until the newest
of those issues is older than the window, and then no old-format link works any more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import abort
from sqlalchemy import and_, select

from ..db import OPAQUE_LINKS_SINCE, deliveries, issues, recall
from ..errors import SubscriberError, TokenError
from ..models import DeliveryState, Subscriber
from ..signing import LinkRef
from ..subscribers.links import LinkedSubscriber, find_by_address, find_by_id
from .context import Services, services
from .validate import is_token

log = logging.getLogger(__name__)

# Ledger states in which the message (and so the link in it) may have reached the subscriber.
_DELIVERED = (str(DeliveryState.SENT), str(DeliveryState.UNKNOWN))
_MAX_ID = 2**63 - 1     # the largest id a database integer column can hold


@dataclass(frozen=True)
class Link:
    """A verified link: what its token says, and the subscriber it names (None when gone)."""

    ref: LinkRef
    found: LinkedSubscriber | None

    @property
    def subscriber(self) -> Subscriber | None:
        """Return the subscriber, or None when nobody on the list matches the link any more."""
        return self.found.subscriber if self.found else None


def read_link(token: str, read: Callable[[str], LinkRef], bad_link: str) -> Link:
    """Return the Link of a token that read() verifies; abort 400 with bad_link when it is not ours.

    A token we signed whose subscriber was removed (or that a test copy carried) is no error: the
    Link comes back with found None, and the page says so with a 200.
    """
    if not is_token(token):
        abort(400, description=bad_link)
    try:
        ref = read(token)
    except TokenError:
        abort(400, description=bad_link)
    return Link(ref, _find(services(), ref))


def _find(s: Services, ref: LinkRef) -> LinkedSubscriber | None:
    """Return the subscriber ref names, or None when there is none (any more)."""
    if ref.is_legacy:
        try:
            return find_by_address(s.subscribers, ref.legacy_email, ref.legacy_list)
        except SubscriberError as err:
            # Signed by us in an earlier release, but the address or list breaks today's rules.
            log.warning("an old-format link names an unusable address or list: %s", err)
            return None
    if ref.subscriber_id is None or ref.subscriber_id > _MAX_ID:
        return None
    found = find_by_id(s.subscribers, ref.subscriber_id)
    if found is None or not s.signer.binds(ref, found.subscriber.email, found.subscriber.list):
        return None     # removed, or the id now belongs to someone else
    return found


def legacy_link_in_window(s: Services, subscriber: Subscriber, now: datetime | None = None) -> bool:
    """Return True when an old-format link to subscriber may still be used (see the module docstring)."""
    since_text = recall(s.engine, OPAQUE_LINKS_SINCE)
    if since_text is None or subscriber.id is None:
        return False
    since = datetime.fromisoformat(since_text)
    since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    start = (now or datetime.now(timezone.utc)) - timedelta(days=s.config.signing.legacy_link_days)
    if start >= since:
        return False        # every issue sent with old links has left the window
    d, i = deliveries, issues
    query = (select(d.c.id)
             .select_from(d.join(i, and_(d.c.issue_id == i.c.id, d.c.list == i.c.list)))
             .where(d.c.subscriber_id == subscriber.id, d.c.list == subscriber.list,
                    d.c.status.in_(_DELIVERED), i.c.started_at < since, i.c.started_at >= start)
             .limit(1))
    with s.engine.connect() as conn:
        return conn.execute(query).first() is not None
