"""Reply classes: what a transport's answer means for the message, its address and the whole run.

Every backend turns each reply into one models.ReplyClass and the DeliveryError of that class
(errors.py). SMTP replies are read by their RFC 3463 enhanced status code when they carry one
(the codes of IANA's "SMTP Enhanced Status Codes" registry), else by the basic code and the
command it answered (RFC 5321 §4.2.2-4.2.3), conservatively: a reply whose meaning for the
address is unclear never suppresses the address. HTTP APIs are read by their documented status
and error codes (backends/generic.py, postmark.py, providers.py). The words of a reply are never
read: they differ per server and language, and "relay denied" must not bounce a reader.
"""

from __future__ import annotations

import re
from enum import StrEnum

from ..errors import (
    AmbiguousDelivery,
    DeliveryError,
    PolicyRefusal,
    RecipientRejected,
    StopRun,
    TransientDeliveryError,
)
from ..models import ReplyClass

# "5.1.1" at the start of a reply's text (RFC 3463 §2: class.subject.detail, 1-3 digits each).
_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")

_ERRORS: dict[ReplyClass, type[DeliveryError]] = {
    ReplyClass.RECIPIENT: RecipientRejected,
    ReplyClass.TRANSIENT: TransientDeliveryError,
    ReplyClass.SENDER: StopRun,
    ReplyClass.FAILED: DeliveryError,
    ReplyClass.AMBIGUOUS: AmbiguousDelivery,
}


class Stage(StrEnum):
    """The SMTP command a reply answers (its meaning depends on it)."""

    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"
    END = "end of data"       # the reply to the message itself (after the final ".")


def error_for(reply_class: ReplyClass, message: str, recipient: str, reply: str,
              retry_after: float | None = None, *, one_message: bool = False) -> DeliveryError:
    """Return the DeliveryError that stands for reply_class (not DELIVERED) with its context;
    one_message: the reply was given to this message alone (its RCPT TO or end of DATA), so a
    SENDER-class refusal is a PolicyRefusal the circuit breaker weighs, not an immediate stop."""
    if reply_class is ReplyClass.TRANSIENT:
        return TransientDeliveryError(message, recipient, reply, retry_after=retry_after)
    if reply_class is ReplyClass.SENDER and one_message:
        return PolicyRefusal(message, recipient, reply)
    return _ERRORS[reply_class](message, recipient, reply)


def enhanced_code(text: str) -> tuple[int, int, int] | None:
    """Return the RFC 3463 enhanced status code (class, subject, detail) a reply's text starts with."""
    m = _ENHANCED.match(text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def classify_smtp(code: int, text: str, stage: Stage) -> ReplyClass:
    """Return the class of the SMTP reply code + text given to the command at stage.

    2xx delivered (or: go on), 4xx transient (RFC 5321 §4.2.1); a 5xx by its enhanced code
    when it has one with a defined subject, else by the basic code. Anything else (a reply the
    protocol does not allow there) stops the run: the server is not one we understand.
    """
    if 200 <= code < 300:
        return ReplyClass.DELIVERED
    if 400 <= code < 500:
        return ReplyClass.TRANSIENT
    if not 500 <= code < 600:
        return ReplyClass.SENDER
    enhanced = enhanced_code(text)
    if enhanced is not None and enhanced[0] == 5:
        found = _by_enhanced(enhanced[1], enhanced[2], stage)
        if found is not None:
            return found
    return _by_basic(code, stage)


def _by_enhanced(subject: int, detail: int, stage: Stage) -> ReplyClass | None:
    """Return the class of a permanent enhanced code 5.subject.detail, or None (X.0.X: undefined)."""
    about_recipient = stage in (Stage.RCPT, Stage.END)   # one recipient per transaction
    if stage is Stage.MAIL:
        return ReplyClass.SENDER          # whatever it says, it refused our MAIL FROM
    if subject == 1:                      # addressing status
        if detail in (7, 8):              # 5.1.7/5.1.8: the *sender's* address is bad
            return ReplyClass.SENDER
        return ReplyClass.RECIPIENT if about_recipient else ReplyClass.SENDER
    if subject == 2:                      # mailbox status
        if detail == 1 and about_recipient:
            return ReplyClass.RECIPIENT   # 5.2.1 mailbox disabled, not accepting messages
        if detail == 2:
            return ReplyClass.TRANSIENT   # 5.2.2 mailbox full: may empty (RFC 3463 §3.3)
        return ReplyClass.FAILED          # 5.2.3 too long for this mailbox, 5.2.x other
    if subject == 4:                      # network and routing: this message, not the address
        return ReplyClass.FAILED
    if subject == 6 and detail == 7 and stage is Stage.RCPT:
        return ReplyClass.FAILED          # 5.6.7 (RFC 6531): this non-ASCII address cannot go here
    if subject == 7 and detail in (13, 17, 18) and about_recipient:
        # 5.7.13 user account disabled (RFC 7372); 5.7.17/5.7.18 mailbox or domain owner has
        # changed (RFC 7293): the address no longer belongs to the reader who subscribed.
        return ReplyClass.RECIPIENT
    if subject in (3, 5, 6, 7):
        # mail system, protocol, content, security or policy: it would refuse everyone alike
        return ReplyClass.SENDER
    return None


def _by_basic(code: int, stage: Stage) -> ReplyClass:
    """Return the class of a permanent basic reply code without a usable enhanced code."""
    if stage is Stage.RCPT:
        if code in (550, 551, 553):       # mailbox unavailable, user not local, name not allowed
            return ReplyClass.RECIPIENT
        if code == 552:                   # RFC 5321 §4.5.3.1.10: treat as 452 on RCPT
            return ReplyClass.TRANSIENT
    # 554 (transaction failed), 500-504 (our syntax or sequence), and every 5xx after the
    # message: nothing says it is about the address, so stop rather than bounce.
    return ReplyClass.SENDER
