"""Per-subscriber placeholders that survive MJML and premailer: returns tokens, finds and fills them."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable, Mapping

# Only [A-Za-z0-9_]: premailer percent-encodes spaces and braces inside href/src, MJML and
# HTML escaping leave word characters alone, so the token reaches the final HTML byte for byte.
_FIELD = r"[a-z][a-z0-9_]*?"
_TOKEN = re.compile(r"NLT([0-9a-f]{16})_(" + _FIELD + r")_TLN")
ANY_TOKEN = re.compile(r"NLT[0-9a-f]{16}_[a-z0-9_]*?_TLN")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

# The values every message has; custom subscriber fields (CSV columns) may add more.
STANDARD_FIELDS = ("name", "email", "unsubscribe_url", "view_url")


def new_nonce() -> str:
    """Return a fresh per-issue nonce (16 lowercase hex characters)."""
    return secrets.token_hex(8)


def token(nonce: str, field: str) -> str:
    """Return the placeholder for field in the issue with this nonce; raises ValueError on a bad name."""
    if not _FIELD_NAME.match(field):
        raise ValueError(f"personalisation field {field!r} must match [a-z][a-z0-9_]*")
    return f"NLT{nonce}_{field}_TLN"


def field_name(column: str) -> str:
    """Return the token-safe name for a subscriber column ("First Name" -> "first_name")."""
    name = re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")
    if not name or not name[0].isalpha():
        name = "f_" + name
    return name


class Template:
    """A body split once at its tokens, so filling it per subscriber is a cheap join."""

    def __init__(self, body: str, nonce: str, escape: Callable[[str], str] | None = None):
        parts = _TOKEN.split(body)
        # split() with two groups yields [text, nonce, field, text, nonce, field, ..., text]
        self._texts: list[str] = parts[0::3]
        self._fields: list[str] = parts[2::3]
        foreign = [n for n in parts[1::3] if n != nonce]
        if foreign:
            raise ValueError(f"body holds tokens of another issue (nonce {foreign[0]})")
        self._escape = escape or (lambda s: s)
        self.fields: frozenset[str] = frozenset(self._fields)

    def fill(self, values: Mapping[str, str]) -> str:
        """Return the body with every token replaced (missing values become empty strings)."""
        esc = self._escape
        texts, fields = self._texts, self._fields
        out = [texts[0]]
        for i, f in enumerate(fields):
            out.append(esc(values.get(f, "")))
            out.append(texts[i + 1])
        return "".join(out)


def html_template(body: str, nonce: str) -> Template:
    """Return a Template that HTML-escapes values (for the HTML part)."""
    return Template(body, nonce, lambda s: html.escape(s, quote=True))


def text_template(body: str, nonce: str) -> Template:
    """Return a Template that inserts values as they are (for the plain-text part)."""
    return Template(body, nonce)


class TokenProxy:
    """Stands for the subscriber in templates: `subscriber.name` renders as the name's token."""

    def __init__(self, nonce: str):
        self._nonce = nonce

    def __getattr__(self, field: str) -> str:
        if field.startswith("_"):
            raise AttributeError(field)
        return token(self._nonce, field)

    def __getitem__(self, field: str) -> str:
        return token(self._nonce, field_name(field))
