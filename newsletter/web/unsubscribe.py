"""Unsubscribe links: RFC 8058 one-click POST, and a page with a button (then a way back)."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, request
from flask.typing import ResponseReturnValue

from ..models import Subscriber, SuppressionSource
from .context import page, services
from .links import Link, legacy_link_in_window, read_link
from .security import check_csrf, csrf_exempt

log = logging.getLogger(__name__)

bp = Blueprint("unsubscribe", __name__)

BAD_LINK = ("This unsubscribe link is not valid: it may have been cut or changed. "
            "Use the link from the most recent email you received.")
OLD_LINK = ("This unsubscribe link comes from an issue sent long ago and no longer works. "
            "Use the link in a recent email, or write to us and we will take you off the list.")
GONE_TITLE = "Not on the list"
GONE = ("This link belongs to an address that is not on our list (any more), or to a test copy. "
        "There is nothing to unsubscribe: we send no mail to it from this list.")
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"
# States an unsubscribe may move a subscriber out of; bounced and complained already stop mail.
_RECEIVING = frozenset({"active", "unconfirmed"})


def _link(token: str) -> Link:
    """Return the Link of a signed unsubscribe token; abort 400 when it is not ours or too old."""
    s = services()
    link = read_link(token, s.signer.read_unsubscribe_token, BAD_LINK)
    if link.ref.is_legacy and link.subscriber is not None and not legacy_link_in_window(s, link.subscriber):
        abort(400, description=OLD_LINK)
    return link


def _gone() -> ResponseReturnValue:
    """Return the 200 page for a valid link whose subscriber is gone (RFC 8058 wants a 2xx)."""
    return page("gone.html", title=GONE_TITLE, message=GONE)


def _unsubscribe(subscriber: Subscriber, how: str) -> None:
    """Mark subscriber unsubscribed unless mail to it is already stopped (idempotent)."""
    if subscriber.status in _RECEIVING:
        services().subscribers.set_status(subscriber.email, subscriber.list, "unsubscribed",
                                          source=SuppressionSource.LINK, reason=how)
        log.info("%s unsubscribed from list %r (%s)", subscriber.email, subscriber.list, how)


@bp.get("/u/<token>")
def show(token: str) -> ResponseReturnValue:
    """Return the page that asks for confirmation; a GET alone changes nothing."""
    subscriber = _link(token).subscriber
    if subscriber is None:
        return _gone()
    if subscriber.status in _RECEIVING:
        return page("unsubscribe.html", subscriber=subscriber, token=token)
    return page("unsubscribed.html", subscriber=subscriber, token=token,
                can_resubscribe=subscriber.status == "unsubscribed")


@bp.post("/u/<token>")
@csrf_exempt    # RFC 8058: mail providers POST without cookies; the signed token is the credential
def act(token: str) -> ResponseReturnValue:
    """Unsubscribe (one-click or the page's button) or resubscribe; answer 200 with a page."""
    if request.form.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE:
        subscriber = _link(token).subscriber
        if subscriber is None:
            return _gone()
        _unsubscribe(subscriber, "one-click")
        return page("unsubscribed.html", subscriber=subscriber, token=token, can_resubscribe=False)
    # Anything other than the one-click body comes from our page's forms: check their CSRF token.
    check_csrf()
    subscriber = _link(token).subscriber
    action = request.form.get("action", "")
    if action not in ("unsubscribe", "resubscribe"):
        abort(400, description="Unknown action.")
    if subscriber is None:
        return _gone()
    if action == "unsubscribe":
        _unsubscribe(subscriber, "web page")
        status = "unsubscribed" if subscriber.status in _RECEIVING else subscriber.status
        return page("unsubscribed.html", subscriber=subscriber, token=token,
                    can_resubscribe=status == "unsubscribed")
    if subscriber.status == "unsubscribed":
        # The token came in a message sent to this address: its owner is the one asking.
        services().subscribers.set_status(subscriber.email, subscriber.list, "active",
                                          reason="resubscribed from the unsubscribe page")
        log.info("%s resubscribed to list %r", subscriber.email, subscriber.list)
    elif subscriber.status not in ("active",):
        abort(400, description="This address cannot be resubscribed from this page.")
    return page("resubscribed.html", subscriber=subscriber, token=token)
