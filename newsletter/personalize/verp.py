"""VERP return paths: a per-message envelope sender that names the ledger row a bounce is about.

bounces.return_path is a template such as "bounces+{token}@example.org". The token is the
subscriber id and a short hash of the message's deterministic Message-ID, so a bounce sent to
that address (a DSN without the original headers, say) still finds its (issue, subscriber) row.
Pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
import re

from ..errors import ConfigError

PLACEHOLDER = "{token}"
_TOKEN = r"(\d+\.[0-9a-f]{16})"


def message_hash(message_id: str) -> str:
    """Return the 16 hex digits that tie a token to one Message-ID."""
    return hashlib.sha256(message_id.strip().encode("utf-8")).hexdigest()[:16]


def token(subscriber_id: int, message_id: str) -> str:
    """Return the VERP token "<subscriber id>.<hash of the Message-ID>" (ASCII, lower case)."""
    return f"{int(subscriber_id)}.{message_hash(message_id)}"


def check_template(template: str) -> None:
    """Return when template is a usable return path ("" = VERP off); raises ConfigError otherwise."""
    if not template:
        return
    local, at, domain = template.rpartition("@")
    if not at or PLACEHOLDER not in local or PLACEHOLDER in domain or not domain or not template.isascii():
        raise ConfigError(f"bounces.return_path: {template!r} must be an ASCII address whose local "
                          f"part holds {PLACEHOLDER}, e.g. \"bounces+{PLACEHOLDER}@example.org\"")


def return_path(template: str, subscriber_id: int | None, message_id: str) -> str:
    """Return the envelope sender for one message, or "" when VERP is off or the message has no
    subscriber (a test copy); raises ConfigError for a bad template."""
    if not template or subscriber_id is None or not message_id:
        return ""
    check_template(template)
    return template.replace(PLACEHOLDER, token(subscriber_id, message_id))


def token_in(template: str, address: str) -> str:
    """Return the token of address when it is a return path made from template, else ""."""
    if not template or PLACEHOLDER not in template:
        return ""
    head, _, tail = template.partition(PLACEHOLDER)
    pattern = re.compile(re.escape(head) + _TOKEN + re.escape(tail), re.I)
    match = pattern.fullmatch((address or "").strip().strip("<>"))
    return match.group(1).lower() if match else ""


def parse_token(value: str) -> tuple[int, str] | None:
    """Return (subscriber id, Message-ID hash) of a token, or None when it is not one."""
    match = re.fullmatch(_TOKEN, (value or "").strip().lower())
    if match is None:
        return None
    sid, _, digest = match.group(1).partition(".")
    return int(sid), digest
