"""The double opt-in email: builds it and hands it to the configured backend."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from jinja2 import Environment, PackageLoader, select_autoescape

from ..backends.base import make_backend
from ..config import Config
from ..errors import ConfigError, DeliveryError
from ..models import Delivery, Recipient, Rendered
from ..personalize.mime import check_header, encode_addr_spec, sender_domain
from ..render.placeholders import html_template, new_nonce, text_template, token
from .theme import make_theme
from .validate import language

log = logging.getLogger(__name__)

# A constant like a compiled regex: the templates ship inside the package (web/templates/mail_*,
# flat, so the package-data glob web/templates/* carries them).
_ENV = Environment(loader=PackageLoader("newsletter.web", "templates"),
                   autoescape=select_autoescape(["html"]), keep_trailing_newline=True)
ISSUE_ID = "confirm"            # what backends see as the "issue" of this message


class ConfirmationSource:
    """A MessageSource for the confirmation email: `build(recipient)` returns its bytes.

    The bodies hold tokens like an issue does, so a backend that fills them itself (an HTTP API
    that takes html and text) gets the same values as one that sends build()'s bytes.
    """

    def __init__(self, config: Config, max_age_days: int):
        self.config = config
        nonce = new_nonce()
        nl = config.newsletter
        values = {f: token(nonce, f) for f in ("email", "confirm_url")}
        ctx = {"nl": nl, "lang": language(nl.language), "theme": make_theme(nl.accent_color),
               "days": max_age_days, **values}
        subject = f"Confirm your subscription to {nl.name}"
        self.rendered = Rendered(
            issue_id=ISSUE_ID, subject=subject,
            preheader=f"One click and you will receive {nl.name}.",
            html=_ENV.get_template("mail_confirm.html").render(subject=subject, **ctx),
            text=_ENV.get_template("mail_confirm.txt").render(**ctx),
            nonce=nonce)
        self._html = html_template(self.rendered.html, nonce)
        self._text = text_template(self.rendered.text, nonce)

    def headers(self, recipient: Recipient) -> dict[str, str]:
        """Return From, To, Subject, Date, Message-ID (and Reply-To) for recipient."""
        nl = self.config.newsletter
        headers = {
            "From": nl.sender,
            # Only the bare address: whoever fills in the form may not be its owner, so no text
            # they typed (such as a name) goes into a message sent to someone else.
            "To": recipient.email,
            "Subject": self.rendered.subject,
            "Date": format_datetime(datetime.now(timezone.utc)),
            "Message-ID": recipient.message_id,
            # A reply to a robot's message: tells auto-responders not to answer it (RFC 3834).
            "Auto-Submitted": "auto-replied",
        }
        if nl.reply_to:
            headers["Reply-To"] = nl.reply_to
        return headers

    def build(self, recipient: Recipient) -> bytes:
        """Return the complete message for recipient (CRLF line ends); raises DeliveryError."""
        # max_line_length 76: set_content() wraps quoted-printable at the policy's length, and
        # RFC 2045 allows 76 characters (the default policy's 78 is for headers).
        msg = EmailMessage(policy=policy.default.clone(max_line_length=76))
        try:
            for key, value in self.headers(recipient).items():
                if key == "To":
                    # An internationalised domain travels in its IDNA form; a UTF-8 local part
                    # stays as it is (SMTPUTF8), which Address() would refuse to hold.
                    value = encode_addr_spec(check_header("To", value))
                msg[key] = value
        except (ValueError, TypeError, ConfigError) as err:
            raise DeliveryError(f"cannot build the confirmation for {recipient.email}: {err}",
                                recipient=recipient.email) from err
        msg.set_content(self._text.fill(recipient.values), cte="quoted-printable")
        msg.add_alternative(self._html.fill(recipient.values), subtype="html", cte="quoted-printable")
        utf8 = not recipient.email.isascii()
        return msg.as_bytes(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)


def send_confirmation(config: Config, email: str, confirm_url: str, max_age_days: int) -> Delivery:
    """Send the confirmation email through the configured backend; return its Delivery.

    Raises DeliveryError when the backend refuses it and ConfigError when the backend is misconfigured.
    """
    source = ConfirmationSource(config, max_age_days)
    recipient = Recipient(
        email=email,
        message_id=make_msgid(idstring="confirm", domain=sender_domain(config.newsletter.sender) or "localhost"),
        values={"email": email, "confirm_url": confirm_url})
    with make_backend(config) as backend:
        (result,) = backend.send(source, [recipient])
    if isinstance(result, DeliveryError):
        raise result
    log.info("sent a subscription confirmation to %s", email)
    return result
