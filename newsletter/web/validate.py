"""Checks on everything a client sends: return the cleaned value or raise BadRequest / ValueError."""

from __future__ import annotations

import re
import unicodedata

from ..signing import is_canonical

# Signed tokens are URL-safe base64 plus dots (itsdangerous); anything else is not ours.
_TOKEN = re.compile(r"[A-Za-z0-9_\-.]{8,512}\Z")
_LANG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*\Z")

MAX_EMAIL = 254     # RFC 5321's limit on a forward path
MAX_NAME = 100


def is_token(value: str) -> bool:
    """Return True when value has the shape of our signed tokens: dot-separated canonical base64url."""
    return bool(_TOKEN.match(value)) and is_canonical(value)


def language(value: str) -> str:
    """Return value when it is a plausible BCP 47 language tag, else "en"."""
    return value if _LANG.match(value or "") else "en"


def clean_name(value: str) -> str:
    """Return the name with surrounding and repeated whitespace collapsed; raises ValueError."""
    value = " ".join(value.split())
    if len(value) > MAX_NAME:
        raise ValueError(f"Your name can have at most {MAX_NAME} characters.")
    # Control and format characters have no place in a name and could reach mail headers.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") for c in value):
        raise ValueError("Your name contains characters that are not allowed.")
    return value


def clean_email_field(value: str) -> str:
    """Return the stripped address text; raises ValueError when empty or too long."""
    value = value.strip()
    if not value:
        raise ValueError("Please enter your email address.")
    if len(value) > MAX_EMAIL:
        raise ValueError(f"An email address can have at most {MAX_EMAIL} characters.")
    return value
