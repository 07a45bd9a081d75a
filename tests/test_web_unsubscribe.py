"""Unsubscribe links: RFC 8058 one-click POST, the page with its button, resubscribing, bad tokens."""

from __future__ import annotations

import pytest

from web_support import SECRET, confirm_token, csrf_from, make_config, signer, status_of, store, unsubscribe_token

ADDRESS = "reader@example.org"


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    cfg = make_config(tmp_path)
    store(cfg).add(ADDRESS, name="Reader", status="active")
    store(cfg).add("other@example.org", status="active")
    return cfg


@pytest.fixture
def token(config):
    return unsubscribe_token(config, ADDRESS)


def one_char_changed(token: str, position: int) -> str:
    """Return token with the character at position replaced by another URL-safe character."""
    old = token[position]
    new = "A" if old != "A" else "B"
    return token[:position] + new + token[position + 1:]


def test_one_click_post_unsubscribes_without_cookies(client, config, token):
    resp = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    assert status_of(config, ADDRESS) == "unsubscribed"
    assert status_of(config, "other@example.org") == "active"
    # RFC 8058: the mail provider sends no cookies and must not be given any to carry on with.
    assert "Set-Cookie" not in resp.headers


def test_one_click_is_idempotent(client, config, token):
    for _ in range(3):
        resp = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
        assert resp.status_code == 200
    assert status_of(config, ADDRESS) == "unsubscribed"


def test_one_click_accepts_multipart_form_data(client, config, token):
    # RFC 8058 allows the body as multipart/form-data as well as urlencoded.
    resp = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"},
                       content_type="multipart/form-data")
    assert resp.status_code == 200
    assert status_of(config, ADDRESS) == "unsubscribed"


def test_one_click_keeps_a_stronger_suppression(client, config, token):
    store(config).set_status(ADDRESS, "default", "bounced")
    resp = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    assert status_of(config, ADDRESS) == "bounced"


