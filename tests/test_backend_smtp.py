"""SMTP backend specifics: TLS verification, connection reuse and limits, reconnects, unreachable servers."""

from __future__ import annotations

import re
import threading
import time

import pytest

from newsletter.backends.base import make_backend
from newsletter.backends.smtp import SMTPBackend
from newsletter.errors import (
    AmbiguousDelivery,
    ConfigError,
    DeliveryError,
    PolicyRefusal,
    RecipientRejected,
    StopRun,
    TransientDeliveryError,
)
from newsletter.models import Delivery, Subscriber
from newsletter.personalize.message import MessageFactory

from mail_servers import DROP, HANG, SMTPTestServer, free_port, make_certs
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


def test_a_refused_sender_mid_batch_keeps_what_was_sent_and_stops_the_run(tmp_path, serve):
    calls = []

    def mail_reply(address):
        calls.append(address)
        return 250 if len(calls) == 1 else "553 5.7.1 Sender address rejected: not owned by user"

    server = serve(reply_for_mail=mail_reply)
    backend, factory = setup(tmp_path, server.smtp_config())
    with backend:
        results = backend.send(factory, [factory.recipient(p) for p in people(3)])
    assert isinstance(results[0], Delivery)
    # the refusal of our sender stops the run: the rest is not tried, nobody is bounced
    assert [type(r) for r in results[1:]] == [StopRun, StopRun]
    assert results[1].reply.startswith("553 5.7.1") and "at MAIL FROM" in str(results[1])
    assert results[2].reply == "" and len(calls) == 2
    assert len(server.messages) == 1


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "lock-step"])
@pytest.mark.parametrize("where, reply, expected", [
    ("rcpt", "550 5.1.1 <x>: Recipient address rejected: User unknown", RecipientRejected),
    ("rcpt", "550 Requested action not taken: mailbox unavailable", RecipientRejected),   # no enhanced code
    ("rcpt", "554 5.7.1 <x>: Relay access denied", PolicyRefusal),   # the breaker weighs it
    ("rcpt", "450 4.2.0 <x>: Recipient address rejected: Greylisted", TransientDeliveryError),
    ("rcpt", "552 5.2.2 Mailbox full", TransientDeliveryError),
    ("rcpt", "550 5.7.13 User account disabled", RecipientRejected),
    ("data", "554 5.7.1 Message rejected as spam by content filter", PolicyRefusal),
    ("data", "550 Message refused", PolicyRefusal),           # after the message, without a code
    ("data", "550 5.1.1 No such user here", RecipientRejected),   # one recipient per transaction
    ("data", "451 4.3.0 Temporary lookup failure", TransientDeliveryError),
    ("data", "552 5.3.4 Message size exceeds fixed limit", PolicyRefusal),
])
def test_each_reply_is_read_by_its_codes(tmp_path, serve, pipelining, where, reply, expected):
    bad = "reader1@example.com"
    answer = (lambda a: reply if a == bad else 250)
    server = serve(pipelining=pipelining, **({"reply_for": answer} if where == "rcpt" else {"data_reply": answer}))
    backend, factory = setup(tmp_path, server.smtp_config(connections=1))
    with backend:
        results = backend.send(factory, [factory.recipient(p) for p in people(3)])
        again = backend.send(factory, [factory.recipient(p) for p in people(1, 5)])
    assert type(results[1]) is expected and results[1].reply == reply
    assert results[1].reply_class == expected.reply_class and results[1].recipient == bad
    assert isinstance(results[0], Delivery)
    # one message's refusal, whatever its class, never keeps the rest of the batch from going
    assert isinstance(results[2], Delivery)
    assert isinstance(again[0], Delivery)
    assert server.connections == 1        # RSET keeps the connection usable
    delivered = [m.rcpt_tos[0] for m in server.messages]       # what the server accepted
    assert sorted(delivered) == ["reader0@example.com", "reader2@example.com", "reader5@example.com"]


