"""Links and their limits: confirmation links are single-use and dead after an unsubscribe,
sign-ups and confirmations are counted per mailbox, links of earlier releases (which named the
address) keep working only within signing.legacy_link_days of the issues they came in."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete

from newsletter.db import OPAQUE_LINKS_SINCE, dispose_engines, get_engine, meta, recall
from newsletter.web import create_app
from newsletter.web.links import legacy_link_in_window
from test_signing import legacy_confirm_token, legacy_unsubscribe_token
from web_support import (BASE_URL, SECRET, confirm_link, csrf_from, mail_to, make_config, mark_sent, settle,
                         status_of, store, unsubscribe_token)

NEW = "new.reader@example.org"
KEY = SECRET.encode()


@pytest.fixture
def config(tmp_path, monkeypatch, smtp):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    return make_config(tmp_path, smtp_port=smtp.port, rate_limit_per_hour=3)


def sign_up(client, email: str, remote: str = "10.9.0.1"):
    page = client.get("/subscribe", environ_base={"REMOTE_ADDR": remote}).get_data(as_text=True)
    resp = client.post("/subscribe", environ_base={"REMOTE_ADDR": remote},
                       data={"csrf_token": csrf_from(page), "email": email, "name": "", "website": ""})
    settle(client.application)
    return resp


def press_confirm(client, path: str, remote: str = "10.9.0.1"):
    """Open a confirm link's page and press its button; return (GET response, POST response)."""
    page = client.get(path, environ_base={"REMOTE_ADDR": remote})
    csrf = csrf_from(page.get_data(as_text=True)) if page.status_code == 200 and "csrf_token" in \
        page.get_data(as_text=True) else csrf_from(client.get("/subscribe").get_data(as_text=True))
    return page, client.post(path, data={"csrf_token": csrf}, environ_base={"REMOTE_ADDR": remote})


# -- confirmation links: single-use, void after an unsubscribe -----------------------------------