def test_get_shows_a_button_and_changes_nothing(client, config, token):
    resp = client.get(f"/u/{token}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    # Which mailbox, not the address: whoever opens a forwarded mail's link learns no more.
    assert "re…@example.org" in html and ADDRESS not in html
    assert f'action="/u/{token}"' in html and 'method="post"' in html
    assert '<button type="submit"' in html
    assert status_of(config, ADDRESS) == "active"


def test_button_then_resubscribe(client, config, token):
    page = client.get(f"/u/{token}").get_data(as_text=True)
    resp = client.post(f"/u/{token}", data={"csrf_token": csrf_from(page), "action": "unsubscribe"})
    assert resp.status_code == 200
    assert status_of(config, ADDRESS) == "unsubscribed"
    html = resp.get_data(as_text=True)
    assert "Resubscribe" in html
    resp = client.post(f"/u/{token}", data={"csrf_token": csrf_from(html), "action": "resubscribe"})
    assert resp.status_code == 200
    assert "Welcome back" in resp.get_data(as_text=True)
    assert status_of(config, ADDRESS) == "active"


def test_page_after_one_click_offers_resubscribe(client, config, token):
    client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    html = client.get(f"/u/{token}").get_data(as_text=True)
    assert "You are unsubscribed" in html and 'value="resubscribe"' in html


def test_bounced_address_cannot_be_resubscribed_from_the_page(client, config, token):
    store(config).set_status(ADDRESS, "default", "bounced")
    page = client.get(f"/u/{token}").get_data(as_text=True)
    assert 'value="resubscribe"' not in page
    # A hand-made form post (with this session's valid CSRF token) is refused as well.
    csrf = csrf_from(client.get("/subscribe").get_data(as_text=True))
    resp = client.post(f"/u/{token}", data={"csrf_token": csrf, "action": "resubscribe"})
    assert resp.status_code == 400
    assert status_of(config, ADDRESS) == "bounced"


def test_form_post_without_csrf_token_changes_nothing(client, config, token):
    client.get(f"/u/{token}")       # the session exists; the form field is what is missing
    resp = client.post(f"/u/{token}", data={"action": "unsubscribe"})
    assert resp.status_code == 400
    assert status_of(config, ADDRESS) == "active"


def test_post_with_another_body_is_not_one_click(client, config, token):
    resp = client.post(f"/u/{token}", data={"List-Unsubscribe": "Yes"})
    assert resp.status_code == 400
    assert status_of(config, ADDRESS) == "active"


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_token_changed_by_one_character_is_refused(client, config, token, where):
    position = {"first": 0, "middle": len(token) // 2, "last": len(token) - 1}[where]
    bad = one_char_changed(token, position)
    assert client.post(f"/u/{bad}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    resp = client.get(f"/u/{bad}")
    assert resp.status_code == 400
    assert "not valid" in resp.get_data(as_text=True)
    assert status_of(config, ADDRESS) == "active"


def test_every_spelling_of_the_last_character_but_ours_is_refused(client, config, token):
    # base64 decoders ignore the unused bits of the last character: those spellings must fail too.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for c in alphabet.replace(token[-1], ""):
        resp = client.post(f"/u/{token[:-1]}{c}", data={"List-Unsubscribe": "One-Click"})
        assert resp.status_code == 400, c
    assert status_of(config, ADDRESS) == "active"


@pytest.mark.parametrize("bad", ["nonsense", "a" * 600, "abc.def", "....", "%00abcdefgh"])
def test_malformed_tokens_are_refused(client, config, bad):
    assert client.post(f"/u/{bad}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert client.get(f"/u/{bad}").status_code == 400
    assert status_of(config, ADDRESS) == "active"


def test_token_from_another_key_is_refused(client, config):
    from newsletter.signing import Signer

    sub = store(config).get(ADDRESS, "default")
    forged = Signer(b"another-key-entirely-0123456789").unsubscribe_token(ADDRESS, "default", subscriber_id=sub.id)
    assert client.post(f"/u/{forged}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert status_of(config, ADDRESS) == "active"


def test_confirm_token_is_not_an_unsubscribe_token(client, config):
    confirm = confirm_token(config, ADDRESS)
    assert client.post(f"/u/{confirm}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert status_of(config, ADDRESS) == "active"


def test_valid_token_for_a_gone_subscriber_answers_200_and_changes_nothing(client, config, token):
    # A removed subscriber, and a test copy to an address that was never on the list: the link is
    # ours, so the page says honestly that there is nothing to do, and RFC 8058's POST gets a 2xx.
    store(config).remove(ADDRESS, "default")
    ghost = signer(config).unsubscribe_token("ghost@example.org", "default", subscriber_id=None)
    for link in (token, ghost):
        resp = client.get(f"/u/{link}")
        assert resp.status_code == 200 and "not on our list" in resp.get_data(as_text=True)
        assert client.post(f"/u/{link}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    csrf = csrf_from(client.get("/subscribe").get_data(as_text=True))
    resp = client.post(f"/u/{token}", data={"csrf_token": csrf, "action": "resubscribe"})
    assert resp.status_code == 200 and "not on our list" in resp.get_data(as_text=True)
    assert status_of(config, ADDRESS) is None and status_of(config, "ghost@example.org") is None
    assert status_of(config, "other@example.org") == "active"


def test_a_reused_id_does_not_make_an_old_link_name_someone_else(client, config, token):
    # Deleting the newest row lets SQLite hand its id out again: the link's binding (a keyed hash
    # of address and list) tells the new subscriber apart.
    from newsletter.db import get_engine, subscribers
    from sqlalchemy import insert
    from newsletter.timeutil import utcnow

    old = store(config).get(ADDRESS, "default")
    store(config).remove(ADDRESS, "default")
    store(config).remove("other@example.org", "default")
    with get_engine(config).begin() as conn:
        conn.execute(insert(subscribers).values(
            id=old.id, list="default", email="newcomer@example.org", email_key="newcomer@example.org",
            name="", fields={}, status="active", created_at=utcnow(), updated_at=utcnow()))
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert status_of(config, "newcomer@example.org") == "active"


def test_other_lists_are_untouched(client, config):
    store(config).add(ADDRESS, list_name="weekly", status="active")
    token = unsubscribe_token(config, ADDRESS, "weekly")
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert status_of(config, ADDRESS, "weekly") == "unsubscribed"
    assert status_of(config, ADDRESS, "default") == "active"
