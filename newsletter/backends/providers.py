"""The shapes of the HTTP mail APIs: how a batch becomes a request and a reply becomes results."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

import requests

from ..errors import AmbiguousDelivery, ConfigError, DeliveryError
from ..models import Delivery, Recipient, ReplyClass
from .base import MessageSource
from .payloads import (
    Refusal,
    bodies,
    custom_headers,
    delivered,
    json_body,
    reply_text,
    split_headers,
    templated,
)
from .replies import error_for
from .sendgrid_json import contact, personalizations

if TYPE_CHECKING:
    from ..config import HTTPSection


class Provider:
    """One API's shape. Subclasses set name, limit and default_url, and build requests and read replies."""

    name = "generic"
    limit = 1                     # the generic endpoint takes one message per call
    default_url = ""

    def __init__(self, cfg: "HTTPSection", api_key: str, message_stream: str = ""):
        self.cfg, self.api_key = cfg, api_key
        self.url = cfg.url or self.default_url
        if not self.url:
            raise ConfigError(f"delivery.http.url: required for provider {self.name!r}")
        self.message_stream = message_stream

    def configure(self, session: requests.Session) -> None:
        """Put the authentication on the session."""
        if self.api_key:
            session.headers["Authorization"] = f"Bearer {self.api_key}"

    def request(self, source: MessageSource, chunk: Sequence[Recipient]) -> dict[str, Any]:
        """Return the keyword arguments of session.post for chunk."""
        (recipient,) = chunk
        headers = source.headers(recipient)
        html, text = bodies(source, recipient)
        extra = custom_headers(headers)
        extra.pop("Message-ID", None)
        if "Reply-To" in headers:
            extra["Reply-To"] = headers["Reply-To"]
        return json_body({"to": headers["To"], "from": headers["From"], "subject": headers["Subject"],
                          "html": html, "text": text, "headers": extra, "message_id": recipient.message_id})

    def accepted(self, response: requests.Response, chunk: Sequence[Recipient]) -> list[Delivery | DeliveryError]:
        """Return the results of a 2xx reply."""
        try:
            body = response.json()
        except ValueError:
            body = None
        provider_id = str(body.get("id") or body.get("message_id") or "") if isinstance(body, dict) else ""
        return delivered(chunk, provider_id, f"{response.status_code} {response.reason}")

    def refusal(self, response: requests.Response, chunk: Sequence[Recipient]) -> Refusal:
        """Return how to read a 4xx reply (other than 401, 403, 404, 405, 406, 413, 415 and 429).

        The generic shape's contract (README, "Delivery"): 422 refuses this one recipient for
        good; any other 4xx is about the request, so the run stops.
        """
        text = reply_text(response)
        return Refusal(text, {0: text} if response.status_code == 422 and len(chunk) == 1 else {})


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


class Mailgun(Provider):
    """Mailgun /messages: up to 1,000 recipients a call, one body with %recipient.x% variables."""

    name, limit = "mailgun", 1000

    def __init__(self, cfg: "HTTPSection", api_key: str, message_stream: str = ""):
        if not cfg.url and not cfg.domain:
            raise ConfigError("delivery.http.domain: required for provider 'mailgun' (or set delivery.http.url)")
        self.default_url = f"https://api.mailgun.net/v3/{cfg.domain}/messages"
        super().__init__(cfg, api_key, message_stream)

    def configure(self, session: requests.Session) -> None:
        """Use HTTP basic auth with the user "api"."""
        session.auth = ("api", self.api_key)

    def request(self, source: MessageSource, chunk: Sequence[Recipient]) -> dict[str, Any]:
        """Return form fields: the body once, a `to` per recipient, and recipient-variables."""
        t = templated(source, chunk, lambda var: f"%recipient.{var}%")
        all_headers = [source.headers(r) for r in chunk]
        shared, vary = split_headers(all_headers)
        first = all_headers[0]
        subjects = {h["Subject"] for h in all_headers}
        data: list[tuple[str, str]] = [("from", first["From"])]
        # One comma-separated `to` (Mailgun takes lists); names with commas are quoted by the source.
        data.append(("to", ", ".join(h["To"] for h in all_headers)))
        data.append(("subject", first["Subject"] if len(subjects) == 1 else "%recipient.subject%"))
        data += [("text", t.text), ("html", t.html)]
        if "Reply-To" in first:
            data.append(("h:Reply-To", first["Reply-To"]))
        data += [(f"h:{k}", v) for k, v in shared.items()]
        data += [(f"h:{k}", f"%recipient.hdr_{k}%") for k in vary]
        variables = {}
        for r, h, row in zip(chunk, all_headers, t.variables):
            row.update({f"hdr_{k}": h.get(k, "") for k in vary})
            if len(subjects) > 1:
                row["subject"] = h["Subject"]
            variables[r.email] = row
        data.append(("recipient-variables", json.dumps(variables, ensure_ascii=False)))
        # multipart/form-data, as Mailgun's own examples send: URL-encoding a megabyte of
        # recipient variables character by character would cost more than building them.
        return {"files": [(k, (None, v.encode("utf-8"), "text/plain; charset=utf-8")) for k, v in data]}

    def accepted(self, response: requests.Response, chunk: Sequence[Recipient]) -> list[Delivery | DeliveryError]:
        """Return a Delivery per recipient: Mailgun queues the whole call under one id.

        A 2xx without that id is not a reply Mailgun gives: the messages may or may not have
        been queued (a proxy answering for it?), so they are ambiguous.
        """
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "id" not in body:
            reply = f"{response.status_code} {reply_text(response)}"
            return [AmbiguousDelivery(f"mailgun at {self.url}: unexpected reply {reply} (check "
                                      "delivery.http.url and domain); it may have queued the message",
                                      r.email, reply) for r in chunk]
        return delivered(chunk, str(body["id"]), str(body.get("message", "")))

    def refusal(self, response: requests.Response, chunk: Sequence[Recipient]) -> Refusal:
        """Return how to read Mailgun's 4xx: always about the request.

        Mailgun documents 400 as "Bad Request - Often missing a required parameter" and gives
        no per-recipient code; its replies name a parameter in words ("'from' parameter is not
        a valid address"), which we do not read. Addresses it will not deliver to are dropped
        and reported later by its events, never by the sending call.
        """
        return Refusal(reply_text(response))


