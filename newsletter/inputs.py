"""One rule per kind of text people give us, applied wherever it enters (CLI, CSV, web, config).

    name        a subscriber's name: at most MAX_NAME characters once whitespace is collapsed,
                no control or formatting characters (they would reach the To: header and terminals)
    list name   1 to MAX_LIST_NAME characters, no control or formatting characters, no space at
                either end (stored exactly as given, so the CLI and the database agree)
    field       a custom column (CSV, --field): a name like a list name but at most
                MAX_FIELD_NAME, a value of at most MAX_FIELD_VALUE characters; tabs and line
                breaks allowed in values
    columns     check_lengths(): every text value fits its database column and holds no NUL
                (PostgreSQL refuses both; SQLite would store them silently)

Issue ids have their rule in issues.py (`check_issue_id`), addresses in subscribers/addresses.py
(`normalise_address`, email-validator). Each check returns the cleaned value or raises InputError.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from sqlalchemy import Table

MAX_NAME = 200
MAX_LIST_NAME = 100
MAX_FIELD_NAME = 64
MAX_FIELD_VALUE = 1000

# Zero-width (non-)joiners are format characters that Persian, Indic scripts and emoji sequences
# need; every other format character (bidi overrides, BOM, soft hyphen…) can disguise a value.
_JOINERS = frozenset("\u200c\u200d")
_BREAKS = frozenset("\t\n\r")
# Cc control, Cf format, Cs lone surrogate (undecodable bytes), Co private use, Zl/Zp separators.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def _shown(value: str, limit: int = 40) -> str:
    """Return value as a short quoted literal for an error message (control characters escaped)."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def bad_character(value: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """Return the first character of value that no text we store may hold, or None.

    Refused: control characters (except those in allowed), format characters other than the
    zero-width joiners, lone surrogates, private-use characters and line/paragraph separators.
    """
    for ch in value:
        if ch in allowed or ch in _JOINERS:
            continue
        if ch.isascii() and " " <= ch <= "~":
            continue        # the common case, without a Unicode database lookup
        if unicodedata.category(ch) in _BAD_CATEGORIES:
            return ch
    return None


def _fail(kind: str, value: str, reason: str) -> InputError:
    """Return the InputError for value of kind breaking its rule."""
    return InputError(f"{kind} {_shown(value)} {reason}", kind=kind, reason=reason, value=value)


def _character_reason(ch: str) -> str:
    """Return the reason text for a refused character."""
    return f"contains a control or invisible character (U+{ord(ch):04X})"


def clean_name(value: object, kind: str = "name") -> str:
    """Return a subscriber's name with whitespace collapsed; raises InputError breaking the name rule.

    Tabs and line breaks (spreadsheet cells) become single spaces; any other control or format
    character is refused rather than dropped, so nothing the person typed is changed silently.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{kind} must be text, got {type(value).__name__}", kind=kind,
                         reason="must be text", value=value)
    ch = bad_character(value, _BREAKS)
    if ch is not None:
        raise _fail(kind, value, _character_reason(ch))
    name = " ".join(value.split())
    if len(name) > MAX_NAME:
        raise _fail(kind, value, f"is longer than {MAX_NAME} characters")
    return name


def check_list_name(value: object) -> str:
    """Return value when it is a valid list name; raises InputError (kind "list name")."""
    return _check_label(value, "list name", MAX_LIST_NAME)


def check_field_name(value: object) -> str:
    """Return value when it is a valid custom field name; raises InputError (kind "field")."""
    return _check_label(value, "field", MAX_FIELD_NAME)


def _check_label(value: object, kind: str, limit: int) -> str:
    """Return value when it is 1..limit characters, trimmed and free of refused characters."""
    if not isinstance(value, str):
        raise InputError(f"{kind} must be text, got {type(value).__name__}", kind=kind,
                         reason="must be text", value=value)
    if not value.strip():
        raise InputError(f"{kind} cannot be empty", kind=kind, reason="cannot be empty", value=value)
    ch = bad_character(value)
    if ch is not None:
        raise _fail(kind, value, _character_reason(ch))
    if value != value.strip():
        raise _fail(kind, value, "starts or ends with a space")
    if len(value) > limit:
        raise _fail(kind, value, f"is longer than {limit} characters")
    return value


def clean_field_value(key: str, value: object) -> str:
    """Return a custom field's value as stripped text; raises InputError (kind "field").

    Tabs and line breaks are kept (a note may span lines); other control characters are refused.
    """
    text = "" if value is None else value if isinstance(value, str) else str(value)
    ch = bad_character(text, _BREAKS)
    if ch is not None:
        raise InputError(f"field {key!r}: value {_shown(text)} {_character_reason(ch)}", kind="field",
                         reason=_character_reason(ch), value=text)
    text = text.strip()
    if len(text) > MAX_FIELD_VALUE:
        reason = f"is longer than {MAX_FIELD_VALUE} characters"
        raise InputError(f"field {key!r}: value {_shown(text)} {reason}", kind="field", reason=reason,
                         value=text)
    return text


def clean_fields(fields: Mapping[Any, Any] | None) -> dict[str, str]:
    """Return custom fields with checked names and values, empty values dropped; raises InputError."""
    out: dict[str, str] = {}
    for key, value in (fields or {}).items():
        name = str(key).strip()
        if not name:
            continue
        text = clean_field_value(check_field_name(name), value)
        if text:
            out[name] = text
    return out


def check_lengths(table: "Table", values: Mapping[str, Any]) -> None:
    """Return when every text value fits its column of table; raises InputError naming the column.

    The database's own limits, checked before writing: PostgreSQL refuses a value longer than its
    VARCHAR(n) and any NUL character, and in a batch that would undo every row with it.
    """
    from sqlalchemy import String     # here: the CLI's quick commands never load SQLAlchemy

    for key, value in values.items():
        if not isinstance(value, str) or key not in table.c:
            continue
        column = table.c[key]
        if "\x00" in value:
            raise _fail(key, value, "contains a NUL character")
        length = getattr(column.type, "length", None) if isinstance(column.type, String) else None
        if length is not None and len(value) > length:
            raise _fail(key, value, f"is longer than {length} characters (the database column's limit)")


def printable(value: str) -> str:
    """Return value with every refused character escaped (\\x1b, \\u202e), for terminal output."""
    if bad_character(value) is None:
        return value
    return "".join(ch if bad_character(ch) is None else ch.encode("unicode_escape").decode("ascii")
                   for ch in value)
