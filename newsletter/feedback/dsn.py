"""Bounce and complaint messages from a mailbox → Reports: DSNs (RFC 3464) and ARF (RFC 5965).

Which addresses failed, and whether for good or only delayed, comes from flufl.bounce (RFC 3464
DSNs and the non-standard formats of common MTAs); the per-recipient Status and Diagnostic-Code,
the ARF fields and the returned original headers are read with Python's email package. Each
report is tied to its message by the original Message-ID, or by a VERP token in the address the
report was sent to (bounces.return_path).
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import hashlib
from email.message import Message
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

from ..models import FeedbackKind, SuppressionSource
from ..personalize import verp
from .codes import classify, enhanced_code, reply_code
from .report import Report, bare_id

K = FeedbackKind
# ARF Feedback-Type values (RFC 5965 section 7.3) that are a complaint about our mail.
COMPLAINT_TYPES = frozenset({"abuse", "fraud"})
# Headers that carry the address a report was delivered to (where a VERP token shows up).
_DELIVERED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


def _original_headers(msg: Message) -> Message | None:
    """Return the headers of the returned original message (message/rfc822 or text/rfc822-headers)."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        elif kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True) or b""
            return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    return None


def _verp_token(msg: Message, template: str) -> str:
    """Return the VERP token of the address the report was delivered to, or ""."""
    if not template:
        return ""
    for name in _DELIVERED_TO:
        for _display, address in getaddresses(msg.get_all(name, [])):
            found = verp.token_in(template, address)
            if found:
                return found
    return ""


def _recipient_fields(msg: Message) -> dict[str, tuple[str, str]]:
    """Return {address: (enhanced status, diagnostic)} from the DSN's per-recipient blocks."""
    fields: dict[str, tuple[str, str]] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload()[1:]:          # the first block is per-message (RFC 3464 2.2)
            status = enhanced_code(str(block.get("Status", "")))
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
            for name in ("Final-Recipient", "Original-Recipient"):
                value = str(block.get(name, ""))
                address = parseaddr(value.split(";", 1)[-1])[1].lower()
                if address:
                    fields.setdefault(address, (status or reply_code(diagnostic), diagnostic))
    return fields


def _report_id(msg: Message, raw: bytes) -> str:
    """Return what identifies a report message for good: its Message-ID, else a hash of its bytes."""
    return bare_id(str(msg.get("Message-ID", ""))) or hashlib.sha256(raw).hexdigest()[:32]


def dsn_reports(msg: Message, raw: bytes, template: str = "") -> list[Report]:
    """Return a Report per failed or delayed recipient of a bounce message ([] when it is none)."""
    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return []
    original = _original_headers(msg)
    mid = bare_id(str(original.get("Message-ID", ""))) if original is not None else ""
    token, fields, rid = _verp_token(msg, template), _recipient_fields(msg), _report_id(msg, raw)
    out = []
    for address_bytes, failed in [(a, True) for a in sorted(permanent)] + [(a, False) for a in sorted(temporary)]:
        address = address_bytes.decode("ascii", "replace")
        code, diagnostic = fields.get(address.lower(), ("", ""))
        kind = classify(code, permanent=True) if failed else K.DELAYED
        out.append(Report(kind, SuppressionSource.DSN, "mailbox", f"mail:{rid}:{address.lower()}",
                          email=address, message_id=mid, verp_token=token, code=code,
                          detail=diagnostic or ("failed" if failed else "delayed")))
    return out


def arf_reports(msg: Message, raw: bytes, template: str = "") -> list[Report]:
    """Return the Report of an ARF feedback report (multipart/report; report-type=feedback-report)."""
    fields = None
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            fields = payload[0] if isinstance(payload, list) and payload else None
            break
    if fields is None:
        return []
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    original = _original_headers(msg)
    mid = bare_id(str(original.get("Message-ID", ""))) if original is not None else ""
    recipient = parseaddr(str(fields.get("Original-Rcpt-To", "")))[1]
    if not recipient and original is not None:
        recipient = parseaddr(str(original.get("To", "")))[1]
    kind = K.COMPLAINT if feedback_type in COMPLAINT_TYPES else K.OTHER
    agent = " ".join(str(fields.get("User-Agent", "")).split())
    return [Report(kind, SuppressionSource.ARF, "mailbox", f"mail:{_report_id(msg, raw)}:{recipient.lower()}",
                   email=recipient, message_id=mid, verp_token=_verp_token(msg, template),
                   code=feedback_type, detail=f"feedback report ({feedback_type or 'no type'}) from {agent or 'a mailbox provider'}")]


def reports_in(raw: bytes, template: str = "") -> list[Report]:
    """Return the Reports in one message's bytes: an ARF report, else a bounce, else [] (not a report)."""
    msg = email.message_from_bytes(raw)
    if msg.get_content_type() == "multipart/report" and \
            str(msg.get_param("report-type", "")).lower() == "feedback-report":
        return arf_reports(msg, raw, template)
    return dsn_reports(msg, raw, template)
