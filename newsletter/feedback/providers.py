"""Provider webhook payloads → Reports: Postmark, Mailgun and SendGrid (SES is in ses.py).

Each parser takes the JSON body (already authenticated by the web layer) and returns one Report
per recipient event; events that say nothing about bounces or complaints come back as OTHER (kept,
never acted on). When a failure carries an RFC 3463 code, the code decides hard, soft or blocked;
otherwise the provider's documented type does. Raises FeedbackError for a body of the wrong shape.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import FeedbackError
from ..models import FeedbackKind, SuppressionSource
from .codes import classify, enhanced_code, reply_code
from .report import Report, bare_id

K = FeedbackKind

# Postmark bounce Type (its "Bounce types" reference) → kind; anything unlisted is OTHER.
POSTMARK_TYPES = {
    "HardBounce": K.HARD_BOUNCE, "BadEmailAddress": K.HARD_BOUNCE,
    "SoftBounce": K.SOFT_BOUNCE, "Transient": K.DELAYED, "DnsError": K.SOFT_BOUNCE,
    "Blocked": K.BLOCKED, "DMARCPolicy": K.BLOCKED, "SpamNotification": K.BLOCKED,
    "VirusNotification": K.BLOCKED, "SpamComplaint": K.COMPLAINT,
}
# Mailgun "failed" events with severity "permanent", by reason (its event and webhook reference).
MAILGUN_REASONS = {"bounce": K.HARD_BOUNCE, "suppress-bounce": K.HARD_BOUNCE, "espblock": K.BLOCKED,
                   "old": K.SOFT_BOUNCE, "generic": K.SOFT_BOUNCE}
# SendGrid "dropped" reasons (its Event Webhook reference) that are about the address.
SENDGRID_DROPS = {"bounced address": K.HARD_BOUNCE, "invalid": K.HARD_BOUNCE}


def loads(body: bytes, provider: str) -> Any:
    """Return the JSON value of a webhook body; raises FeedbackError when it is not JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise FeedbackError(f"{provider} webhook: the body is not JSON: {err}", provider) from err


def _digest(value: Any) -> str:
    """Return a stable short hash of a JSON value (an event key when the event has no id)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:32]


def _failure(code: str, fallback: str, permanent: bool = True) -> str:
    """Return the kind of a failure: by its enhanced code when it has one, else the provider's."""
    return classify(code, permanent=permanent) if code else fallback


def postmark(event: Any) -> list[Report]:
    """Return the Report of one Postmark Bounce or SpamComplaint webhook (one JSON object)."""
    if not isinstance(event, dict):
        raise FeedbackError("postmark webhook: expected one JSON object", "postmark")
    record = str(event.get("RecordType", ""))
    kind = POSTMARK_TYPES.get(str(event.get("Type", "")), K.OTHER) if record in ("Bounce", "SpamComplaint") else K.OTHER
    details = str(event.get("Details") or "")
    code = reply_code(details)
    if kind in (K.HARD_BOUNCE, K.SOFT_BOUNCE):
        kind = _failure(code, kind)
    event_id = event.get("ID")
    key = f"postmark:{record}:{event_id}" if event_id not in (None, "") else f"postmark:{_digest(event)}"
    return [Report(kind, SuppressionSource.WEBHOOK, "postmark", key, email=str(event.get("Email") or ""),
                   provider_id=str(event.get("MessageID") or ""), code=code or str(event.get("TypeCode") or ""),
                   detail=" ".join(filter(None, (str(event.get("Description") or ""), details))))]


def mailgun(payload: Any) -> list[Report]:
    """Return the Report of one Mailgun webhook ({"signature": ..., "event-data": {...}})."""
    data = payload.get("event-data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise FeedbackError("mailgun webhook: no event-data object", "mailgun")
    event, status = str(data.get("event", "")), data.get("delivery-status") or {}
    status = status if isinstance(status, dict) else {}
    message = str(status.get("message") or "")
    code = str(status.get("enhanced-code") or "") or reply_code(message)
    if event == "failed":
        if data.get("severity") == "temporary":
            kind = K.DELAYED                   # Mailgun retries; a final "permanent" event follows
        else:
            kind = _failure(code, MAILGUN_REASONS.get(str(data.get("reason", "")), K.OTHER))
    elif event == "complained":
        kind = K.COMPLAINT
    else:
        kind = K.OTHER
    message_part = data.get("message")
    headers = message_part.get("headers") if isinstance(message_part, dict) else None
    mid = bare_id(str(headers.get("message-id") or "")) if isinstance(headers, dict) else ""
    key = f"mailgun:{data.get('id')}:{data.get('timestamp')}" if data.get("id") else f"mailgun:{_digest(data)}"
    detail = " ".join(filter(None, (str(data.get("reason") or ""), message, str(status.get("description") or ""))))
    return [Report(kind, SuppressionSource.WEBHOOK, "mailgun", key, email=str(data.get("recipient") or ""),
                   message_id=mid, provider_id=mid, code=code or str(status.get("code") or ""), detail=detail)]


def _sendgrid_kind(event: dict[str, Any], code: str) -> str:
    """Return the kind of one SendGrid event."""
    name = str(event.get("event", ""))
    if name == "bounce":
        # type "bounce" is a permanent refusal, "blocked" a block of the message (its reference).
        fallback = K.BLOCKED if str(event.get("type", "")).lower() == "blocked" else K.HARD_BOUNCE
        return _failure(code, fallback)
    if name == "dropped":
        return SENDGRID_DROPS.get(str(event.get("reason", "")).strip().lower(), K.OTHER)
    if name == "deferred":
        return K.DELAYED
    if name == "spamreport":
        return K.COMPLAINT
    return K.OTHER


def sendgrid(events: Any) -> list[Report]:
    """Return a Report per event of a SendGrid Event Webhook POST (a JSON array of events)."""
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise FeedbackError("sendgrid webhook: expected a JSON array of event objects", "sendgrid")
    reports = []
    for event in events:
        status = str(event.get("status") or "")
        code = enhanced_code(status) or reply_code(str(event.get("reason") or ""))
        key = f"sendgrid:{event['sg_event_id']}" if event.get("sg_event_id") else f"sendgrid:{_digest(event)}"
        reports.append(Report(
            _sendgrid_kind(event, code), SuppressionSource.WEBHOOK, "sendgrid", key,
            email=str(event.get("email") or ""), message_id=bare_id(str(event.get("smtp-id") or "")),
            provider_id=str(event.get("sg_message_id") or ""), code=code,
            detail=" ".join(filter(None, (str(event.get("event") or ""), str(event.get("reason") or ""))))))
    return reports
