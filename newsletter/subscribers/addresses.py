"""Email addresses and subscriber states as the store keeps them: one normal form, one key, known states."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from ..db import STATUSES
from ..errors import SubscriberError


def normalise_address(address: str) -> str:
    """Return the normalised form of an email address (domain lower-cased, IDNA, NFC); raises SubscriberError."""
    text = (address or "").strip()
    if not text:
        raise SubscriberError("empty email address")
    try:
        # No DNS lookups: an import of 100,000 rows must not hit the network or wait on resolvers.
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as err:
        raise SubscriberError(f"invalid email address {text!r}: {err}") from err


def address_key(address: str) -> str:
    """Return the case-insensitive key under which an address is unique in a list."""
    return address.lower()


def check_status(status: str) -> str:
    """Return status when it is a known subscriber state; raises SubscriberError."""
    if status not in STATUSES:
        raise SubscriberError(f"unknown subscriber status {status!r} (known: {', '.join(STATUSES)})")
    return status
