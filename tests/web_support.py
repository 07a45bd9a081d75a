"""Helpers shared by the web tests: a config on a tmp folder, the app's stores, form tokens, mail."""

from __future__ import annotations

import contextlib
import email
import email.policy
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from flask import Flask
from mail_servers import SMTPTestServer

from newsletter.config import Config
from newsletter.ledger import Ledger, Outcome
from newsletter.signing import Signer
from newsletter.db import get_engine
from newsletter.subscribers.store import SubscriberStore
from config_support import NEWSLETTER, build_config

SECRET = "web-tests-secret-key-0123456789abcdef"
BASE_URL = "http://newsletter.test"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_config(root: Path, *, smtp_port: int = 25, base_url: str = BASE_URL,
                delivery: dict | None = None, **web: object) -> Config:
    """Return a Config whose database and state live under root and whose mail goes to smtp_port
    (or through the [delivery] table given)."""
    return build_config(
        root, newsletter={**NEWSLETTER, "base_url": base_url, "language": "en-GB",
                          "postal_address": "1 Test Street"},
        signing={"secret_env": "NEWSLETTER_SECRET_KEY"},
        delivery=delivery or {"backend": "smtp", "smtp": {"host": "127.0.0.1", "port": smtp_port, "timeout": 10}},
        web=dict(web))


def store(config: Config) -> SubscriberStore:
    """Return the SubscriberStore on config's database."""
    return SubscriberStore(get_engine(config))


def signer(config: Config) -> Signer:
    """Return the Signer the app uses for config."""
    return Signer.from_config(config)


def unsubscribe_token(config: Config, address: str, list_name: str = "default") -> str:
    """Return the unsubscribe token the mail to a stored subscriber carries (its opaque reference)."""
    sub = store(config).get(address, list_name)
    assert sub is not None, f"{address} is not on {list_name}"
    return signer(config).unsubscribe_token(sub.email, list_name, subscriber_id=sub.id)


def confirm_token(config: Config, address: str, list_name: str = "default") -> str:
    """Return a confirm token for a stored subscriber, made now (as the sign-up mail's link is)."""
    sub = store(config).get(address, list_name)
    assert sub is not None, f"{address} is not on {list_name}"
    return signer(config).confirm_token(sub.email, list_name, subscriber_id=sub.id)


class LogRecords(logging.Handler):
    """Collects the records of one logger, wherever the CLI's logging setup routed that logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured_logs(name: str = "newsletter.web") -> Iterator[list[logging.LogRecord]]:
    """Yield the list of records logged under name while the block runs (caplog misses them
    once `newsletter` has run in-process: its logging setup stops propagation to the root)."""
    handler, logger = LogRecords(), logging.getLogger(name)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def settle(app: Flask) -> None:
    """Wait until app has finished the sign-ups it queued (they are handled after the answer)."""
    assert app.extensions["newsletter"].jobs.wait_idle(timeout=30), "background sign-up still running"


def csrf_from(html: str) -> str:
    """Return the CSRF token embedded in a page's form; fails the test when there is none."""
    match = _CSRF.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


def status_of(config: Config, address: str, list_name: str = "default") -> str | None:
    """Return the subscriber status of address, or None when absent."""
    sub = store(config).get(address, list_name)
    return sub.status if sub else None


def mark_sent(config: Config, issue_id: str, list_name: str = "default") -> None:
    """Record issue_id as sent to every active subscriber of list_name through the real ledger."""
    ledger = Ledger(get_engine(config))
    ledger.plan(issue_id, list_name)
    claimed, _gone, _last = ledger.claim(issue_id, list_name, after_id=0, limit=10_000)
    ledger.record([Outcome(row_id=c.row_id, status="sent", message_id=f"<{c.row_id}@test>") for c in claimed])
    assert ledger.finish(issue_id, list_name) == "sent"


def parse(raw: bytes) -> email.message.EmailMessage:
    """Return raw message bytes parsed with the modern policy."""
    return email.message_from_bytes(raw, policy=email.policy.default)


def body_text(msg: email.message.EmailMessage, subtype: str = "plain") -> str:
    """Return the decoded text/<subtype> part of msg."""
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return part.get_content()


def mail_to(server: SMTPTestServer, address: str) -> list[email.message.EmailMessage]:
    """Return the parsed messages the test SMTP server accepted for address, oldest first."""
    with server.lock:
        return [r.message for r in server.messages if address in r.rcpt_tos]


def confirm_link(message: email.message.EmailMessage) -> str:
    """Return the confirmation URL in a confirmation email's plain-text part."""
    match = re.search(r"https?://\S+/confirm/[A-Za-z0-9_.\-]+", body_text(message))
    assert match, "no confirmation link in the message"
    return match.group(0)
