"""Sign-up with double opt-in: the form, the confirmation email, and the confirm button."""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime, timedelta

from flask import Blueprint, abort, request, url_for
from flask.typing import ResponseReturnValue

from ..errors import NewsletterError, SubscriberError
from ..models import Subscriber, SubscriberStatus
from ..subscribers.addresses import address_key, mailbox_key, normalise_address
from ..subscribers.links import CONFIRMABLE, confirm_unchanged
from .confirm_mail import send_confirmation
from .context import Services, page, services
from .links import Link, read_link
from .ratelimit import SlidingWindowLimit
from .validate import clean_email_field, clean_name

log = logging.getLogger(__name__)

bp = Blueprint("signup", __name__)

HONEYPOT = "website"            # hidden from people, irresistible to form-filling bots
CONFIRM_MAX_AGE_DAYS = 7        # how long a confirmation link works
BAD_LINK = ("This confirmation link is not valid or has expired. "
            "Sign up again and we will send you a new one.")
USED_LINK = ("This confirmation link has been used already, or the subscription changed since it "
             "was sent. Nothing was changed. To subscribe, sign up again and use the new link.")
GONE = ("This confirmation link belongs to a sign-up that is no longer pending: the address is not "
        "on our list. Sign up again if you want to subscribe.")


@bp.get("/subscribe")
def form() -> ResponseReturnValue:
    """Return the sign-up form."""
    return page("subscribe.html", email="", name="", error=None)


@bp.post("/subscribe")
def submit() -> ResponseReturnValue:
    """Start a double opt-in; the answer is the same whatever state the address was in."""
    s = services()
    if request.form.get(HONEYPOT, ""):
        log.info("sign-up ignored: the honeypot field was filled (from %s)", request.remote_addr)
        return page("subscribe_sent.html", email="")
    email_text, name_text = request.form.get("email", ""), request.form.get("name", "")
    try:
        address = normalise_address(clean_email_field(email_text))
    except (ValueError, SubscriberError):
        return page("subscribe.html", 400, email=email_text[:300], name=name_text[:300],
                    error="Please enter a valid email address, like name@example.org.")
    try:
        name = clean_name(name_text)
    except ValueError as err:
        return page("subscribe.html", 400, email=email_text[:300], name="", error=str(err))
    if not s.limits.signup_client.hit(client_key(request.remote_addr)):
        abort(429, description="Too many sign-ups from your network. Please try again in an hour.")
    if _mailbox_allows(s.limits.signup_mailbox, address):
        # In the background: looking the address up, storing it and mailing it take time that
        # differs by case, and the answer must not tell a prober whether it was subscribed.
        s.jobs.submit(_start_opt_in, s, address, name)
    else:
        # Answer as usual: a different page would tell a prober something about this address.
        log.info("sign-up for %s not mailed: over the per-mailbox limit", address)
    return page("subscribe_sent.html", email=address)


def _mailbox_allows(limit: SlidingWindowLimit, address: str) -> bool:
    """Count one attempt for the address and for the mailbox it reaches; return False when over.

    victim+1@…, victim+2@… are different addresses but one inbox: the mailbox key (lower case,
    +tag removed) stops a flood of confirmation mail to it; the exact address has its own count.
    """
    return limit.hit("mailbox:" + mailbox_key(address)) and limit.hit("address:" + address_key(address))


def client_key(remote_addr: str | None) -> str:
    """Return the per-IP rate-limit key: the IPv4 address, or the /64 network of an IPv6 one."""
    try:
        ip = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return remote_addr or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # One IPv6 subscriber line gets a whole /64: counting single addresses would let a bot
        # rotate through billions of them.
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _start_opt_in(s: Services, address: str, name: str) -> None:
    """Record the address as unconfirmed when new and mail it a confirmation link when it needs one.

    Runs outside any request; failures are logged (BackgroundJobs logs anything unexpected).
    """
    subscriber = s.subscribers.get(address, s.list_name)
    if subscriber is None:
        subscriber = s.subscribers.add(address, name=name, list_name=s.list_name, status="unconfirmed")
    elif subscriber.status == "active":
        log.info("sign-up for %s: already subscribed, nothing sent", address)
        return
    elif subscriber.status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
        log.info("sign-up for %s: address is %s, nothing sent", address, subscriber.status)
        return
    # New, still unconfirmed, or unsubscribed and asking back in: it takes a confirmed click.
    # The token is made after the row was last written, so the row's next change voids it.
    assert subscriber.id is not None    # read from the database
    token = s.signer.confirm_token(subscriber.email, subscriber.list, subscriber_id=subscriber.id)
    try:
        send_confirmation(s.config, subscriber.email, f"{s.base_url}/confirm/{token}", CONFIRM_MAX_AGE_DAYS)
    except NewsletterError as err:
        # The visitor has had the usual page (it must not differ by address); the operator sees
        # the failure in the log, and a new sign-up sends a new link.
        log.error("could not send the confirmation to %s: %s", subscriber.email, err)