def test_an_old_confirmation_link_cannot_undo_a_later_unsubscribe(client, config, smtp):
    sign_up(client, NEW)
    path = confirm_link(mail_to(smtp, NEW)[0]).removeprefix(BASE_URL)
    _, done = press_confirm(client, path)
    assert done.status_code == 200 and status_of(config, NEW) == "active"
    one_click = client.post(f"/u/{unsubscribe_token(config, NEW)}", data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200 and status_of(config, NEW) == "unsubscribed"
    # Within its 7 days, the old link is refused: on its page and on the button.
    page, again = press_confirm(client, path, remote="10.9.0.2")
    assert page.status_code == 400 and again.status_code == 400
    assert "used already" in again.get_data(as_text=True)
    assert status_of(config, NEW) == "unsubscribed"
    # Asking back in sends a new link, and that one works.
    sign_up(client, NEW, remote="10.9.0.3")
    newer = confirm_link(mail_to(smtp, NEW)[-1]).removeprefix(BASE_URL)
    assert newer != path
    assert press_confirm(client, newer, remote="10.9.0.3")[1].status_code == 200
    assert status_of(config, NEW) == "active"


def test_a_confirmation_link_for_a_removed_sign_up_answers_200(client, config, smtp):
    sign_up(client, NEW)
    path = confirm_link(mail_to(smtp, NEW)[0]).removeprefix(BASE_URL)
    store(config).remove(NEW, "default")
    page, pressed = press_confirm(client, path)
    assert page.status_code == 200 and "no longer pending" in page.get_data(as_text=True)
    assert pressed.status_code == 200
    assert status_of(config, NEW) is None


def test_a_confirmation_link_of_an_earlier_release_still_confirms_once(client, config):
    store(config).add(NEW, status="unconfirmed")
    path = f"/confirm/{legacy_confirm_token(KEY, NEW, 'default')}"
    page, done = press_confirm(client, path)
    assert page.status_code == 200 and done.status_code == 200
    assert status_of(config, NEW) == "active"
    store(config).set_status(NEW, "default", "unsubscribed")
    assert press_confirm(client, path, remote="10.9.0.5")[1].status_code == 400
    assert status_of(config, NEW) == "unsubscribed"


# -- per-mailbox and per-client limits -----------------------------------------------------------

def test_tagged_addresses_of_one_mailbox_share_one_limit(client, smtp):
    # 30 sign-ups of victim+N@…, each from another network: the mailbox gets at most the limit.
    for i in range(30):
        address = f"victim+{i}@example.org" if i % 2 else f"Victim+{i}@EXAMPLE.org"
        assert sign_up(client, address, remote=f"10.20.{i}.1").status_code == 200
    with smtp.lock:
        to_victim = [r for r in smtp.messages if any(a.lower().startswith("victim") for a in r.rcpt_tos)]
    assert len(to_victim) == 3
    # Another mailbox at the same domain is not held back by it.
    assert sign_up(client, "someone.else@example.org", remote="10.30.0.1").status_code == 200
    assert len(mail_to(smtp, "someone.else@example.org")) == 1


def test_confirmations_are_limited_per_client_and_per_mailbox(client, config):
    store(config).add(NEW, status="unconfirmed")
    csrf = csrf_from(client.get("/subscribe").get_data(as_text=True))
    for _ in range(3):
        assert client.post("/confirm/not-a-real-token-at-all", data={"csrf_token": csrf},
                           environ_base={"REMOTE_ADDR": "10.40.0.1"}).status_code == 400
    resp = client.post("/confirm/not-a-real-token-at-all", data={"csrf_token": csrf},
                       environ_base={"REMOTE_ADDR": "10.40.0.1"})
    assert resp.status_code == 429
    # One address, many networks: its mailbox is limited too.
    from web_support import confirm_token

    answers = []
    for i in range(4):
        token = confirm_token(config, NEW)
        answers.append(client.post(f"/confirm/{token}", data={"csrf_token": csrf},
                                   environ_base={"REMOTE_ADDR": f"10.41.{i}.1"}).status_code)
        store(config).set_status(NEW, "default", "unconfirmed")
    assert answers[:3] == [200, 200, 200] and answers[3] == 429


# -- links of earlier releases ---------------------------------------------------------------

def sent_before_the_upgrade(config, issue_id: str) -> None:
    """Record issue_id as sent by an earlier release (which wrote no record of the switch to opaque
    links), then close the database as that release's process would."""
    with get_engine(config).begin() as conn:
        conn.execute(delete(meta))
    mark_sent(config, issue_id)
    dispose_engines()


def test_old_unsubscribe_links_work_for_issues_sent_before_the_switch(client, config):
    store(config).add(NEW, status="active")
    sent_before_the_upgrade(config, "2024-w01")     # with old links
    app = create_app(config)                        # the upgrade opens the database: the switch is recorded
    assert recall(get_engine(config), OPAQUE_LINKS_SINCE) is not None
    old = legacy_unsubscribe_token(KEY, NEW, "default")
    client = app.test_client()
    assert client.get(f"/u/{old}").status_code == 200
    assert client.post(f"/u/{old}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert status_of(config, NEW) == "unsubscribed"


def test_old_links_stop_when_their_issues_leave_the_window(tmp_path, monkeypatch, smtp):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    config = make_config(tmp_path, smtp_port=smtp.port)
    store(config).add(NEW, status="active")
    sent_before_the_upgrade(config, "2024-w01")
    app = create_app(config)
    s = app.extensions["newsletter"]
    sub = store(config).get(NEW, "default")
    days = config.signing.legacy_link_days
    assert legacy_link_in_window(s, sub)
    later = datetime.now(timezone.utc) + timedelta(days=days, hours=1)
    assert not legacy_link_in_window(s, sub, now=later), "the window has passed"
    # With a window of 0 days, no old link works at all.
    strict = dataclasses.replace(config, signing=dataclasses.replace(config.signing, legacy_link_days=0))
    old = legacy_unsubscribe_token(KEY, NEW, "default")
    resp = create_app(strict).test_client().post(f"/u/{old}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 400 and "long ago" in resp.get_data(as_text=True)
    assert status_of(config, NEW) == "active"


def test_issues_sent_after_the_switch_do_not_keep_old_links_alive(client, config):
    store(config).add(NEW, status="active")
    mark_sent(config, "2025-w10")                   # sent with opaque links: old ones gain nothing
    old = legacy_unsubscribe_token(KEY, NEW, "default")
    assert client.post(f"/u/{old}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert status_of(config, NEW) == "active"
    # Its own new link works.
    assert client.post(f"/u/{unsubscribe_token(config, NEW)}",
                       data={"List-Unsubscribe": "One-Click"}).status_code == 200


def test_an_old_link_for_an_address_no_longer_listed_answers_200(client, config):
    old = legacy_unsubscribe_token(KEY, "gone@example.org", "default")
    assert client.get(f"/u/{old}").status_code == 200
    assert client.post(f"/u/{old}", data={"List-Unsubscribe": "One-Click"}).status_code == 200


def test_links_do_not_show_the_address_in_full(client, config):
    store(config).add(NEW, status="active")
    token = unsubscribe_token(config, NEW)
    assert NEW.split("@")[0] not in token and hashlib.sha256(NEW.encode()).hexdigest()[:8] not in token
    html = client.get(f"/u/{token}").get_data(as_text=True)
    assert NEW not in html and "ne…@example.org" in html
