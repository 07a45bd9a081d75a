"""Unsubscribe links: RFC 8058 one-click POST, and a page with a button (then a way back)."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, request
from flask.typing import ResponseReturnValue

from ..models import Subscriber, SuppressionSource
from .context import page, services, subscriber_from_token
from .security import check_csrf, csrf_exempt

log = logging.getLogger(__name__)

bp = Blueprint("unsubscribe", __name__)

BAD_LINK = ("This unsubscribe link is not valid: it may have been cut or changed. "
            "Use the link from the most recent email you received.")
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"
# States an unsubscribe may move a subscriber out of; bounced and complained already stop mail.
_RECEIVING = frozenset({"active", "unconfirmed"})


def _subscriber(token: str) -> Subscriber:
    """Return the subscriber a signed unsubscribe token names; abort 400 when it is not one of ours."""
    return subscriber_from_token(token, services().signer.read_unsubscribe_token, BAD_LINK)


def _unsubscribe(subscriber: Subscriber, how: str) -> None:
    """Mark subscriber unsubscribed unless mail to it is already stopped (idempotent)."""
    if subscriber.status in _RECEIVING:
        services().subscribers.set_status(subscriber.email, subscriber.list, "unsubscribed",
                                          source=SuppressionSource.LINK, reason=how)
        log.info("%s unsubscribed from list %r (%s)", subscriber.email, subscriber.list, how)


@bp.get("/u/<token>")
def show(token: str) -> ResponseReturnValue:
    """Return the page that asks for confirmation; a GET alone changes nothing."""
    subscriber = _subscriber(token)
    if subscriber.status in _RECEIVING:
        return page("unsubscribe.html", subscriber=subscriber, token=token)
    return page("unsubscribed.html", subscriber=subscriber, token=token,
                can_resubscribe=subscriber.status == "unsubscribed")


@bp.post("/u/<token>")
@csrf_exempt    # RFC 8058: mail providers POST without cookies; the signed token is the credential
def act(token: str) -> ResponseReturnValue:
    """Unsubscribe (one-click or the page's button) or resubscribe; answer 200 with a page."""
    if request.form.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE:
        subscriber = _subscriber(token)
        _unsubscribe(subscriber, "one-click")
        return page("unsubscribed.html", subscriber=subscriber, token=token, can_resubscribe=False)
    # Anything other than the one-click body comes from our page's forms: check their CSRF token.
    check_csrf()
    subscriber = _subscriber(token)
    action = request.form.get("action", "")
    if action == "unsubscribe":
        _unsubscribe(subscriber, "web page")
        status = "unsubscribed" if subscriber.status in _RECEIVING else subscriber.status
        return page("unsubscribed.html", subscriber=subscriber, token=token,
                    can_resubscribe=status == "unsubscribed")
    if action == "resubscribe":
        if subscriber.status == "unsubscribed":
            # The token came in a message sent to this address: its owner is the one asking.
            services().subscribers.set_status(subscriber.email, subscriber.list, "active",
                                              reason="resubscribed from the unsubscribe page")
            log.info("%s resubscribed to list %r", subscriber.email, subscriber.list)
        elif subscriber.status not in ("active",):
            abort(400, description="This address cannot be resubscribed from this page.")
        return page("resubscribed.html", subscriber=subscriber, token=token)
    abort(400, description="Unknown action.")
