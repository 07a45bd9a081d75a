"""The HTTP mail APIs by name (PROVIDERS), and the shapes of the two that take one body with
per-recipient variables: Mailgun and SendGrid. The base shape is in generic.py, Postmark's in
postmark.py."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

import requests

from ..errors import AmbiguousDelivery, ConfigError, DeliveryError
from ..models import Delivery, Recipient
from .base import MessageSource
from .generic import Provider
from .payloads import Refusal, delivered, reply_text, split_headers, templated
from .postmark import Postmark
from .sendgrid_json import contact, personalizations

if TYPE_CHECKING:
    from ..config import HTTPSection


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
