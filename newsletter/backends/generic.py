"""Provider: the shape of an HTTP mail API (how a batch becomes a request and a reply becomes
results), which each API's shape extends; as it stands, the generic one-message-per-call endpoint
whose contract the README's "Delivery" states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import requests

from ..errors import ConfigError, DeliveryError
from ..models import Delivery, Recipient
from .base import MessageSource
from .payloads import Refusal, bodies, custom_headers, delivered, json_body, reply_text

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