def test_no_reply_after_the_message_is_ambiguous_and_the_rest_goes_on(tmp_path, serve):
    server = serve(data_reply=lambda a: DROP if a == "reader1@example.com" else 250)
    backend, factory = setup(tmp_path, server.smtp_config(connections=1))
    with backend:
        results = backend.send(factory, [factory.recipient(p) for p in people(3)])
    assert [type(r) for r in results] == [Delivery, AmbiguousDelivery, Delivery]
    assert results[1].reply_class == "ambiguous" and "may have been accepted" in str(results[1])
    assert len(server.messages) == 3 and server.connections == 2     # a new connection after the drop


def test_a_server_that_never_answers_the_message_times_out_as_ambiguous(tmp_path, serve):
    server = serve(data_reply=lambda a: HANG)
    backend, factory = setup(tmp_path, server.smtp_config(data_timeout=0.5))
    with backend:
        started = time.monotonic()
        (result,) = backend.send(factory, [factory.recipient(people(1)[0])])
    assert isinstance(result, AmbiguousDelivery) and "timed out" in result.reply
    assert 0.4 < time.monotonic() - started < 5


def test_a_server_that_never_answers_the_envelope_times_out_as_transient(tmp_path, serve):
    server = serve(lambda a: HANG if a == "reader0@example.com" else 250)
    backend, factory = setup(tmp_path, server.smtp_config(timeout=0.5))
    with backend:
        results = backend.send(factory, [factory.recipient(p) for p in people(2)])
    # nothing of the message was handed over, so it is only deferred (and tried again later)
    assert isinstance(results[0], TransientDeliveryError) and isinstance(results[1], Delivery)
    assert [m.rcpt_tos for m in server.messages] == [["reader1@example.com"]]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "lock-step"])
def test_lines_starting_with_a_dot_arrive_intact(tmp_path, serve, pipelining):
    server = serve(pipelining=pipelining)
    backend, factory = setup(tmp_path, server.smtp_config())
    dotted = Subscriber(email="dot@example.com", name="Dot", fields={"company": "Acme\n.hidden\n..two\n."})
    recipient = factory.recipient(dotted)
    with backend:
        (result,) = backend.send(factory, [recipient])
    assert isinstance(result, Delivery)
    (received,) = server.messages
    text = received.message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Your company: Acme\n.hidden\n..two\n.\n" in text
    built = factory.build(recipient)
    assert b"\r\n.hidden\r\n..two\r\n" in built                 # lines that need dot-stuffing
    date = re.compile(rb"^Date: .*$", re.M)
    assert date.sub(b"", received.data) == date.sub(b"", built)    # byte for byte, as built


def test_idn_domain_goes_as_punycode_to_a_server_without_smtputf8(tmp_path, serve):
    server = serve(smtputf8=False)
    backend, factory = setup(tmp_path, server.smtp_config())
    people_ = [Subscriber(email="reader@bücher.example", name="Leser"), Subscriber(email="zoë@example.com"),
               Subscriber(email="plain@example.com")]
    with backend:
        results = backend.send(factory, [factory.recipient(p) for p in people_])
    assert isinstance(results[0], Delivery) and isinstance(results[2], Delivery)
    # a non-ASCII local part cannot go without SMTPUTF8: that message fails, nobody is bounced
    assert type(results[1]) is DeliveryError and results[1].reply_class == "failed"
    assert "does not offer SMTPUTF8" in str(results[1])
    assert [m.rcpt_tos for m in server.messages] == [["reader@xn--bcher-kva.example"], ["plain@example.com"]]
    assert "SMTPUTF8" not in " ".join(server.mail_options)
    assert server.messages[0].message["To"].addresses[0].domain == "xn--bcher-kva.example"


def test_smtputf8_is_used_when_offered(tmp_path, serve):
    server = serve(smtputf8=True)
    backend, factory = setup(tmp_path, server.smtp_config())
    with backend:
        results = backend.send(factory, [factory.recipient(Subscriber(email="zoë@bücher.example"))])
    assert isinstance(results[0], Delivery)
    assert server.messages[0].rcpt_tos == ["zoë@bücher.example"] and "SMTPUTF8" in server.mail_options
