"""HTTP backend specifics: retries, batch limits and splitting, bodies sent once, provider settings."""

from __future__ import annotations

import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from newsletter.backends.base import make_backend
from newsletter.backends.http import HTTPBackend
from newsletter.errors import (
    AmbiguousDelivery,
    ConfigError,
    DeliveryError,
    RecipientRejected,
    StopRun,
    TransientDeliveryError,
)
from newsletter.models import Delivery, Subscriber
from newsletter.personalize.message import MessageFactory
from newsletter.render.placeholders import ANY_TOKEN

from mail_servers import DeferFirst, HTTPMailAPIServer
from personalize_support import SECRET, make_config, rendered_issue

API_KEY = "test-api-key"
HTTP_KINDS = ["postmark", "mailgun", "sendgrid", "generic"]


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    monkeypatch.setenv("TEST_MAIL_API_KEY", API_KEY)


@pytest.fixture
def serve():
    servers = []

    def start(provider, **kwargs):
        server = HTTPMailAPIServer(provider, api_key=API_KEY, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def people(n):
    return [Subscriber(email=f"reader{i}@example.com", name=f"Reader {i}") for i in range(n)]


def setup(tmp_path, server, subscribers, rendered=None, **http):
    config = make_config(tmp_path, delivery={"backend": "http", "backoff_seconds": 0.01,
                                             "http": server.http_config(**http)})
    factory = MessageFactory(rendered or rendered_issue(), config, list_name="default")
    return make_backend(config), factory, [factory.recipient(s) for s in subscribers]


@pytest.mark.parametrize("provider", HTTP_KINDS)
def test_429_and_503_are_retried_inside_the_backend(tmp_path, serve, provider):
    server = serve(provider, reply_for=DeferFirst("reader1@example.com"), retry_after="0")
    server.fail_next = [503]
    backend, factory, recipients = setup(tmp_path, server, people(3), max_retries=3)
    with backend:
        results = backend.send(factory, recipients)
    assert all(isinstance(r, Delivery) for r in results)
    statuses = [c["status"] for c in server.calls]
    assert statuses[0] == 503 and 429 in statuses
    assert sorted(m["to"] for m in server.messages) == sorted(r.email for r in recipients)


@pytest.mark.parametrize("provider", HTTP_KINDS)
def test_a_long_retry_after_goes_back_to_the_send_loop(tmp_path, serve, provider):
    server = serve(provider, retry_after="120")
    server.fail_next = [429]
    backend, factory, recipients = setup(tmp_path, server, people(1), max_retries=5)
    with backend:
        (result,) = backend.send(factory, recipients)
    assert isinstance(result, TransientDeliveryError) and result.retry_after == 120
    assert len(server.calls) == 1


@pytest.mark.parametrize("provider", HTTP_KINDS)
def test_retries_run_out_into_transient_errors(tmp_path, serve, provider):
    server = serve(provider, retry_after=None)
    server.fail_next = [500, 502, 503]
    backend, factory, recipients = setup(tmp_path, server, people(1), max_retries=2)
    with backend:
        results = backend.send(factory, recipients)
    assert all(isinstance(r, TransientDeliveryError) for r in results)
    assert [c["status"] for c in server.calls] == [500, 502, 503] and server.messages == []


@pytest.mark.parametrize("provider,limit", [("postmark", 500), ("mailgun", 1000), ("sendgrid", 1000),
                                            ("generic", 1)])
def test_max_batch_is_the_provider_limit_or_the_smaller_batch_size(tmp_path, serve, provider, limit):
    server = serve(provider)
    assert setup(tmp_path, server, [])[0].max_batch == limit
    assert setup(tmp_path, server, [], batch_size=2)[0].max_batch == min(2, limit)


@pytest.mark.parametrize("provider", ["postmark", "mailgun", "sendgrid"])
def test_batches_are_split_to_the_limit(tmp_path, serve, provider):
    server = serve(provider)
    backend, factory, recipients = setup(tmp_path, server, people(5), batch_size=2)
    with backend:
        results = backend.send(factory, recipients)
    assert all(isinstance(r, Delivery) for r in results)
    assert [c["recipients"] for c in server.calls] == [2, 2, 1]


def test_a_batch_over_postmarks_limit_is_split_into_calls_of_500(tmp_path, serve):
    server = serve("postmark")
    backend, factory, recipients = setup(tmp_path, server, people(501))
    with backend:
        results = backend.send(factory, recipients)
    assert len(results) == 501 and all(isinstance(r, Delivery) for r in results)
    assert [c["recipients"] for c in server.calls] == [500, 1]


@pytest.mark.parametrize("provider", ["mailgun", "sendgrid"])
def test_templating_providers_get_the_body_once_per_call(tmp_path, serve, provider):
    server = serve(provider)
    backend, factory, recipients = setup(tmp_path, server, people(40), rendered_issue(items=60))
    with backend:
        results = backend.send(factory, recipients)
    assert all(isinstance(r, Delivery) for r in results)
    (call,) = server.calls
    one_message = len(factory.build(recipients[0]))
    assert one_message > 40_000
    assert call["size"] < 3 * one_message            # not 40 bodies: one body plus variables
    for recipient, m in zip(recipients, sorted(server.messages, key=lambda m: int(m["to"][6:-12]))):
        assert m["to"] == recipient.email
        assert recipient.values["unsubscribe_url"] in m["text"]
        assert f'href="{recipient.values["unsubscribe_url"]}"' in m["html"]
        assert not ANY_TOKEN.search(m["html"] + m["text"])


SENDER_REFUSALS = {
    # what each API answers when the sender (not an address) is wrong, from its documentation
    "mailgun": (400, {"message": "'from' parameter is not a valid address. please check documentation"}),
    "sendgrid": (400, {"errors": [{"message": "The from address does not match a verified Sender Identity.",
                                   "field": "from", "help": None}]}),
    "generic": (400, {"error": "sender domain not verified"}),
    "postmark": (422, {"ErrorCode": 400, "Message": "Sender signature not found"}),
}


@pytest.mark.parametrize("provider", sorted(SENDER_REFUSALS))
def test_a_refusal_about_the_request_stops_the_run_and_bounces_nobody(tmp_path, serve, provider):
    server = serve(provider, refuse_all=SENDER_REFUSALS[provider])
    backend, factory, recipients = setup(tmp_path, server, people(8), batch_size=4)
    with backend:
        results = backend.send(factory, recipients)
    assert [type(r) for r in results] == [StopRun] * 8
    assert results[0].reply.startswith(f"HTTP {SENDER_REFUSALS[provider][0]}")
    assert all(r.reply == "" for r in results[LIMIT[provider]:])          # not tried at all
    assert len(server.calls) == 1 and server.messages == []                  # never halved


LIMIT = {"mailgun": 4, "sendgrid": 4, "postmark": 4, "generic": 1}


@pytest.mark.parametrize("provider", HTTP_KINDS)
def test_no_reply_within_the_timeout_after_the_body_is_ambiguous(tmp_path, serve, provider):
    server = serve(provider, answer_delay=1.5)
    backend, factory, recipients = setup(tmp_path, server, people(1), timeout=0.3, max_retries=3)
    with backend:
        (result,) = backend.send(factory, recipients)
    assert isinstance(result, AmbiguousDelivery) and "no reply within 0.3 s" in str(result)
    assert len(server.calls) == 1 and len(server.messages) == 1    # delivered once, never posted again


@pytest.mark.parametrize("provider", HTTP_KINDS)
def test_a_connection_dropped_after_the_body_is_ambiguous(tmp_path, serve, provider):
    server = serve(provider, drop_after_body=True)
    backend, factory, recipients = setup(tmp_path, server, people(1), max_retries=3)
    with backend:
        (result,) = backend.send(factory, recipients)
    assert isinstance(result, AmbiguousDelivery) and "after the request was sent" in str(result)
    assert len(server.calls) == 1 and len(server.messages) == 1


def test_a_postmark_reply_missing_results_leaves_those_messages_ambiguous(tmp_path, serve):
    server = serve("postmark", short_reply=2)
    backend, factory, recipients = setup(tmp_path, server, people(5))
    with backend:
        results = backend.send(factory, recipients)
    assert [type(r) for r in results] == [Delivery] * 3 + [AmbiguousDelivery] * 2
    assert [r.recipient for r in results[3:]] == ["reader3@example.com", "reader4@example.com"]
    assert len(server.messages) == 5 and len(server.calls) == 1


def test_postmark_error_codes_per_message(tmp_path, serve):
    codes = {"reader0@example.com": 406, "reader1@example.com": 300, "reader2@example.com": 100}
    server = serve("postmark", error_code=lambda a: codes.get(a, 0))
    backend, factory, recipients = setup(tmp_path, server, people(4))
    with backend:
        results = backend.send(factory, recipients)
    assert [type(r) for r in results] == [RecipientRejected, DeliveryError, TransientDeliveryError, Delivery]
    assert [r.reply_class for r in results[:3]] == ["recipient", "failed", "transient"]
    assert results[0].reply.startswith("406")


@pytest.mark.parametrize("code", [300, 400, 405, 12345])
def test_postmark_codes_about_the_account_or_the_whole_call_stop_the_run(tmp_path, serve, code):
    # 300 for every message of a call is the request's fault; 400 sender signature not found,
    # 405 not allowed to send, and codes we do not know are about the account.
    server = serve("postmark", error_code=lambda a: code)
    backend, factory, recipients = setup(tmp_path, server, people(3))
    with backend:
        results = backend.send(factory, recipients)
    assert [type(r) for r in results] == [StopRun] * 3 and server.messages == []


def test_a_mailgun_2xx_without_its_id_is_ambiguous(tmp_path, serve):
    server = serve("mailgun", refuse_all=(200, {"message": "OK"}))
    backend, factory, recipients = setup(tmp_path, server, people(2))
    with backend:
        results = backend.send(factory, recipients)
    assert [type(r) for r in results] == [AmbiguousDelivery] * 2


def test_sendgrid_rejects_the_personalizations_its_errors_name(tmp_path, serve):
    bad = {"reader1@example.com", "reader3@example.com"}
    server = serve("sendgrid", reply_for=lambda a: 550 if a in bad else 250)
    backend, factory, recipients = setup(tmp_path, server, people(5))
    with backend:
        results = backend.send(factory, recipients)
    assert {r.recipient for r in results if isinstance(r, RecipientRejected)} == bad
    assert [c["status"] for c in server.calls] == [400, 202]


def test_postmark_results_are_per_message_and_go_to_the_broadcast_stream(tmp_path, serve):
    server = serve("postmark", reply_for=lambda a: 550 if a == "reader0@example.com" else 250)
    backend, factory, recipients = setup(tmp_path, server, people(3))
    with backend:
        results = backend.send(factory, recipients)
    assert isinstance(results[0], RecipientRejected) and "406" in results[0].reply
    assert [r.provider_id for r in results[1:]] == ["pm-1", "pm-2"]
    assert {m["stream"] for m in server.messages} == {"broadcast"}
    assert len(server.calls) == 1


def test_unknown_endpoint_is_a_config_error(tmp_path, serve):
    server = serve("generic")
    backend, factory, recipients = setup(tmp_path, server, people(1), url=server.url + "/nope")
    with backend, pytest.raises(ConfigError, match="HTTP 404"):
        backend.send(factory, recipients)


def test_unreachable_api_gives_transient_errors(tmp_path, serve):
    server = serve("sendgrid")
    url = server.url
    server.stop()
    backend, factory, recipients = setup(tmp_path, _Stub(url, "sendgrid"), people(2), max_retries=1)
    with backend:
        results = backend.send(factory, recipients)
    assert all(isinstance(r, TransientDeliveryError) and "cannot connect" in str(r) for r in results)


class _Stub:
    """Stands in for a stopped server: only its config is needed."""

    def __init__(self, url, provider):
        self.url, self.provider = url, provider

    def http_config(self, **overrides):
        return {"provider": self.provider, "url": self.url, "api_key_env": "TEST_MAIL_API_KEY",
                "timeout": 5, **overrides}


@pytest.mark.parametrize("http,match", [
    ({"provider": "nosuch"}, "unknown provider"),
    ({"provider": "mailgun", "api_key_env": "TEST_MAIL_API_KEY"}, "delivery.http.domain"),
    ({"provider": "generic"}, "delivery.http.url"),
    ({"provider": "postmark", "api_key_env": "NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE"),
    ({"provider": "sendgrid"}, "api_key_env"),
])
def test_provider_settings_are_checked(tmp_path, http, match):
    config = make_config(tmp_path, delivery={"backend": "http", "http": http})
    with pytest.raises(ConfigError, match=match):
        HTTPBackend(config)


def test_the_api_key_is_sent_but_never_logged(tmp_path, serve, caplog):
    server = serve("postmark")
    server.fail_next = [503]
    backend, factory, recipients = setup(tmp_path, server, people(1), max_retries=1)
    with caplog.at_level("DEBUG"), backend:
        backend.send(factory, recipients)
    assert "retrying" in caplog.text and API_KEY not in caplog.text
    assert len(server.messages) == 1                  # delivered after the retry


@pytest.mark.parametrize("provider", HTTP_KINDS)
def test_any_message_source_works_not_only_issues(tmp_path, serve, provider):
    # The double opt-in mail is a MessageSource of its own (tokens email and confirm_url, no name).
    from newsletter.models import Recipient
    from newsletter.web.confirm_mail import ConfirmationSource

    server = serve(provider)
    config = make_config(tmp_path, delivery={"backend": "http", "http": server.http_config()})
    source = ConfirmationSource(config, max_age_days=7)
    url = "https://news.example.org/confirm/abc.def"
    recipient = Recipient(email="new@example.com", message_id="<confirm.1234567890@example.org>",
                          values={"email": "new@example.com", "confirm_url": url})
    with make_backend(config) as backend:
        (result,) = backend.send(source, [recipient])
    assert isinstance(result, Delivery)
    (m,) = server.messages
    assert m["to"] == "new@example.com" and url in m["text"] and url in m["html"]
    assert not ANY_TOKEN.search(m["text"] + m["html"])


def test_bad_credentials_after_a_first_call_keep_its_results_and_stop_the_next_batch(tmp_path, serve):
    server = serve("postmark")
    server.fail_next = [None, 401]
    backend, factory, recipients = setup(tmp_path, server, people(4), batch_size=2)
    with backend:
        results = backend.send(factory, recipients)
        assert [type(r) for r in results] == [Delivery, Delivery, StopRun, StopRun]
        server.api_key = "rotated-key"
        with pytest.raises(ConfigError, match="API key"):
            backend.send(factory, recipients[2:])
    assert len(server.messages) == 2


AWKWARD = [Subscriber(email="plain@example.com", name="Plain Reader", fields={"Company": "Acme"}),
           Subscriber(email="quote@example.com", name='Ann "The Editor" O\'Neil', fields={"Company": "A&B <C>"}),
           Subscriber(email="slash@example.com", name="Back\\slash 100% %s", fields={"Company": "tab\there"}),
           Subscriber(email="intl@example.com", name="Zoë 😀 Ørsted", fields={}),
           Subscriber(email="linesep@example.com", name="Line\u2028Separator", fields={"Company": "x"}),
           Subscriber(email="noname@example.com", fields={"Company": None})]


@pytest.mark.parametrize("people", [AWKWARD, AWKWARD[:1] + AWKWARD[3:4], AWKWARD[5:]],
                         ids=["escaping needed", "nothing to escape", "one without a name"])
def test_sendgrid_payload_carries_awkward_values_exactly(tmp_path, serve, people):
    # The personalizations are written as JSON text, not through json.dumps: quotes, backslashes,
    # control characters, "%" and non-ASCII must arrive as given, HTML-escaped only in the HTML.
    server = serve("sendgrid")
    backend, factory, recipients = setup(tmp_path, server, people)
    with backend:
        results = backend.send(factory, recipients)
    assert all(isinstance(r, Delivery) for r in results)
    got = {m["to"]: m for m in server.messages}
    assert set(got) == {p.email for p in people}
    for person, recipient in zip(people, recipients):
        m = got[person.email]
        assert m["to_header"] == ({"email": person.email, "name": person.name} if person.name
                                  else {"email": person.email})
        company = person.fields.get("Company") or ""
        assert f"Hello {person.name}," in m["text"] and f"Your company: {company}\n" in m["text"]
        assert f"Hello {html.escape(person.name)}," in m["html"]
        assert f"Your company: {html.escape(company)}</p>" in m["html"]
        assert m["headers"]["Message-ID"] == recipient.message_id
        assert recipient.values["unsubscribe_url"] in m["headers"]["List-Unsubscribe"]
        assert not ANY_TOKEN.search(m["html"] + m["text"])


class _EchoingKeyHandler(BaseHTTPRequestHandler):
    """An API that refuses every call and quotes the credentials it was sent back in its reply."""

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"message": f"bad key {self.headers.get('Authorization')!r}"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_server_that_echoes_the_api_key_never_gets_it_printed(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingKeyHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = make_config(tmp_path, delivery={"backend": "http", "http": {
            "provider": "generic", "url": f"http://127.0.0.1:{server.server_port}/send",
            "api_key_env": "TEST_MAIL_API_KEY", "timeout": 5}})
        factory = MessageFactory(rendered_issue(), config, list_name="default")
        with make_backend(config) as backend:
            try:
                results = backend.send(factory, [factory.recipient(s) for s in people(1)])
                said = " ".join(f"{r} {getattr(r, 'reply', '')}" for r in results)
            except ConfigError as err:
                said = str(err)
        assert "bad key" in said and API_KEY not in said and "[redacted]" in said
    finally:
        server.shutdown()
        server.server_close()
