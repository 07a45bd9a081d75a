"""Sign-up with double opt-in: the form, the confirmation email on a real SMTP server, confirming."""

from __future__ import annotations

import re

import pytest

from mail_servers import HTTPMailAPIServer
from newsletter.web import create_app
from web_support import (BASE_URL, SECRET, body_text, captured_logs, confirm_link, confirm_token, csrf_from,
                         mail_to, make_config, settle, status_of, store, unsubscribe_token)

NEW = "new.reader@example.org"


@pytest.fixture
def config(tmp_path, monkeypatch, smtp):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    return make_config(tmp_path, smtp_port=smtp.port, rate_limit_per_hour=3)


def sign_up(client, email: str, name: str = "", website: str = "", **environ):
    """Load the form and submit it as a browser would; return the response."""
    page = client.get("/subscribe", environ_base=environ).get_data(as_text=True)
    resp = client.post("/subscribe", environ_base=environ, data={
        "csrf_token": csrf_from(page), "email": email, "name": name, "website": website})
    settle(client.application)
    return resp


def neutral(html: str, address: str) -> str:
    """Return a page with the address and CSRF value blanked, to compare answers between cases."""
    return re.sub(r'value="[^"]*"', 'value=""', html.replace(address, "ADDRESS"))


# -- the form ------------------------------------------------------------------------------