def _link(token: str) -> Link:
    """Return the Link of a confirm token; abort 400 when it is forged, expired or not ours."""
    signer = services().signer
    return read_link(token, lambda t: signer.read_confirm_token(t, CONFIRM_MAX_AGE_DAYS * 86400), BAD_LINK)


def _is_current(link: Link) -> bool:
    """Return True when the link was made after its subscriber's row last changed.

    A confirmation, an unsubscribe or any other change makes every older confirm link void: that
    is what makes each link single-use and useless once its address has unsubscribed.
    """
    assert link.found is not None and link.ref.issued_at is not None
    if link.ref.is_legacy and link.found.subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        return False    # see confirm(): old links never undo a leave
    return link.found.changed_at <= _newest_moment(link)


def _newest_moment(link: Link) -> datetime:
    """Return the latest row change a link still covers: its issue time (earlier releases stamped
    whole seconds, so for their links the rest of that second)."""
    assert link.ref.issued_at is not None
    if link.ref.is_legacy:
        return link.ref.issued_at + timedelta(microseconds=999_999)
    return link.ref.issued_at


def _gone() -> ResponseReturnValue:
    """Return the 200 page for a valid confirm link whose subscriber is no longer on the list."""
    return page("gone.html", title="Nothing to confirm", message=GONE)


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> ResponseReturnValue:
    """Return the page with the confirm button (link scanners that follow GETs confirm nothing)."""
    link = _link(token)
    subscriber = link.subscriber
    if subscriber is None:
        return _gone()
    if not _is_current(link):
        abort(400, description=USED_LINK)
    if subscriber.status == "active":
        return page("confirmed.html", subscriber=subscriber, unsubscribe_url=_unsubscribe_path(subscriber))
    return page("confirm.html", subscriber=subscriber, token=token)


@bp.post("/confirm/<token>")
def confirm(token: str) -> ResponseReturnValue:
    """Confirm the subscription (CSRF-checked form) and return the welcome page."""
    s = services()
    if not s.limits.confirm_client.hit(client_key(request.remote_addr)):
        abort(429, description="Too many confirmations from your network. Please try again in an hour.")
    link = _link(token)
    subscriber = link.subscriber
    if subscriber is None:
        return _gone()
    if not _mailbox_allows(s.limits.confirm_mailbox, subscriber.email):
        abort(429, description="Too many attempts for this address. Please try again in an hour.")
    if subscriber.status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
        abort(400, description="This address cannot be subscribed from here. Please write to us.")
    if subscriber.status == "active" and _is_current(link):
        return page("confirmed.html", subscriber=subscriber, unsubscribe_url=_unsubscribe_path(subscriber))
    assert subscriber.id is not None
    # Earlier releases' links carry whole seconds, too coarse to order a confirmation and an
    # unsubscribe in the same second: they may only confirm a pending sign-up, never undo a leave.
    states = (SubscriberStatus.UNCONFIRMED,) if link.ref.is_legacy else CONFIRMABLE
    if not confirm_unchanged(s.subscribers, subscriber.id, _newest_moment(link), states):
        abort(400, description=USED_LINK)
    log.info("%s confirmed the subscription to list %r", subscriber.email, subscriber.list)
    return page("confirmed.html", subscriber=subscriber, unsubscribe_url=_unsubscribe_path(subscriber))


def _unsubscribe_path(subscriber: Subscriber) -> str:
    """Return the link to subscriber's unsubscribe page."""
    token = services().signer.unsubscribe_token(subscriber.email, subscriber.list, subscriber_id=subscriber.id)
    return url_for("unsubscribe.show", token=token)
