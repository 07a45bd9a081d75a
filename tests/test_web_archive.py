"""The public archive: only sent issues, personal values neutralised, safe ids, and the Atom feed."""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

import pytest

from newsletter.render.saved import save_rendered
from newsletter.models import Rendered
from newsletter.personalize.message import MessageFactory
from newsletter.render.placeholders import ANY_TOKEN, new_nonce, token
from newsletter.web import create_app
from newsletter.web.security import ARCHIVE_CSP
from web_support import BASE_URL, SECRET, body_text, make_config, mark_sent, parse, store

ATOM = "{http://www.w3.org/2005/Atom}"
READER = "reader@example.org"


def rendered(issue_id: str, subject: str) -> Rendered:
    """Return a small render holding every standard token and one custom field."""
    nonce = new_nonce()
    t = lambda field: token(nonce, field)  # noqa: E731 - a tiny local shorthand
    html = (f"<!DOCTYPE html><html lang=\"en\"><head><title>{subject}</title></head><body>"
            f"<p>Hello {t('name')} ({t('email')}), from {t('city')}.</p>"
            f"<h1>{subject}</h1><p>Story of the week.</p>"
            f"<a href=\"{t('view_url')}\">View in browser</a> "
            f"<a href=\"{t('unsubscribe_url')}\">Unsubscribe</a></body></html>")
    text = f"Hello {t('name')}\n{subject}\nView: {t('view_url')}\nUnsubscribe: {t('unsubscribe_url')}\n"
    return Rendered(issue_id=issue_id, subject=subject, preheader=f"Preheader of {subject}",
                    html=html, text=text, nonce=nonce)


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    cfg = make_config(tmp_path)
    store(cfg).add(READER, name="Rea Der", status="active", fields={"City": "Lyon"})
    for issue_id, subject in [("2024-05-06", "First issue"), ("2024-05-13", "Second & <best> issue"),
                              ("2024-05-20", "Not sent yet")]:
        save_rendered(cfg.paths.state, rendered(issue_id, subject))
    mark_sent(cfg, "2024-05-06")
    mark_sent(cfg, "2024-05-13")
    return cfg


def test_index_lists_sent_issues_newest_first(client):
    resp = client.get("/archive/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert html.index("Second &amp; &lt;best&gt; issue") < html.index("First issue")
    assert 'href="/archive/2024-05-13"' in html and 'href="/archive/2024-05-06"' in html
    assert "Not sent yet" not in html and "2024-05-20" not in html
    assert 'type="application/atom+xml"' in html


def test_issue_is_shown_with_neutral_values(client):
    resp = client.get("/archive/2024-05-06")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "<h1>First issue</h1>" in html
    assert not ANY_TOKEN.search(html), "a personalisation token leaked into the archive"
    assert READER not in html and "Rea Der" not in html and "Lyon" not in html
    assert "/u/" not in html, "an unsubscribe token appears in the archive"
    assert f'href="{BASE_URL}/archive/2024-05-06"' in html
    assert f'href="{BASE_URL}/subscribe"' in html
    assert resp.headers["Content-Security-Policy"] == ARCHIVE_CSP
    assert "Set-Cookie" not in resp.headers


def test_unsent_and_unknown_issues_are_not_served(client):
    assert client.get("/archive/2024-05-20").status_code == 404
    resp = client.get("/archive/2099-01-01")
    assert resp.status_code == 404
    assert "no sent issue" in resp.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/archive/..%2F..%2Fstate%2Fnewsletter.db", "/archive/..",
                                  "/archive/.hidden", "/archive/a..b", "/archive/%00",
                                  "/archive/" + "x" * 300, "/archive/2024-05-06%2F..%2F2024-05-20"])
def test_unsafe_ids_are_refused(client, path):
    resp = client.get(path)
    assert resp.status_code == 404
    assert "Traceback" not in resp.get_data(as_text=True)


def test_sent_issue_whose_render_is_missing_gives_a_404_page(client, config):
    (config.paths.state / "issues" / "2024-05-06" / "rendered.json").unlink()
    resp = client.get("/archive/2024-05-06")
    assert resp.status_code == 404
    assert "archived copy is missing" in resp.get_data(as_text=True)


def test_feed_is_atom_with_one_entry_per_sent_issue(client):
    resp = client.get("/archive/feed.xml")
    assert resp.status_code == 200
    assert resp.mimetype == "application/atom+xml"
    feed = ET.fromstring(resp.data)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}title") == "Test Weekly"
    assert feed.findtext(f"{ATOM}id") == f"{BASE_URL}/archive/"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == ["Second & <best> issue", "First issue"]
    first = entries[0]
    assert first.find(f"{ATOM}link").get("href") == f"{BASE_URL}/archive/2024-05-13"
    assert first.findtext(f"{ATOM}id") == f"{BASE_URL}/archive/2024-05-13"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first.findtext(f"{ATOM}updated"))
    assert first.findtext(f"{ATOM}summary") == "Preheader of Second & <best> issue"
    assert feed.findtext(f"{ATOM}updated") == first.findtext(f"{ATOM}updated")


def test_empty_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    client = create_app(make_config(tmp_path / "empty")).test_client()
    assert "No issue has been sent yet" in client.get("/archive/").get_data(as_text=True)
    feed = ET.fromstring(client.get("/archive/feed.xml").data)
    assert feed.findall(f"{ATOM}entry") == []
    assert feed.findtext(f"{ATOM}updated")


def test_view_in_browser_link_of_a_message_opens_the_archive(client, config):
    factory = MessageFactory(rendered("2024-06-03", "Linked issue"), config, list_name="default")
    save_rendered(config.paths.state, factory.rendered)
    mark_sent(config, "2024-06-03")
    subscriber = store(config).get(READER, "default")
    message = parse(factory.build(factory.recipient(subscriber)))
    html_part = body_text(message, "html")
    assert "Lyon" in html_part      # the subscriber's own copy is personal
    view_url = re.search(r'href="([^"]+)">View in browser', html_part).group(1)
    assert view_url == f"{BASE_URL}/archive/2024-06-03"
    resp = client.get(view_url.removeprefix(BASE_URL))
    assert resp.status_code == 200
    assert "Linked issue" in resp.get_data(as_text=True)
    assert "Lyon" not in resp.get_data(as_text=True)


def test_archive_redirects_without_slash(client):
    resp = client.get("/archive")
    assert resp.status_code in (301, 308)
    assert resp.headers["Location"].endswith("/archive/")

