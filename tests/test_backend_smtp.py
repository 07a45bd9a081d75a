"""SMTP backend specifics: TLS verification, connection reuse and limits, reconnects, unreachable servers."""

from __future__ import annotations

import threading
import time

import pytest

from newsletter.backends.base import make_backend
from newsletter.backends.smtp import SMTPBackend
from newsletter.errors import ConfigError, TransientDeliveryError
from newsletter.models import Delivery, Subscriber
from newsletter.personalize.message import MessageFactory

from mail_servers import SMTPTestServer, free_port, make_certs
from personalize_support import SECRET, make_config, rendered_issue


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret pass")


@pytest.fixture
def certs(tmp_path):
    return make_certs(tmp_path / "certs")


@pytest.fixture
def serve():
    servers = []

    def start(*args, **kwargs):
        server = SMTPTestServer(*args, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def people(n, start=0):
    return [Subscriber(email=f"reader{i}@example.com", name=f"Reader {i}") for i in range(start, start + n)]


def setup(tmp_path, smtp):
    config = make_config(tmp_path, delivery={"backend": "smtp", "smtp": smtp})
    return make_backend(config), MessageFactory(rendered_issue(), config, list_name="default")


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_a_verified_certificate_and_login(tmp_path, serve, certs, security):
    ca, cert, key = certs
    server = serve(tls=security, certs=(cert, key), auth=("newsletter", "s3cret pass"))
    backend, factory = setup(tmp_path, server.smtp_config(ca_file=str(ca), username="newsletter",
                                                          password_env="TEST_SMTP_PASSWORD"))
    with backend:
        results = backend.send(factory, [factory.recipient(p) for p in people(2)])
    assert all(isinstance(r, Delivery) and r.reply.startswith("250") for r in results)
    assert [m.rcpt_tos for m in server.messages] == [["reader0@example.com"], ["reader1@example.com"]]
    assert server.messages[0].mail_from == "news@example.org"


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_certificate_that_cannot_be_verified_is_a_config_error(tmp_path, serve, certs, security):
    _, cert, key = certs
    server = serve(tls=security, certs=(cert, key))
    backend, _ = setup(tmp_path, server.smtp_config())          # no ca_file: the test CA is unknown
    with pytest.raises(ConfigError, match="certificate verify failed"):
        backend.open()
    assert server.messages == []


def test_starttls_asked_of_a_server_without_it_is_a_config_error(tmp_path, serve):
    server = serve()
    backend, _ = setup(tmp_path, server.smtp_config(security="starttls"))
    with pytest.raises(ConfigError, match="STARTTLS"):
        backend.open()


def test_unreachable_server_at_start_is_a_config_error_naming_it(tmp_path):
    port = free_port()
    backend, _ = setup(tmp_path, {"host": "127.0.0.1", "port": port, "timeout": 5})
    with pytest.raises(ConfigError, match=f"cannot reach SMTP server 127.0.0.1:{port}"):
        backend.open()


def test_server_gone_during_a_send_fails_the_batch_temporarily(tmp_path, serve):
    server = serve()
    backend, factory = setup(tmp_path, server.smtp_config())
    backend.open()
    server.stop()
    backend.close()                    # the idle connection is gone; a new one cannot be made
    with pytest.raises(TransientDeliveryError, match="cannot reach"):
        backend.send(factory, [factory.recipient(p) for p in people(2)])


def test_one_connection_carries_many_messages_and_rejections(tmp_path, serve):
    server = serve(lambda rcpt: 550 if rcpt == "reader3@example.com" else 250)
    backend, factory = setup(tmp_path, server.smtp_config(connections=1))
    with backend:
        for start in (0, 5):
            backend.send(factory, [factory.recipient(p) for p in people(5, start)])
    assert len(server.messages) == 9
    assert server.connections == 1      # RSET after the refusal kept the connection usable


def test_parallel_sends_never_open_more_than_the_configured_connections(tmp_path, serve):
    server = serve()
    backend, factory = setup(tmp_path, server.smtp_config(connections=2))
    results = []
    with backend:
        def work(n):
            results.extend(backend.send(factory, [factory.recipient(p) for p in people(10, n * 10)]))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 60 and all(isinstance(r, Delivery) for r in results)
    assert len({m.rcpt_tos[0] for m in server.messages}) == 60
    assert 1 <= server.connections <= 2


def test_reconnects_after_the_server_closes_an_idle_connection(tmp_path, serve):
    server = serve(idle_timeout=0.5)
    backend, factory = setup(tmp_path, server.smtp_config(connections=1))
    with backend:
        first = backend.send(factory, [factory.recipient(people(1)[0])])
        time.sleep(1.2)                 # the server drops the idle connection (421 timeout)
        second = backend.send(factory, [factory.recipient(people(1, 1)[0])])
    assert isinstance(first[0], Delivery) and isinstance(second[0], Delivery)
    assert len(server.messages) == 2 and server.connections == 2


def test_non_ascii_address_needs_smtputf8(tmp_path, serve):
    server = serve()
    backend, factory = setup(tmp_path, server.smtp_config())
    with backend:
        (result,) = backend.send(factory, [factory.recipient(Subscriber(email="zoë@example.com"))])
    assert isinstance(result, Delivery)                     # aiosmtpd offers SMTPUTF8
    assert server.messages[0].rcpt_tos == ["zoë@example.com"]


def test_missing_password_env_is_a_config_error(tmp_path):
    config = make_config(tmp_path, delivery={"backend": "smtp", "smtp": {
        "username": "newsletter", "password_env": "NO_SUCH_PASSWORD_VAR"}})
    with pytest.raises(ConfigError, match="NO_SUCH_PASSWORD_VAR"):
        SMTPBackend(config)


@pytest.mark.parametrize("smtp,match", [({"security": "tls"}, "delivery.smtp.security"),
                                        ({"connections": 0}, "delivery.smtp.connections")])
def test_bad_settings_are_config_errors(tmp_path, smtp, match):
    with pytest.raises(ConfigError, match=match):
        SMTPBackend(make_config(tmp_path, delivery={"smtp": smtp}))


def test_a_refused_sender_mid_batch_keeps_what_was_sent_and_stops_the_next_batch(tmp_path, serve):
    calls = []

    def mail_reply(address):
        calls.append(address)
        return 250 if len(calls) == 1 else "553 5.7.1 Sender address rejected: not owned by user"

    server = serve(reply_for_mail=mail_reply)
    backend, factory = setup(tmp_path, server.smtp_config())
    with backend:
        results = backend.send(factory, [factory.recipient(p) for p in people(3)])
        assert isinstance(results[0], Delivery)
        assert all(isinstance(r, TransientDeliveryError) for r in results[1:])
        with pytest.raises(ConfigError, match="refused sender news@example.org: 553"):
            backend.send(factory, [factory.recipient(p) for p in people(1, 3)])
    assert len(server.messages) == 1
