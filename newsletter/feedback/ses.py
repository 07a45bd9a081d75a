"""Amazon SES notifications inside Amazon SNS messages → Reports.

An SNS POST is a JSON message whose Type is Notification, SubscriptionConfirmation or
UnsubscribeConfirmation; a Notification's Message is SES's JSON (notificationType or, for event
publishing, eventType: Bounce, Complaint, DeliveryDelay, Delivery, ...). Bounce types and
sub-types follow SES's "Amazon SNS notification contents" reference.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import FeedbackError
from ..models import FeedbackKind, SuppressionSource
from .codes import classify, enhanced_code
from .report import Report, bare_id

K = FeedbackKind
# Transient bounce sub-types: the message (size, content) or the mailbox for now, never the address.
TRANSIENT_SUBTYPES = {"MailboxFull": K.SOFT_BOUNCE, "MessageTooLarge": K.BLOCKED,
                      "ContentRejected": K.BLOCKED, "AttachmentRejected": K.BLOCKED}
# Permanent sub-types where SES did not even try: the address is on a suppression list.
SUPPRESSED_SUBTYPES = frozenset({"Suppressed", "OnAccountSuppressionList"})


def sns_message(body: bytes) -> dict[str, Any]:
    """Return the SNS message of a POST body; raises FeedbackError when it is not an SNS message."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise FeedbackError(f"ses webhook: the body is not JSON: {err}", "ses") from err
    if not isinstance(message, dict) or not isinstance(message.get("Type"), str):
        raise FeedbackError("ses webhook: not an Amazon SNS message (no Type)", "ses")
    return message


def _bounce_kind(bounce: dict[str, Any], recipient: dict[str, Any]) -> tuple[str, str]:
    """Return (kind, enhanced code) of one bounced recipient."""
    code = enhanced_code(str(recipient.get("status") or ""))
    kind_of_bounce, subtype = str(bounce.get("bounceType", "")), str(bounce.get("bounceSubType", ""))
    if kind_of_bounce == "Permanent":
        if subtype in SUPPRESSED_SUBTYPES:
            return K.HARD_BOUNCE, code
        return (classify(code) if code else K.HARD_BOUNCE), code
    if kind_of_bounce == "Transient":
        fallback = TRANSIENT_SUBTYPES.get(subtype, K.SOFT_BOUNCE)
        return (classify(code, permanent=False) if code and fallback == K.SOFT_BOUNCE else fallback), code
    return K.SOFT_BOUNCE, code                     # "Undetermined": SES could not tell


def _ids(mail: dict[str, Any]) -> tuple[str, str]:
    """Return (our Message-ID header, SES's message id) of a notification's mail object."""
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    mid = str(common.get("messageId") or "")
    if not mid:
        for header in mail.get("headers") or []:
            if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
                mid = str(header.get("value") or "")
    return bare_id(mid), str(mail.get("messageId") or "")


def reports(message: dict[str, Any]) -> list[Report]:
    """Return a Report per recipient of an SNS Notification carrying an SES notification.

    Other SNS message types, and notifications that are not SES JSON (the "Successfully
    validated SNS topic" note), give no reports. Raises FeedbackError for SES JSON of the wrong shape.
    """
    if message.get("Type") != "Notification":
        return []
    try:
        ses = json.loads(str(message.get("Message", "")))
    except ValueError:
        return []
    if not isinstance(ses, dict):
        return []
    kind_name = str(ses.get("notificationType") or ses.get("eventType") or "")
    mail = ses.get("mail") if isinstance(ses.get("mail"), dict) else {}
    mid, ses_id = _ids(mail)
    sns_id = str(message.get("MessageId") or "")

    def report(kind: str, email: str, event: dict[str, Any], code: str = "", detail: str = "") -> Report:
        """Return the Report for one recipient of this notification."""
        key = f"ses:{event.get('feedbackId') or sns_id}:{email.lower()}"
        return Report(kind, SuppressionSource.WEBHOOK, "ses", key, email=email, message_id=mid,
                      provider_id=ses_id, code=code, detail=detail)

    out: list[Report] = []
    try:
        if kind_name == "Bounce":
            bounce = ses["bounce"]
            for r in bounce["bouncedRecipients"]:
                kind, code = _bounce_kind(bounce, r)
                detail = f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')} {r.get('diagnosticCode') or ''}"
                out.append(report(kind, str(r["emailAddress"]), bounce, code, detail.strip()))
        elif kind_name == "Complaint":
            complaint = ses["complaint"]
            feedback = str(complaint.get("complaintFeedbackType") or "")
            kind = K.OTHER if feedback == "not-spam" else K.COMPLAINT
            for r in complaint["complainedRecipients"]:
                out.append(report(kind, str(r["emailAddress"]), complaint, "", feedback or "complaint"))
        elif kind_name == "DeliveryDelay":
            delay = ses["deliveryDelay"]
            for r in delay["delayedRecipients"]:
                out.append(report(K.DELAYED, str(r["emailAddress"]), {"feedbackId": f"delay-{sns_id}"},
                                  enhanced_code(str(r.get("status") or "")), str(delay.get("delayType") or "")))
        else:
            for email in mail.get("destination") or []:
                out.append(report(K.OTHER, str(email), {}, "", kind_name or "notification"))
    except (KeyError, TypeError, AttributeError) as err:
        raise FeedbackError(f"ses webhook: a {kind_name} notification of the wrong shape ({err})", "ses") from err
    return out