class SendGrid(Provider):
    """SendGrid v3 /mail/send: up to 1,000 personalizations a call, one body with substitutions."""

    name, limit, default_url = "sendgrid", 1000, "https://api.sendgrid.com/v3/mail/send"

    def request(self, source: MessageSource, chunk: Sequence[Recipient]) -> dict[str, Any]:
        """Return JSON: the content once, and a personalization (to, substitutions, headers) each."""
        key = f"NLS{source.rendered.nonce[:8]}"
        t = templated(source, chunk, lambda var: f"{key}_{var}_SLN")
        all_headers = [source.headers(r) for r in chunk]
        shared, vary = split_headers(all_headers)
        first = all_headers[0]
        same_subject = len({h["Subject"] for h in all_headers}) == 1
        body: dict[str, Any] = {
            "from": contact(*parseaddr(first["From"])),
            "subject": first["Subject"],
            # SendGrid wants text/plain first, then text/html.
            "content": [{"type": "text/plain", "value": t.text}, {"type": "text/html", "value": t.html}],
        }
        if "Reply-To" in first:
            body["reply_to"] = contact(*parseaddr(first["Reply-To"]))
        if shared:
            body["headers"] = shared
        people = personalizations(chunk, all_headers, t, key, vary, same_subject)
        # Everything but the personalizations once, through json; those spliced in front. Each
        # part is encoded on its own: the personalizations are mostly ASCII, which encodes as a
        # plain copy, where one string joined with a non-ASCII body would be transcoded whole.
        rest = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        data = b"".join((b'{"personalizations":[', people.encode("utf-8"), b"],", rest[1:].encode("utf-8")))
        return {"data": data, "headers": {"Content-Type": "application/json"}}

    def accepted(self, response: requests.Response, chunk: Sequence[Recipient]) -> list[Delivery | DeliveryError]:
        """Return a Delivery per recipient; SendGrid names the call by its X-Message-Id header."""
        return delivered(chunk, response.headers.get("X-Message-Id", ""),
                          f"{response.status_code} {response.reason}")

    def refusal(self, response: requests.Response, chunk: Sequence[Recipient]) -> Refusal:
        """Return the recipients SendGrid's 400 refuses, read from its errors[].field.

        SendGrid's v3 errors name the JSON field at fault. When every error names the address
        of a personalization ("personalizations.3.to.0.email") those addresses are refused;
        when any error names something else (from, content, a header, the account) the
        request is at fault and nobody is refused.
        """
        try:
            errors = response.json().get("errors") or []
        except (ValueError, AttributeError):
            errors = []
        refusal = Refusal(reply_text(response))
        if response.status_code != 400 or not isinstance(errors, list) or not errors:
            return refusal
        for err in errors:
            fld = str(err.get("field") or "") if isinstance(err, dict) else ""
            m = re.fullmatch(r"personalizations\.(\d+)\.(?:to|cc|bcc)(?:\.\d+(?:\.email)?)?", fld)
            if not m or int(m.group(1)) >= len(chunk):
                return Refusal(refusal.reply)
            refusal.rejected[int(m.group(1))] = f"{fld}: {err.get('message', '')}"
        return refusal


PROVIDERS: dict[str, type[Provider]] = {p.name: p for p in (Provider, Postmark, Mailgun, SendGrid)}
