"""Rendered issue × subscriber → one finished message: headers, unsubscribe links, MIME bytes."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Any

from .. import issues
from ..errors import ConfigError
from ..models import Recipient, Rendered, Subscriber
from ..render.merge_eval import MergeEvaluator
from ..render.placeholders import field_name, html_template, text_template
from ..signing import Signer
from . import verp
from .dkim import DKIMSigner
from .mime import (
    CRLF,
    QPTemplate,
    check_header,
    display_address,
    encode_phrase,
    encode_unstructured,
    format_address,
    html_escape,
    sender_domain,
)

if TYPE_CHECKING:
    from ..config import Config

ONE_CLICK = "List-Unsubscribe=One-Click"
SAMPLE_NAME, SAMPLE_EMAIL = "Sample Reader", "reader@example.com"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LABEL_UNSAFE = re.compile(r"[^a-z0-9-]+")


def message_id(issue_id: str, list_name: str, email: str, domain: str) -> str:
    """Return the deterministic Message-ID "<issue.digest@domain>" of (issue, list, address)."""
    return _MessageIds(issue_id, list_name, domain)(email)


class _MessageIds:
    """message_id() with the per-issue parts prepared once (it runs for every subscriber)."""

    def __init__(self, issue_id: str, list_name: str, domain: str):
        # SHA-256 of (issue, list, address): the per-issue prefix is hashed once and copied.
        self._prefix = hashlib.sha256(f"{issue_id}\n{list_name}\n".encode("utf-8"))
        left = _ID_UNSAFE.sub("-", issue_id).strip(".-")[:40] or "issue"
        self._head, self._tail = f"<{left}.", f"@{domain}>"

    def __call__(self, email: str) -> str:
        """Return the Message-ID for email (case-insensitive: one subscriber, one id)."""
        h = self._prefix.copy()
        h.update(email.lower().encode("utf-8"))
        return self._head + h.hexdigest()[:32] + self._tail


def list_id(config: "Config", list_name: str, domain: str) -> tuple[str, str]:
    """Return the List-Id (RFC 2919) as (description, id): from newsletter.list_id, else (name, label.domain)."""
    nl = config.newsletter
    if nl.list_id:
        if "<" in nl.list_id:
            description, _, ident = nl.list_id.partition("<")
            return description.strip(), ident.rstrip(">").strip()
        return nl.name, nl.list_id.strip()
    label = _LABEL_UNSAFE.sub("-", list_name.lower()).strip("-") or "list"
    return nl.name, f"{label}.{domain}"


class MessageFactory:
    """Builds each subscriber's message from an issue rendered once (implements backends' MessageSource).

    Everything constant (From, List-Id, the MIME skeleton, the encoded body text between tokens)
    is made here, once; build() only encodes the per-subscriber values and joins bytes.
    """

    def __init__(self, rendered: Rendered, config: "Config", *, list_name: str, test: bool = False,
                 signer: Signer | None = None):
        nl = config.newsletter
        self.rendered, self.config, self.list_name, self.test = rendered, config, list_name, test
        self.signer = signer or Signer.from_config(config)
        self.dkim = DKIMSigner.from_config(config)
        sender_name, self.sender = parseaddr(check_header("From", nl.sender))
        if "@" not in self.sender:
            raise ConfigError(f"newsletter.sender: {nl.sender!r} is not 'Name <address@domain>'")
        self.domain = sender_domain(self.sender)
        reply_name, reply_addr = parseaddr(check_header("Reply-To", nl.reply_to)) if nl.reply_to else ("", "")
        if nl.reply_to and "@" not in reply_addr:
            raise ConfigError(f"newsletter.reply_to: {nl.reply_to!r} is not an address")
        self._return_path = config.bounces.return_path
        verp.check_template(self._return_path)
        self.base_url = nl.base_url.rstrip("/")
        self.view_url = issues.archive_url(self.base_url, rendered.issue_id)
        self._unsub_prefix = f"{self.base_url}/u/"
        self._field_names: dict[Any, str] = {}     # subscriber column -> token field name
        # The render's merge fields (`subscriber.name or 'there'` …), evaluated per subscriber.
        self._merge = MergeEvaluator(rendered.merge_fields)
        # A test send goes to the same few addresses again and again: a fresh Message-ID each run
        # keeps mail clients from hiding it as a duplicate of the previous test.
        id_salt = f".test-{secrets.token_hex(4)}" if test else ""
        subject = ("[TEST] " if test else "") + rendered.subject
        self._message_id = _MessageIds(rendered.issue_id + id_salt, list_name, self.domain)
        self._subject = text_template(check_header("Subject", subject), rendered.nonce)
        self._subject_fixed = subject if not self._subject.fields else None
        list_phrase, list_ident = list_id(config, list_name, self.domain)
        check_header("List-Id", list_phrase + list_ident)
        self._list_id = f"{list_phrase} <{list_ident}>" if list_phrase else f"<{list_ident}>"
        self._mailto = f"mailto:{reply_addr or self.sender}?subject=unsubscribe"
        # Every header headers() returns, in order: the per-recipient ones are filled in a copy.
        self._api_headers = {"From": display_address(sender_name, self.sender)}
        if nl.reply_to:
            self._api_headers["Reply-To"] = display_address(reply_name, reply_addr)
        self._api_headers.update({"To": "", "Subject": "", "Date": "", "Message-ID": "",
                                  "List-Id": self._list_id, "List-Unsubscribe": "",
                                  "List-Unsubscribe-Post": ONE_CLICK})
        try:
            self._text = QPTemplate(rendered.text, rendered.nonce)
            self._html = QPTemplate(rendered.html, rendered.nonce, html_escape)
        except ValueError as err:
            raise ConfigError(f"issue {rendered.issue_id}: {err}") from err
        self._boundary = f"=_nl_{secrets.token_hex(12)}"    # "=_" never occurs in QP text
        self._from_line = f"From: {format_address('From', sender_name, self.sender)}\r\n"
        tail = []
        if nl.reply_to:
            tail.append(f"Reply-To: {format_address('Reply-To', reply_name, reply_addr)}")
        # The description is a phrase (quoted or encoded words), the <id> always plain ASCII.
        phrase = encode_phrase(list_phrase)
        tail.append(f"List-Id: {phrase} <{list_ident}>" if phrase else f"List-Id: <{list_ident}>")
        self._tail_head = CRLF.join(tail) + CRLF
        self._mime_head = (f"List-Unsubscribe-Post: {ONE_CLICK}\r\nMIME-Version: 1.0\r\n"
                           f'Content-Type: multipart/alternative;\r\n boundary="{self._boundary}"\r\n'
                           "\r\n").encode("ascii")
        b = self._boundary
        self._text_head = (f"--{b}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii")
        self._html_head = (f"\r\n--{b}\r\nContent-Type: text/html; charset=\"utf-8\"\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii")
        self._end = f"\r\n--{b}--\r\n".encode("ascii")
        self._date = (0, "")

    # -- per subscriber -------------------------------------------------------------------

    def recipient(self, subscriber: Subscriber) -> Recipient:
        """Return the Recipient for subscriber: its Message-ID and the values its tokens take.

        Raises ConfigError when the name or address holds CR or LF (they would reach the To header)
        and RenderError when a merge field fails for this subscriber.
        """
        return self.recipient_for(subscriber.email, subscriber.name, subscriber.fields, subscriber.id)

    def recipient_for(self, email: str, name: str, fields: Mapping[str, Any] | None,
                      subscriber_id: int | None = None) -> Recipient:
        """Return recipient() for a subscriber given by its columns (the send loop's rows); raises ConfigError."""
        name = name or ""
        joined = email + name
        if "\r" in joined or "\n" in joined:
            # Refused here, the one subscriber fails; refused while sending, the whole batch would.
            check_header("To", email)
            check_header("To", name)
        values: dict[str, str] = {}
        if fields:
            names = self._field_names
            for key, value in fields.items():
                token = names.get(key)
                if token is None:
                    token = names[key] = field_name(str(key))
                values[token] = value if type(value) is str else "" if value is None else str(value)
        values["name"] = name
        values["email"] = email
        # The link names the subscriber's row by an opaque reference, never the address; a test
        # copy to someone not on the list (no id) gets a link that says so when opened.
        values["unsubscribe_url"] = self._unsub_prefix + self.signer.unsubscribe_token(
            email, self.list_name, subscriber_id=subscriber_id)
        values["view_url"] = self.view_url
        if self._merge:
            values.update(self._merge(values))
        return Recipient(email, self._message_id(email), values, subscriber_id)

    def return_path(self, recipient: Recipient) -> str:
        """Return the VERP envelope sender for recipient (bounces.return_path), or "" for the From
        address: test copies and recipients without a subscriber id never get one."""
        if self.test:
            return ""
        return verp.return_path(self._return_path, recipient.subscriber_id, recipient.message_id)

    def bodies(self, recipient: Recipient) -> tuple[str, str]:
        """Return recipient's (HTML, text) bodies as text, tokens filled (the HTML part escaped)."""
        rendered = self.rendered
        return (html_template(rendered.html, rendered.nonce).fill(recipient.values),
                text_template(rendered.text, rendered.nonce).fill(recipient.values))

    def subject(self, recipient: Recipient) -> str:
        """Return the subject line for recipient (with "[TEST] " in front for a test send)."""
        if self._subject_fixed is not None:
            return self._subject_fixed
        return check_header("Subject", self._subject.fill(recipient.values))

    def unsubscribe_header(self, recipient: Recipient) -> str:
        """Return the List-Unsubscribe value: the one-click https URL, then the mailto fallback."""
        return self._list_unsubscribe(check_header("List-Unsubscribe", recipient.values.get("unsubscribe_url", "")))

    def _list_unsubscribe(self, url: str) -> str:
        """Return the List-Unsubscribe value for an unsubscribe URL already checked for line breaks."""
        return f"<{url}>, <{self._mailto}>" if url else f"<{self._mailto}>"

    def headers(self, recipient: Recipient) -> dict[str, str]:
        """Return the message's headers as readable text (for HTTP APIs); raises ConfigError on CR/LF."""
        values, email, mid = recipient.values, recipient.email, recipient.message_id
        name, url = values.get("name", ""), values.get("unsubscribe_url", "")
        # This runs for every recipient of an API batch: one look for line breaks in all the
        # per-recipient values, and the header-by-header checks (that name the header) only
        # when there is one.
        joined = name + email + mid + url
        if "\r" in joined or "\n" in joined:
            check_header("To", name)
            check_header("To", email)
            self.subject(recipient)
            check_header("Message-ID", mid)
            check_header("List-Unsubscribe", url)
        out = self._api_headers.copy()
        out["To"] = display_address(name, email)
        out["Subject"] = self.subject(recipient)
        out["Date"] = self._now()
        out["Message-ID"] = mid
        out["List-Unsubscribe"] = self._list_unsubscribe(url)
        return out

    def build(self, recipient: Recipient) -> bytes:
        """Return the complete message for recipient (CRLF line ends, DKIM-signed when configured).

        Raises ConfigError when a header value holds CR or LF or DKIM signing fails.
        """
        values = recipient.values
        to = format_address("To", values.get("name", ""), recipient.email)
        subject = encode_unstructured("Subject", self.subject(recipient))
        unsub = self.unsubscribe_header(recipient).replace(", ", ",\r\n ")
        head = (f"{self._from_line}To: {to}\r\nSubject: {subject}\r\nDate: {self._now()}\r\n"
                f"Message-ID: {check_header('Message-ID', recipient.message_id)}\r\n"
                f"{self._tail_head}List-Unsubscribe: {unsub}\r\n")
        message = b"".join((head.encode("utf-8"), self._mime_head,
                            self._text_head, self._text.fill(values),
                            self._html_head, self._html.fill(values), self._end))
        return self.dkim.sign(message) if self.dkim else message

    def _now(self) -> str:
        """Return the Date header value for this second (formatted once a second, not per message)."""
        now = int(time.time())
        cached = self._date
        if cached[0] != now:
            cached = self._date = (now, formatdate(now, usegmt=True))
        return cached[1]


def sample_message(rendered: Rendered, config: "Config", list_name: str, **kwargs: Any) -> bytes:
    """Return the message a sample subscriber ("Sample Reader" <reader@example.com>) would get."""
    return sample_preview(rendered, config, list_name, **kwargs)[0]


def sample_preview(rendered: Rendered, config: "Config", list_name: str,
                   **kwargs: Any) -> tuple[bytes, str, str]:
    """Return what the sample subscriber ("Sample Reader" <reader@example.com>) would get: the
    message bytes, and its HTML and text bodies filled (for preview.html and preview.txt).

    Raises ConfigError or RenderError as MessageFactory does."""
    factory = MessageFactory(rendered, config, list_name=list_name, **kwargs)
    recipient = factory.recipient(Subscriber(email=SAMPLE_EMAIL, name=SAMPLE_NAME, list=list_name))
    html, text = factory.bodies(recipient)
    return factory.build(recipient), html, text
