"""End to end in a real browser: sign up, confirm from the email, receive an issue, unsubscribe."""

from __future__ import annotations

import re

import pytest
import requests

from newsletter.pipeline import send_issue
from newsletter.render.saved import save_rendered
from newsletter.models import Rendered
from newsletter.render.placeholders import new_nonce, token
from newsletter.web import serve_in_thread
from browser_support import NEEDS_CHROMIUM
from mail_servers import SMTPTestServer, free_port
from web_support import SECRET, confirm_link, mail_to, make_config, settle, status_of, store

pytestmark = NEEDS_CHROMIUM
READER = "browser.reader@example.org"
OTHER = "other.reader@example.org"


def issue(issue_id: str, title: str) -> Rendered:
    """Return a small render with the standard tokens, as the renderer would leave it."""
    nonce = new_nonce()
    t = lambda field: token(nonce, field)  # noqa: E731 - a tiny local shorthand
    html = (f'<!DOCTYPE html><html lang="en"><head><title>{title}</title></head><body>'
            f"<p>Hello {t('name')},</p><h1>{title}</h1>"
            f"<p><a href=\"{t('view_url')}\">View in browser</a> · "
            f"<a href=\"{t('unsubscribe_url')}\">Unsubscribe</a></p></body></html>")
    text = f"Hello {t('name')},\n{title}\nView: {t('view_url')}\nUnsubscribe: {t('unsubscribe_url')}\n"
    return Rendered(issue_id=issue_id, subject=title, preheader="", html=html, text=text, nonce=nonce)


def list_unsubscribe_url(message) -> str:
    """Return the https/http URL of a message's List-Unsubscribe header (RFC 2369 <...> list)."""
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    urls = re.findall(r"<(https?://[^>]+)>", " ".join(str(message["List-Unsubscribe"]).split()))
    assert urls, message["List-Unsubscribe"]
    return urls[0]


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Yield (config, SMTP test server, WebServer): the app served by waitress on a free port."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    port = free_port()
    with SMTPTestServer() as smtp:
        config = make_config(tmp_path, smtp_port=smtp.port, base_url=f"http://127.0.0.1:{port}")
        with serve_in_thread(config, "127.0.0.1", port) as server:
            assert server.url == f"http://127.0.0.1:{port}"
            yield config, smtp, server


def test_sign_up_confirm_receive_and_unsubscribe(site, browser):
    from playwright.sync_api import expect

    config, smtp, server = site
    base = server.url
    page = browser.new_page(viewport={"width": 375, "height": 800})

    # Sign up with the form.
    page.goto(f"{base}/subscribe")
    assert page.locator("html").get_attribute("lang") == "en-GB"
    page.get_by_label("Email address").fill(READER)
    page.get_by_label("Name (optional)").fill("Browser Reader")
    assert page.locator("#website").bounding_box()["x"] < 0, "the honeypot must be off-screen"
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    settle(server.app)      # the sign-up is handled after the answer
    assert status_of(config, READER) == "unconfirmed"

    # Confirm through the link in the email the SMTP server caught.
    (confirmation,) = mail_to(smtp, READER)
    page.goto(confirm_link(confirmation))
    expect(page.get_by_role("heading", name="Confirm your subscription")).to_be_visible()
    assert status_of(config, READER) == "unconfirmed"
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", name="You are subscribed")).to_be_visible()
    assert status_of(config, READER) == "active"

    # An issue goes out through the real send path and the SMTP backend.
    store(config).add(OTHER, status="active")
    save_rendered(config.paths.state, issue("2024-w23", "Week 23"))
    assert send_issue(config, "2024-w23").sent == 2
    (received,) = [m for m in mail_to(smtp, READER) if m["Subject"] == "Week 23"]
    url = list_unsubscribe_url(received)
    assert url.startswith(f"{base}/u/")

    # The archive shows the sent issue, with nobody's values in it.
    page.goto(f"{base}/archive/")
    page.get_by_role("link", name="Week 23").click()
    expect(page.get_by_role("heading", name="Week 23")).to_be_visible()
    assert READER not in page.content()

    # Unsubscribe from the List-Unsubscribe URL: the page, then its button.
    page.goto(url)
    expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    assert status_of(config, READER) == "active", "opening the page alone must change nothing"
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert status_of(config, READER) == "unsubscribed"

    # Changed their mind.
    page.get_by_role("button", name="Resubscribe").click()
    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
    assert status_of(config, READER) == "active"

    # RFC 8058 one-click as a mail provider does it: no cookies, a plain form POST.
    altered = url[:-1] + ("A" if url[-1] != "A" else "B")
    bad = requests.post(altered, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert bad.status_code == 400
    assert status_of(config, READER) == "active"
    ok = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10, allow_redirects=False)
    assert ok.status_code == 200
    assert "set-cookie" not in {k.lower() for k in ok.headers}
    assert status_of(config, READER) == "unsubscribed"

    # The next send skips the address.
    save_rendered(config.paths.state, issue("2024-w24", "Week 24"))
    report = send_issue(config, "2024-w24")
    assert report.sent == 1
    assert [m["Subject"] for m in mail_to(smtp, READER)].count("Week 24") == 0
    assert [m["Subject"] for m in mail_to(smtp, OTHER)].count("Week 24") == 1
