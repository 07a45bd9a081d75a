"""Email addresses and subscriber states as the store keeps them: one normal form, one key, known states."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from ..db import STATUSES
from ..errors import SubscriberError


# RFC 5321 limits a path to 256 octets, so an address to 254; longer text is refused before
# the validator spends time on it (a form or CSV cell may hold megabytes).
MAX_ADDRESS = 254


def normalise_address(address: str) -> str:
    """Return the normalised form of an email address (domain lower-cased, IDNA, NFC); raises SubscriberError.

    The one address rule (email-validator, no DNS lookups), for the CLI, CSV imports and the web.
    """
    if not isinstance(address, str):
        raise SubscriberError(f"an email address must be text, got {type(address).__name__}")
    text = address.strip()
    if not text:
        raise SubscriberError("empty email address")
    if len(text) > MAX_ADDRESS:
        raise SubscriberError(f"invalid email address {text[:40]!r}…: longer than {MAX_ADDRESS} characters")
    try:
        # No DNS lookups: an import of 100,000 rows must not hit the network or wait on resolvers.
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as err:
        raise SubscriberError(f"invalid email address {text!r}: {err}") from err


def address_key(address: str) -> str:
    """Return the case-insensitive key under which an address is unique in a list."""
    return address.lower()


def mailbox_key(address: str) -> str:
    """Return the key of the mailbox an address delivers to: lower case, "+tag" removed.

    victim+1@example.org and Victim+2@example.org reach one inbox at most providers (subaddressing,
    RFC 5233); rate limits count them together so that nobody can flood one mailbox through tags.
    """
    local, _, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0].lower()}@{domain.lower()}"


def check_status(status: str) -> str:
    """Return status when it is a known subscriber state; raises SubscriberError."""
    if status not in STATUSES:
        raise SubscriberError(f"unknown subscriber status {status!r} (known: {', '.join(STATUSES)})")
    return status