def test_form_is_accessible(client):
    html = client.get("/subscribe").get_data(as_text=True)
    for field in ("email", "name", "website"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    assert 'type="email"' in html and 'autocomplete="email"' in html
    # The honeypot is hidden from people and assistive technology, and out of the tab order.
    assert re.search(r'<div class="hp" aria-hidden="true">', html)
    assert 'tabindex="-1"' in html
    assert '<meta name="viewport"' in html


def test_form_takes_a_name_as_long_as_the_input_rule_allows(client, config, smtp):
    # One rule per kind of input: the browser must not cut a name the server would accept.
    from newsletter.inputs import MAX_NAME

    html = client.get("/subscribe").get_data(as_text=True)
    assert re.search(r'id="name"[^>]*maxlength="(\d+)"', html).group(1) == str(MAX_NAME)


# -- the happy path --------------------------------------------------------------------------

def test_sign_up_sends_a_confirmation_and_the_button_confirms(client, config, smtp):
    resp = sign_up(client, NEW, name="New Reader")
    assert resp.status_code == 200
    assert "Check your inbox" in resp.get_data(as_text=True)
    assert status_of(config, NEW) == "unconfirmed"
    assert store(config).get(NEW, "default").name == "New Reader"

    (message,) = mail_to(smtp, NEW)
    assert message["To"] == NEW
    assert message["From"] == "Test Weekly <news@example.org>"
    assert "Confirm your subscription to Test Weekly" == message["Subject"]
    assert message["Message-ID"].endswith("@example.org>")
    assert "List-Unsubscribe" not in message
    link = confirm_link(message)
    assert link.startswith(f"{BASE_URL}/confirm/")
    assert f'href="{link}"' in body_text(message, "html")

    path = link.removeprefix(BASE_URL)
    page = client.get(path)
    assert page.status_code == 200
    assert status_of(config, NEW) == "unconfirmed", "a GET (link scanner) must not confirm"
    html = page.get_data(as_text=True)
    assert f'action="{path}"' in html and "Confirm my subscription" in html

    done = client.post(path, data={"csrf_token": csrf_from(html)})
    assert done.status_code == 200
    assert "You are subscribed" in done.get_data(as_text=True)
    assert status_of(config, NEW) == "active"
    # The welcome page's unsubscribe link works.
    unsub = re.search(r'href="(/u/[^"]+)">Unsubscribe', done.get_data(as_text=True)).group(1)
    assert client.get(unsub).status_code == 200

    # The link is single-use: a second press is refused and changes nothing.
    again = client.post(path, data={"csrf_token": csrf_from(html)})
    assert again.status_code == 400 and "used already" in again.get_data(as_text=True)
    assert status_of(config, NEW) == "active"


def test_confirmation_email_carries_nothing_the_visitor_typed(client, smtp):
    sign_up(client, NEW, name="Visit evil.example now")
    (message,) = mail_to(smtp, NEW)
    assert "evil.example" not in message.as_string()


def test_confirmation_email_keeps_quoted_printable_lines_within_76(client, smtp):
    # RFC 2045 6.7: encoded lines are at most 76 characters (the standard library's default
    # policy wraps quoted-printable at 78).
    sign_up(client, NEW)
    with smtp.lock:
        (data,) = [r.data for r in smtp.messages if NEW in r.rcpt_tos]
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


@pytest.mark.parametrize("provider", ["postmark", "generic"])
def test_confirmation_goes_through_an_http_backend_too(tmp_path, monkeypatch, provider):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    monkeypatch.setenv("TEST_MAIL_API_KEY", "test-api-key")
    with HTTPMailAPIServer(provider) as api:
        cfg = make_config(tmp_path, delivery={"backend": "http", "http": api.http_config()})
        client = create_app(cfg).test_client()
        assert sign_up(client, NEW).status_code == 200
        (sent,) = api.messages
    assert NEW in str(sent["to"])
    assert sent["subject"] == "Confirm your subscription to Test Weekly"
    link = re.search(r"http://newsletter\.test/confirm/[A-Za-z0-9_.\-]+", sent["text"]).group(0)
    assert f'href="{link}"' in sent["html"]
    assert "NLT" not in sent["text"] + sent["html"], "a token was left unfilled"
    assert client.get(link.removeprefix(BASE_URL)).status_code == 200


def test_unsubscribed_address_must_confirm_again(client, config, smtp):
    store(config).add(NEW, status="unsubscribed")
    assert sign_up(client, NEW).status_code == 200
    assert status_of(config, NEW) == "unsubscribed", "signing up alone must not resubscribe"
    path = confirm_link(mail_to(smtp, NEW)[0]).removeprefix(BASE_URL)
    html = client.get(path).get_data(as_text=True)
    client.post(path, data={"csrf_token": csrf_from(html)})
    assert status_of(config, NEW) == "active"


# -- never revealing whether an address is subscribed ------------------------------------------

def test_active_address_gets_the_same_answer_and_no_mail(client, config, smtp):
    store(config).add("member@example.org", name="Member", status="active")
    known = sign_up(client, "member@example.org", name="Someone Else")
    fresh = sign_up(client, NEW)
    assert known.status_code == fresh.status_code == 200
    assert neutral(known.get_data(as_text=True), "member@example.org") == \
        neutral(fresh.get_data(as_text=True), NEW)
    assert mail_to(smtp, "member@example.org") == []
    assert store(config).get("member@example.org", "default").name == "Member"
    assert status_of(config, "member@example.org") == "active"


@pytest.mark.parametrize("state", ["bounced", "complained"])
def test_suppressed_address_is_not_mailed(client, config, smtp, state):
    store(config).add(NEW, status=state)
    assert sign_up(client, NEW).status_code == 200
    assert mail_to(smtp, NEW) == []
    assert status_of(config, NEW) == state


def test_unconfirmed_address_gets_a_new_link(client, config, smtp):
    sign_up(client, NEW)
    sign_up(client, NEW)
    assert len(mail_to(smtp, NEW)) == 2
    assert status_of(config, NEW) == "unconfirmed"


def test_mail_failure_gives_the_same_answer_and_is_logged(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    cfg = make_config(tmp_path / "down", smtp_port=9)      # nothing listens on the discard port
    client = create_app(cfg).test_client()
    with captured_logs() as records:
        resp = sign_up(client, NEW)
    assert resp.status_code == 200 and "Check your inbox" in resp.get_data(as_text=True)
    assert any("could not send the confirmation" in r.getMessage() for r in records)


# -- bots ------------------------------------------------------------------------------------

def test_honeypot_filled_changes_nothing(client, config, smtp):
    resp = sign_up(client, NEW, website="http://spam.example")
    assert resp.status_code == 200
    assert "Check your inbox" in resp.get_data(as_text=True)
    assert status_of(config, NEW) is None
    assert smtp.messages == []


def test_per_address_limit_stops_mail_silently(client, smtp):
    answers = [sign_up(client, NEW, REMOTE_ADDR=f"10.0.0.{i}").status_code for i in range(5)]
    assert answers == [200] * 5
    assert len(mail_to(smtp, NEW)) == 3       # rate_limit_per_hour = 3


def test_per_ip_limit_answers_429(client, smtp):
    for i in range(3):
        assert sign_up(client, f"r{i}@example.org", REMOTE_ADDR="10.1.1.1").status_code == 200
    resp = sign_up(client, "r3@example.org", REMOTE_ADDR="10.1.1.1")
    assert resp.status_code == 429
    assert "Too many" in resp.get_data(as_text=True)
    assert mail_to(smtp, "r3@example.org") == []
    assert sign_up(client, "r3@example.org", REMOTE_ADDR="10.1.1.2").status_code == 200


def test_ipv6_clients_are_limited_per_64_network(client, smtp):
    for i in range(3):
        assert sign_up(client, f"v{i}@example.org", REMOTE_ADDR=f"2001:db8:1:2::{i + 1}").status_code == 200
    assert sign_up(client, "v3@example.org", REMOTE_ADDR="2001:db8:1:2:ffff::9").status_code == 429
    assert sign_up(client, "v3@example.org", REMOTE_ADDR="2001:db8:1:3::1").status_code == 200


def test_forwarded_for_is_ignored_without_proxy_hops(client, smtp):
    for i in range(3):
        sign_up(client, f"p{i}@example.org", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert sign_up(client, "p3@example.org", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_forwarded_for_is_trusted_with_proxy_hops(tmp_path, monkeypatch, smtp):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    cfg = make_config(tmp_path / "proxied", smtp_port=smtp.port, rate_limit_per_hour=1, proxy_hops=1)
    client = create_app(cfg).test_client()
    assert sign_up(client, "a@example.org", HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 200
    assert sign_up(client, "b@example.org", HTTP_X_FORWARDED_FOR="192.0.2.2").status_code == 200
    assert sign_up(client, "c@example.org", HTTP_X_FORWARDED_FOR="192.0.2.2").status_code == 429


# -- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["", "   ", "not-an-address", "a@b", "x" * 300 + "@example.org",
                                     '"><script>alert(1)</script>@example.org'])
def test_invalid_address_shows_the_form_again(client, config, smtp, address):
    resp = sign_up(client, address)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert 'role="alert"' in html and 'aria-invalid="true"' in html
    assert "<script>" not in html
    assert smtp.messages == []


@pytest.mark.parametrize("name", ["x" * 201, "Bad\x00Name", "Line\u202eBreak", "Bell\x07", "Esc\x1b[31m"])
def test_invalid_name_is_refused(client, config, name):
    resp = sign_up(client, NEW, name=name)
    assert resp.status_code == 400
    assert status_of(config, NEW) is None


def test_bad_confirm_tokens(client, config):
    store(config).add(NEW, status="unconfirmed")
    token = confirm_token(config, NEW)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (altered, unsubscribe_token(config, NEW), "short", "x" * 700):
        resp = client.get(f"/confirm/{bad}")
        assert resp.status_code == 400
        assert "not valid or has expired" in resp.get_data(as_text=True)
    csrf = csrf_from(client.get("/subscribe").get_data(as_text=True))
    assert client.post(f"/confirm/{altered}", data={"csrf_token": csrf}).status_code == 400
    assert status_of(config, NEW) == "unconfirmed"


def test_confirm_cannot_revive_a_bounced_address(client, config):
    store(config).add(NEW, status="bounced")
    token = confirm_token(config, NEW)
    csrf = csrf_from(client.get("/subscribe").get_data(as_text=True))
    assert client.post(f"/confirm/{token}", data={"csrf_token": csrf}).status_code == 400
    assert status_of(config, NEW) == "bounced"
