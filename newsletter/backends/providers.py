"""The shapes of the HTTP mail APIs: how a batch becomes a request and a reply becomes results."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

import requests

from ..errors import (
    ConfigError,
    DeliveryError,
    RecipientRejected,
    TransientDeliveryError,
)
from ..models import Delivery, Recipient
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
        """Return how to read a 4xx reply (other than 401, 403, 413 and 429)."""
        return Refusal(reply_text(response), about_recipients=True)


class Postmark(Provider):
    """Postmark /email/batch: up to 500 full messages a call, one result (ErrorCode) per message."""

    name, limit, default_url = "postmark", 500, "https://api.postmarkapp.com/email/batch"
    # ErrorCode -> what it means for the message (see Postmark's API error codes).
    REJECT = {300: "invalid email request", 406: "inactive recipient"}
    RETRY = {100: "maintenance", 429: "rate limit exceeded"}

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
        """Return one result per message from Postmark's array of {ErrorCode, Message, MessageID}."""
        try:
            items = response.json()
        except ValueError:
            items = None
        if not isinstance(items, list) or len(items) != len(chunk):
            raise ConfigError(f"postmark at {self.url}: unexpected reply to a batch of {len(chunk)}: "
                              f"{reply_text(response)} (check delivery.http.url)")
        results: list[Delivery | DeliveryError] = []
        refused: list[str] = []
        for r, item in zip(chunk, items):
            code = int(item.get("ErrorCode", -1))
            reply = f"{code} {item.get('Message', '')}".strip()
            if code == 0:
                results.append(Delivery(recipient=r.email, message_id=r.message_id,
                                        provider_id=str(item.get("MessageID", "")), reply=reply))
            elif code in self.REJECT:
                results.append(RecipientRejected(f"postmark refused {r.email}: {reply}", r.email, reply))
            else:
                if code not in self.RETRY and code >= 0:
                    refused.append(reply)     # sender signature, account or stream: not the address
                results.append(TransientDeliveryError(f"postmark did not send to {r.email}: {reply}",
                                                      r.email, reply))
        if refused and len(refused) == len(chunk):
            # Nothing went out and the reasons are the account's: stop the whole send.
            raise ConfigError(f"postmark at {self.url} refused the batch: {refused[0]}")
        return results

    def refusal(self, response: requests.Response, chunk: Sequence[Recipient]) -> Refusal:
        """Return how to read Postmark's 422: an address problem (300, 406) or a request problem."""
        try:
            code = int(response.json().get("ErrorCode", -1))
        except (ValueError, AttributeError, TypeError):
            code = -1
        return Refusal(reply_text(response), about_recipients=code in self.REJECT)


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
        """Return a Delivery per recipient: Mailgun queues the whole call under one id."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "id" not in body:
            raise ConfigError(f"mailgun at {self.url}: unexpected reply {reply_text(response)} "
                              "(check delivery.http.url and domain)")
        return delivered(chunk, str(body["id"]), str(body.get("message", "")))

    def refusal(self, response: requests.Response, chunk: Sequence[Recipient]) -> Refusal:
        """Return how to read Mailgun's 400: about an address ("to", "recipient") or about the request."""
        text = reply_text(response)
        about = response.status_code == 400 and bool(re.search(r"\bto\b|recipient|address", text, re.I))
        return Refusal(text, about_recipients=about)


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
        """Return which personalizations SendGrid's errors[].field names, if any."""
        try:
            errors = response.json().get("errors") or []
        except (ValueError, AttributeError):
            errors = []
        refusal = Refusal(reply_text(response))
        for err in errors if isinstance(errors, list) else []:
            fld = str(err.get("field") or "") if isinstance(err, dict) else ""
            m = re.match(r"personalizations\.(\d+)\.(to|cc|bcc)", fld)
            if m and int(m.group(1)) < len(chunk):
                refusal.rejected[int(m.group(1))] = f"{fld}: {err.get('message', '')}"
            elif fld.startswith("personalizations"):
                refusal.about_recipients = True
        return refusal


PROVIDERS: dict[str, type[Provider]] = {p.name: p for p in (Provider, Postmark, Mailgun, SendGrid)}
