"""Checks on everything a client sends: return the cleaned value or raise BadRequest / ValueError."""

from __future__ import annotations

import re

from ..errors import InputError
from ..inputs import MAX_NAME
from ..inputs import clean_name as _clean_name
from ..signing import is_canonical
from ..subscribers.addresses import MAX_ADDRESS

# Signed tokens are URL-safe base64 plus dots (itsdangerous); anything else is not ours.
_TOKEN = re.compile(r"[A-Za-z0-9_\-.]{8,512}\Z")
_LANG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*\Z")
_WHOLE = re.compile(r"[0-9]{1,9}\Z")      # ASCII digits only: str.isdigit() also takes "²"
MAX_PAGE = 100000       # the highest page number a list accepts (the API's paging says the same)

MAX_EMAIL = MAX_ADDRESS


def is_token(value: str) -> bool:
    """Return True when value has the shape of our signed tokens: dot-separated canonical base64url."""
    return bool(_TOKEN.match(value)) and is_canonical(value)


def page_number(raw: str | None, top: int = MAX_PAGE) -> int:
    """Return the page number in raw (a ?page= value) clamped to 1..top; 1 when missing or not a
    whole number. Pages forgive a bad value (the API refuses it with a 400 instead)."""
    if raw is None or not _WHOLE.match(raw):
        return 1
    return min(max(int(raw), 1), top)


def language(value: str) -> str:
    """Return value when it is a plausible BCP 47 language tag, else "en"."""
    return value if _LANG.match(value or "") else "en"


def clean_name(value: str) -> str:
    """Return the name cleaned by the one name rule (inputs.clean_name); raises ValueError with a
    sentence for the form."""
    try:
        return _clean_name(value)
    except InputError as err:
        if "longer" in err.reason:
            raise ValueError(f"Your name can have at most {MAX_NAME} characters.") from err
        raise ValueError("Your name contains characters that are not allowed.") from err


def mask_address(email: str) -> str:
    """Return the address with most of its local part hidden ("re…@example.org").

    Pages reached through a link show this: whoever sees a forwarded email and opens its link
    learns which mailbox it is about, not the address itself.
    """
    local, at, domain = email.rpartition("@")
    if not at:
        return "…"
    keep = 2 if len(local) > 4 else 1
    return f"{local[:keep]}…@{domain}"


def clean_email_field(value: str) -> str:
    """Return the stripped address text; raises ValueError when empty or too long."""
    value = value.strip()
    if not value:
        raise ValueError("Please enter your email address.")
    if len(value) > MAX_EMAIL:
        raise ValueError(f"An email address can have at most {MAX_EMAIL} characters.")
    return value
