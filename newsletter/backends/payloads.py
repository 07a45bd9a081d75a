"""What every HTTP API shape needs: bodies filled or templated for a batch, headers split, replies read."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import requests

from ..errors import DeliveryError
from ..mime import html_escape
from ..models import Delivery, Recipient, Rendered
from ..tokens import Template, html_template, text_template
from .base import MessageSource

# Headers every API takes as fields of its own; the rest travel as custom headers.
_FIELDS = frozenset({"From", "To", "Subject", "Reply-To", "Date"})
_HTML_SPECIAL = re.compile(r"[&<>\"']")


@dataclass
class Refusal:
    """How to read a 4xx reply: which recipients it names, or whether it is about recipients at all."""

    reply: str
    rejected: dict[int, str] = field(default_factory=dict)   # chunk index -> reason
    about_recipients: bool = False


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


def reply_text(response: requests.Response) -> str:
    """Return the start of a reply body on one line, for messages."""
    return " ".join(response.text[:300].split())


@dataclass
class Templated:
    """One body for a whole batch in the provider's variable syntax, and each recipient's variables."""

    html: str
    text: str
    variables: list[dict[str, str]]


def templated(source: MessageSource, chunk: Sequence[Recipient], marker: Callable[[str], str]) -> Templated:
    """Return bodies where every value that differs within chunk is marker(variable).

    Values the same for the whole chunk (the view-online URL) are written in directly. A value
    that HTML escaping would change gets a second, escaped variable ("h_<field>") for the HTML,
    since the provider pastes values verbatim; all others are sent once ("v_<field>").
    """
    html_t, text_t = _templates(source.rendered)
    rows = [r.values for r in chunk]
    first = rows[0]

    def varying(fields: frozenset[str]) -> set[str]:
        return {f for f in fields if any(v.get(f, "") != first.get(f, "") for v in rows)}

    vh, vt = varying(html_t.fields), varying(text_t.fields)
    escaped = sorted(f for f in vh if any(_HTML_SPECIAL.search(v.get(f, "")) for v in rows))
    raw = sorted((vh | vt) - set(escaped) | (vt & set(escaped)))
    html = html_t.fill({f: marker(f"h_{f}" if f in escaped else f"v_{f}") if f in vh else first.get(f, "")
                        for f in html_t.fields})
    text = text_t.fill({f: marker(f"v_{f}") if f in vt else first.get(f, "") for f in text_t.fields})
    variables = []
    for v in rows:
        row = {f"v_{f}": v.get(f, "") for f in raw}
        for f in escaped:
            row[f"h_{f}"] = html_escape(v.get(f, ""))
        variables.append(row)
    return Templated(html, text, variables)


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
    return [Delivery(recipient=r.email, message_id=r.message_id, provider_id=provider_id, reply=reply)
            for r in chunk]
