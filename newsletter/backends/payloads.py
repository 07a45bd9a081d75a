"""What every HTTP API shape needs: bodies filled or templated for a batch, headers split, replies read."""

from __future__ import annotations

import base64

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import requests

from ..errors import DeliveryError
from ..models import Delivery, Recipient, Rendered
from ..personalize.mime import html_escape
from ..render.placeholders import Template, html_template, text_template
from .base import MessageSource

# Headers every API takes as fields of its own; the rest travel as custom headers.
_FIELDS = frozenset({"From", "To", "Subject", "Reply-To", "Date"})
_HTML_SPECIAL = re.compile(r"[&<>\"']")


@dataclass
class Refusal:
    """How to read a 4xx reply: the recipients it refuses for good, by chunk index.

    A refusal that names no recipient is about the request (sender, domain, account, format):
    it would be the same for every batch, so the run stops and nobody is bounced.
    """

    reply: str
    rejected: dict[int, str] = field(default_factory=dict)   # chunk index -> reason


@lru_cache(maxsize=8)
def _templates(rendered: Rendered) -> tuple[Template, Template]:
    """Return the (html, text) templates of a render, split once however many batches use it."""
    return html_template(rendered.html, rendered.nonce), text_template(rendered.text, rendered.nonce)


def bodies(source: MessageSource, recipient: Recipient) -> tuple[str, str]:
    """Return (html, text) filled for one recipient."""
    html_t, text_t = _templates(source.rendered)
    return html_t.fill(recipient.values), text_t.fill(recipient.values)


def custom_headers(headers: dict[str, str]) -> dict[str, str]:
    """Return the headers an API takes as custom headers (Message-ID, List-*, ...)."""
    return {k: v for k, v in headers.items() if k not in _FIELDS}


_CREDENTIAL_HEADERS = ("Authorization", "X-Postmark-Server-Token", "X-Api-Key")


def reply_text(response: requests.Response) -> str:
    """Return the start of a reply body on one line, for messages, with any credential the request
    carried (an API key a server echoes back) replaced by [redacted]: secrets are never printed."""
    text = " ".join(response.text[:300].split())
    for secret in _credentials(response.request):
        text = text.replace(secret, "[redacted]")
    return text


def _credentials(request: requests.PreparedRequest | None) -> list[str]:
    """Return the secrets in request's credential headers (a Basic password decoded), longest first."""
    found: list[str] = []
    for name in _CREDENTIAL_HEADERS:
        value = (request.headers.get(name, "") if request is not None else "").strip()
        scheme, _, credential = value.partition(" ")
        if scheme.lower() == "basic" and credential:
            try:
                user_pass = base64.b64decode(credential, validate=True).decode("utf-8", "replace")
            except ValueError:
                user_pass = ""
            found += [credential, user_pass.partition(":")[2]]
        elif scheme.lower() == "bearer" and credential:
            found.append(credential)
        elif value:
            found.append(value)
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


@dataclass
class Templated:
    """One body for a whole batch in the provider's variable syntax, and each recipient's variables."""

    html: str
    text: str
    columns: list[tuple[str, str, bool]]      # (variable, field, HTML-escaped) per recipient variable
    rows: list[Mapping[str, str]]             # each recipient's values, in chunk order

    @property
    def variables(self) -> list[dict[str, str]]:
        """Return each recipient's variables as a fresh dict (variable -> value)."""
        return [{var: html_escape(v.get(f, "")) if esc else v.get(f, "") for var, f, esc in self.columns}
                for v in self.rows]


def templated(source: MessageSource, chunk: Sequence[Recipient], marker: Callable[[str], str]) -> Templated:
    """Return bodies where every value that differs within chunk is marker(variable).

    Values the same for the whole chunk (the view-online URL) are written in directly. A value
    that HTML escaping would change gets a second, escaped variable ("h_<field>") for the HTML,
    since the provider pastes values verbatim; all others are sent once ("v_<field>").
    """
    html_t, text_t = _templates(source.rendered)
    rows = [r.values for r in chunk]
    first = rows[0]
    differ, escaped_set = set(), set()
    for f in html_t.fields | text_t.fields:
        column = [v.get(f, "") for v in rows]
        if column.count(column[0]) != len(column):
            differ.add(f)
            # The special characters are single characters, so one search over the joined
            # values finds whether any value of the field has one.
            if f in html_t.fields and _HTML_SPECIAL.search("".join(column)):
                escaped_set.add(f)
    vh, vt = differ & html_t.fields, differ & text_t.fields
    escaped = sorted(escaped_set)
    raw = sorted((vh | vt) - escaped_set | (vt & escaped_set))
    html = html_t.fill({f: marker(f"h_{f}" if f in escaped else f"v_{f}") if f in vh else first.get(f, "")
                        for f in html_t.fields})
    text = text_t.fill({f: marker(f"v_{f}") if f in vt else first.get(f, "") for f in text_t.fields})
    columns = [(f"v_{f}", f, False) for f in raw] + [(f"h_{f}", f, True) for f in escaped]
    return Templated(html, text, columns, rows)


def split_headers(all_headers: list[dict[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Return the custom headers shared by the whole chunk and the names that differ per recipient."""
    first = all_headers[0]
    names = [k for k in first if k not in _FIELDS]
    vary = [n for n in names if any(h.get(n) != first[n] for h in all_headers)]
    return {k: first[k] for k in names if k not in vary}, vary


def json_body(data: Any) -> dict[str, Any]:
    """Return session.post arguments for a JSON body, encoded compactly as UTF-8."""
    return {"data": json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
            "headers": {"Content-Type": "application/json"}}


def delivered(chunk: Sequence[Recipient], provider_id: str, reply: str) -> list[Delivery | DeliveryError]:
    """Return one Delivery per recipient of a call the provider accepted whole."""
    # Positional: a thousand per call, and keywords cost a third more here.
    return [Delivery(r.email, r.message_id, provider_id, reply) for r in chunk]
