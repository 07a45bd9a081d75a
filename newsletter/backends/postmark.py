"""Postmark's /email/batch shape: one complete message per recipient, one result (ErrorCode) per
message, matched back to its recipient."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

import requests

from ..errors import AmbiguousDelivery, DeliveryError
from ..models import Delivery, Recipient, ReplyClass
from .base import MessageSource
from .generic import Provider
from .payloads import Refusal, bodies, custom_headers, json_body, reply_text
from .replies import error_for


class Postmark(Provider):
    """Postmark /email/batch: up to 500 full messages a call, one result (ErrorCode) per message."""

    name, limit, default_url = "postmark", 500, "https://api.postmarkapp.com/email/batch"
    # ErrorCode -> reply class, from Postmark's "API error codes" page. 406 "Inactive recipient":
    # Postmark itself suppressed the address after a hard bounce or a spam complaint. 300
    # "Invalid email request" says this message's fields are wrong, not that the address is
    # bad: the message fails (and the run stops when every message of a call has it). Codes
    # not listed here (400 sender signature not found, 401 not confirmed, 405 not allowed to
    # send, 412 account pending, ...) are about the account or the sender: the run stops.
    CLASSES = {0: ReplyClass.DELIVERED, 406: ReplyClass.RECIPIENT, 300: ReplyClass.FAILED,
               100: ReplyClass.TRANSIENT, 429: ReplyClass.TRANSIENT}

    def configure(self, session: requests.Session) -> None:
        """Put the server token on the session."""
        session.headers["X-Postmark-Server-Token"] = self.api_key
        session.headers["Accept"] = "application/json"

    def request(self, source: MessageSource, chunk: Sequence[Recipient]) -> dict[str, Any]:
        """Return a JSON array with one complete message per recipient (Postmark has no merge fields)."""
        messages = []
        for r in chunk:
            h = source.headers(r)
            html, text = bodies(source, r)
            msg = {"From": h["From"], "To": h["To"], "Subject": h["Subject"], "HtmlBody": html,
                   "TextBody": text, "Headers": [{"Name": k, "Value": v} for k, v in custom_headers(h).items()]}
            if "Reply-To" in h:
                msg["ReplyTo"] = h["Reply-To"]
            if self.message_stream:
                msg["MessageStream"] = self.message_stream
            messages.append(msg)
        return json_body(messages)

    def accepted(self, response: requests.Response, chunk: Sequence[Recipient]) -> list[Delivery | DeliveryError]:
        """Return one result per message from Postmark's array of {ErrorCode, Message, MessageID, To}.

        A reply with fewer results than messages (or none readable) leaves the messages it does
        not answer ambiguous: Postmark may have sent them.
        """
        try:
            items = response.json()
        except ValueError:
            items = None
        items = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
        matched = _match_results(chunk, items)
        codes = [_error_code(item) if item is not None else None for item in matched]
        every_300 = all(code == 300 for code in codes)
        results: list[Delivery | DeliveryError] = []
        for r, item, code in zip(chunk, matched, codes):
            if item is None:
                results.append(AmbiguousDelivery(f"postmark at {self.url}: the reply to a batch of {len(chunk)} "
                                                 f"has no result for {r.email}; it may have been sent", r.email,
                                                 f"no result in the reply: {reply_text(response)}"))
                continue
            reply = f"{code} {item.get('Message', '')}".strip()
            kind = ReplyClass.SENDER if every_300 else self.CLASSES.get(code, ReplyClass.SENDER)
            if kind is ReplyClass.DELIVERED:
                results.append(Delivery(r.email, r.message_id, str(item.get("MessageID", "")), reply))
            else:
                results.append(error_for(kind, f"postmark did not send to {r.email}: ErrorCode {reply}",
                                         r.email, reply))
        return results

    def refusal(self, response: requests.Response, chunk: Sequence[Recipient]) -> Refusal:
        """Return how to read Postmark's 422 to a batch call: about the request, never an address."""
        return Refusal(reply_text(response))


def _error_code(item: dict[str, Any]) -> int:
    """Return a Postmark result's ErrorCode, or -1 when it has none that reads as a number."""
    try:
        return int(item.get("ErrorCode", -1))
    except (TypeError, ValueError):
        return -1


def _match_results(chunk: Sequence[Recipient], items: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """Return the result for each message of chunk: by position when the counts agree, else by
    the address in each result's To (a result whose address is not unique matches nothing)."""
    if len(items) == len(chunk):
        return list(items)
    by_address: dict[str, dict[str, Any] | None] = {}
    for item in items:
        address = parseaddr(str(item.get("To", "")))[1].lower()
        by_address[address] = None if address in by_address else item
    wanted = [r.email.lower() for r in chunk]
    unique = {a for a in wanted if wanted.count(a) == 1}
    return [by_address.get(a) if a in unique else None for a in wanted]
