"""One contract for every backend: accepted, rejected, deferred then accepted, bad credentials.

Each case runs against a real server: aiosmtpd for smtp, a local HTTP server playing each API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from newsletter.backends.base import Backend, make_backend
from newsletter.errors import ConfigError, RecipientRejected, StopRun, TransientDeliveryError
from newsletter.models import Delivery, Subscriber
from newsletter.personalize.message import MessageFactory
from newsletter.render.placeholders import ANY_TOKEN

from mail_servers import DeferFirst, HTTPMailAPIServer, SMTPTestServer, accept_all, make_certs
from personalize_support import SECRET, make_config, rendered_issue

KINDS = ["smtp", "postmark", "mailgun", "sendgrid", "generic"]
API_KEY = "test-api-key"
PEOPLE = [Subscriber(email="ann@example.com", name="Example, Ann"),
          Subscriber(email="bob@example.com", name="Bob Ørsted"),
          Subscriber(email="cat@example.com", name="Cat <Admin> & Co")]


@dataclass
class Harness:
    """Starts the server for one kind of backend and builds configs, backends and messages for it."""

    kind: str
    tmp_path: Path
    servers: list[Any] = field(default_factory=list)

    def serve(self, reply_for=accept_all, **kwargs: Any):
        if self.kind == "smtp":
            server = SMTPTestServer(reply_for, **kwargs).start()
        else:
            server = HTTPMailAPIServer(self.kind, api_key=API_KEY, reply_for=reply_for, **kwargs).start()
        self.servers.append(server)
        return server

    def config(self, server, **overrides: Any):
        if self.kind == "smtp":
            delivery = {"backend": "smtp", "smtp": server.smtp_config(**overrides)}
        else:
            delivery = {"backend": "http", "http": server.http_config(**overrides)}
        delivery["backoff_seconds"] = 0.01
        return make_config(self.tmp_path, delivery=delivery)

    def backend(self, server, **overrides: Any) -> Backend:
        backend = make_backend(self.config(server, **overrides))
        backend.open()
        return backend

    def factory(self, server) -> MessageFactory:
        return MessageFactory(rendered_issue(), self.config(server), list_name="default")

    def delivered(self, server) -> list[dict[str, Any]]:
        """Return what reached the server as dicts: to, subject, text, html, headers."""
        if self.kind != "smtp":
            return list(server.messages)
        out = []
        for received in server.messages:
            msg = received.message
            out.append({"to": received.rcpt_tos[0], "subject": str(msg["Subject"]),
                        "text": msg.get_body(("plain",)).get_content(),
                        "html": msg.get_body(("html",)).get_content(),
                        "headers": {k: str(v) for k, v in msg.items()}})
        return out


@pytest.fixture(params=KINDS)
def harness(request, tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    monkeypatch.setenv("TEST_MAIL_API_KEY", API_KEY)
    h = Harness(request.param, tmp_path)
    yield h
    for server in h.servers:
        server.stop()


def test_accepted(harness):
    server = harness.serve()
    factory = harness.factory(server)
    recipients = [factory.recipient(s) for s in PEOPLE]
    with harness.backend(server) as backend:
        results = backend.send(factory, recipients)
    assert [type(r) for r in results] == [Delivery] * 3
    assert [(r.recipient, r.message_id) for r in results] == [(x.email, x.message_id) for x in recipients]
    got = {m["to"]: m for m in harness.delivered(server)}
    assert sorted(got) == sorted(p.email for p in PEOPLE)
    for recipient, person in zip(recipients, PEOPLE):
        m = got[person.email]
        url = recipient.values["unsubscribe_url"]
        assert f"Unsubscribe: {url}" in m["text"] and f'href="{url}"' in m["html"]
        assert f"Hello {person.name}," in m["text"]
        assert not ANY_TOKEN.search(m["text"] + m["html"] + m["subject"])
        headers = {k.lower(): v for k, v in m["headers"].items()}
        assert headers["list-unsubscribe"].startswith(f"<{url}>")
        assert headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
        assert headers["message-id"] == recipient.message_id
        assert m["subject"] == "Weekly: the news"
    assert "Hello Cat &lt;Admin&gt; &amp; Co," in got["cat@example.com"]["html"]


def test_rejected(harness):
    server = harness.serve(lambda rcpt: 550 if rcpt == "bob@example.com" else 250)
    factory = harness.factory(server)
    recipients = [factory.recipient(s) for s in PEOPLE]
    with harness.backend(server) as backend:
        results = backend.send(factory, recipients)
    if harness.kind == "mailgun":
        # Mailgun's sending call names no refused recipient (its 400 is "often missing a required
        # parameter"): the refusal is the request's, so the run stops and nobody is bounced.
        assert [type(r) for r in results] == [StopRun] * 3 and harness.delivered(server) == []
        assert len(server.calls) == 1                      # never halved into single recipients
        return
    assert isinstance(results[0], Delivery) and isinstance(results[2], Delivery)
    rejected = results[1]
    assert isinstance(rejected, RecipientRejected)
    assert rejected.recipient == "bob@example.com" and rejected.reply
    assert "bob@example.com" in str(rejected)
    assert sorted(m["to"] for m in harness.delivered(server)) == ["ann@example.com", "cat@example.com"]


def test_deferred_then_accepted_on_the_next_attempt(harness):
    server = harness.serve(DeferFirst("bob@example.com"), **({} if harness.kind == "smtp" else {"retry_after": "1"}))
    factory = harness.factory(server)
    recipients = [factory.recipient(s) for s in PEOPLE]
    with harness.backend(server) as backend:
        first = backend.send(factory, recipients)
        assert isinstance(first[1], TransientDeliveryError)
        assert first[1].recipient == "bob@example.com"
        again = [r for r, result in zip(recipients, first) if isinstance(result, TransientDeliveryError)]
        second = backend.send(factory, again)
    assert all(isinstance(r, Delivery) for r in second)
    if harness.kind != "smtp":
        assert first[1].retry_after == 1.0             # the API's Retry-After reaches the send loop
    delivered = sorted(m["to"] for m in harness.delivered(server))
    assert delivered == sorted(p.email for p in PEOPLE)     # each exactly once


def test_bad_credentials_stop_the_send(harness, monkeypatch):
    if harness.kind == "smtp":
        ca, cert, key = make_certs(harness.tmp_path / "certs")
        server = harness.serve(auth=("newsletter", "right password"), tls="starttls", certs=(cert, key))
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong password")
        overrides = {"username": "newsletter", "password_env": "TEST_SMTP_PASSWORD", "ca_file": str(ca)}
    else:
        server = harness.serve()
        monkeypatch.setenv("TEST_MAIL_API_KEY", "wrong-key")
        overrides = {}
    factory = harness.factory(server)
    with pytest.raises(ConfigError) as info:
        with harness.backend(server, **overrides) as backend:
            backend.send(factory, [factory.recipient(PEOPLE[0])])
    assert "refused" in str(info.value)
    assert "wrong" not in str(info.value)              # the secret never shows in messages
    assert harness.delivered(server) == []
