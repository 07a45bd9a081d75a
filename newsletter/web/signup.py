"""Sign-up with double opt-in: the form, the confirmation email, and the confirm button."""

from __future__ import annotations

import ipaddress
import logging

from flask import Blueprint, abort, request, url_for
from flask.typing import ResponseReturnValue

from ..errors import NewsletterError, SubscriberError
from ..models import Subscriber, SubscriberStatus
from ..subscribers.store import address_key, normalise_address
from .confirm_mail import send_confirmation
from .context import Services, page, services, subscriber_from_token
from .validate import clean_email_field, clean_name

log = logging.getLogger(__name__)

bp = Blueprint("signup", __name__)

HONEYPOT = "website"            # hidden from people, irresistible to form-filling bots
CONFIRM_MAX_AGE_DAYS = 7        # how long a confirmation link works
BAD_LINK = ("This confirmation link is not valid or has expired. "
            "Sign up again and we will send you a new one.")


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
    if not s.per_ip.hit(client_key(request.remote_addr)):
        abort(429, description="Too many sign-ups from your network. Please try again in an hour.")
    if s.per_address.hit(address_key(address)):
        # In the background: looking the address up, storing it and mailing it take time that
        # differs by case, and the answer must not tell a prober whether it was subscribed.
        s.jobs.submit(_start_opt_in, s, address, name)
    else:
        # Answer as usual: a different page would tell a prober something about this address.
        log.info("sign-up for %s not mailed: over the per-address limit", address)
    return page("subscribe_sent.html", email=address)


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
    token = s.signer.confirm_token(subscriber.email, subscriber.list)
    try:
        send_confirmation(s.config, subscriber.email, f"{s.base_url}/confirm/{token}", CONFIRM_MAX_AGE_DAYS)
    except NewsletterError as err:
        # The visitor has had the usual page (it must not differ by address); the operator sees
        # the failure in the log, and a new sign-up sends a new link.
        log.error("could not send the confirmation to %s: %s", subscriber.email, err)


def _subscriber(token: str) -> Subscriber:
    """Return the subscriber a confirm token names; abort 400 when it is forged, expired or unknown."""
    signer = services().signer
    return subscriber_from_token(token, lambda t: signer.read_confirm_token(t, CONFIRM_MAX_AGE_DAYS * 86400),
                                 BAD_LINK)


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> ResponseReturnValue:
    """Return the page with the confirm button (link scanners that follow GETs confirm nothing)."""
    subscriber = _subscriber(token)
    if subscriber.status == "active":
        return page("confirmed.html", subscriber=subscriber, unsubscribe_url=_unsubscribe_path(subscriber))
    return page("confirm.html", subscriber=subscriber, token=token)


@bp.post("/confirm/<token>")
def confirm(token: str) -> ResponseReturnValue:
    """Confirm the subscription (CSRF-checked form) and return the welcome page."""
    s = services()
    subscriber = _subscriber(token)
    if subscriber.status in ("unconfirmed", "unsubscribed"):
        s.subscribers.set_status(subscriber.email, subscriber.list, "active", reason="confirmed sign-up")
        log.info("%s confirmed the subscription to list %r", subscriber.email, subscriber.list)
    elif subscriber.status != "active":
        abort(400, description="This address cannot be subscribed from here. Please write to us.")
    return page("confirmed.html", subscriber=subscriber, unsubscribe_url=_unsubscribe_path(subscriber))


def _unsubscribe_path(subscriber: Subscriber) -> str:
    """Return the link to subscriber's unsubscribe page."""
    token = services().signer.unsubscribe_token(subscriber.email, subscriber.list)
    return url_for("unsubscribe.show", token=token)
