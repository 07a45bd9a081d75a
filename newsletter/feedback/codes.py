"""RFC 3463 enhanced status codes → what a failure says about the address (hard, soft, blocked).

Only codes that name the recipient's address as bad make a hard bounce; anything about the
sender, the content or policy is "blocked" and never suppresses anyone; the rest is soft.
"""

from __future__ import annotations

import re

from ..models import FeedbackKind

# "5.1.1", "4.2.2", "5.7.26": class.subject.detail (RFC 3463 section 2).
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# An SMTP reply line that carries an enhanced code right after the basic code (RFC 2034 section 4),
# possibly behind a "smtp;" type prefix as DSN Diagnostic-Code fields write it (RFC 3464 2.3.6).
_REPLY = re.compile(r"^\s*(?:smtp\s*;\s*)?([245]\d\d)[ -]+([245]\.\d{1,3}\.\d{1,3})\b", re.I)
_BASIC = re.compile(r"^\s*(?:smtp\s*;\s*)?([245]\d\d)\b", re.I)

# Permanent (5.x.x) codes that say the recipient address itself is bad (RFC 3463 section 3.2/3.3,
# RFC 7505 for 5.1.10): bad mailbox, bad system, bad syntax, moved, mailbox disabled.
# X.1.7 and X.1.8 are about the *sender's* address and are not listed.
HARD = frozenset({(1, 0), (1, 1), (1, 2), (1, 3), (1, 6), (1, 10), (2, 1)})
# Subjects that describe the message or our standing rather than the address: mail system (3),
# protocol (5), content (6), security or policy (7) (RFC 3463 sections 3.4, 3.6, 3.7, 3.8).
BLOCKING_SUBJECTS = frozenset({3, 5, 6, 7})


def enhanced_code(text: str) -> str:
    """Return the first enhanced status code in text ("5.1.1"), or "" when it holds none."""
    match = _ENHANCED.search(text or "")
    return ".".join(match.groups()) if match else ""


def reply_code(text: str) -> str:
    """Return the enhanced code an SMTP reply line carries after its basic code ("550 5.1.1 ..."), or ""."""
    match = _REPLY.match(text or "")
    return match.group(2) if match else ""


def basic_code(text: str) -> int | None:
    """Return the three-digit SMTP reply code text starts with (after an optional "smtp;"), or None."""
    match = _BASIC.match(text or "")
    return int(match.group(1)) if match else None


def classify(code: str, *, permanent: bool = True) -> str:
    """Return the FeedbackKind of a failure with the enhanced status code (may be "").

    permanent says whether the reporter gave up on the message (a DSN's Action: failed, a
    provider's "permanent"); a 4.x.x code or a delay is never hard. An unknown or missing code
    is soft: N of those in a row suppress (bounces.soft_bounce_limit), one never does.
    """
    match = _ENHANCED.fullmatch((code or "").strip())
    if match is None:
        return FeedbackKind.SOFT_BOUNCE
    klass, subject, detail = (int(g) for g in match.groups())
    if klass == 2:
        return FeedbackKind.OTHER                      # a success code: nothing failed
    if subject in BLOCKING_SUBJECTS:
        return FeedbackKind.BLOCKED
    if klass == 5 and permanent and (subject, detail) in HARD:
        return FeedbackKind.HARD_BOUNCE
    return FeedbackKind.SOFT_BOUNCE
