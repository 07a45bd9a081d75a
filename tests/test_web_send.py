"""Send now from the web editor and the API: the confirmation names the list and the recipients,
the send runs in the background through the ledger (each subscriber once, even on a double
submit), a stale render or a running send is refused, and the status shows counts and failures."""

from __future__ import annotations

import pytest

from admin_support import (GONE, READERS, REFUSED, SECRET, add_editor, admin_config, article_site,
                           built_issue, csrf_of, logged_in, readers, refuse_one)
from mail_servers import SMTPTestServer
from newsletter.db import get_engine
from newsletter.issues import issue_path
from newsletter.subscribers.store import SubscriberStore
from newsletter.web.app import create_app
from newsletter.web.sending import SENDS
from newsletter.workspace.accounts import Accounts
from web_support import mail_to


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Yield (app, config, smtp): an editor, four readers (one refused) and issue w1 built."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    with SMTPTestServer(refuse_one) as smtp, article_site() as site:
        config = admin_config(tmp_path, base_url="http://newsletter.test", smtp_port=smtp.port)
        add_editor(config)
        readers(config)
        built_issue(config, site)
        yield create_app(config), config, smtp


def _wait(app, issue_id="w1"):
    """Wait for the app's background send of issue_id to end."""
    tracked = app.extensions[SENDS].get(issue_id)
    if tracked is not None and tracked.thread is not None:
        tracked.thread.join(60)
        assert not tracked.running


def _post_send(client, page_html: str, **form):
    return client.post("/admin/issues/w1/send", data={"csrf_token": csrf_of(page_html), **form})


def test_send_now_confirms_sends_once_and_lists_failures(setup):
    app, config, smtp = setup
    client = logged_in(app.test_client())
    editor = client.get("/admin/issues/w1").text
    assert 'href="/admin/issues/w1/send"' in editor and "Send now" in editor
    confirm = client.get("/admin/issues/w1/send").text
    # The list and the exact number planned: four active readers, not the unsubscribed one.
    assert "<strong data-list>default</strong>" in confirm and "<strong data-recipients>4</strong>" in confirm
    assert "Send to 4 recipients" in confirm and 'for="send-confirm">Type w1 to confirm' in confirm

    wrong = _post_send(client, confirm, confirm="w2")
    assert wrong.status_code == 303 and wrong.headers["Location"].endswith("/admin/issues/w1/send")
    assert "type the issue id" in client.get("/admin/issues/w1/send").text
    assert smtp.messages == [] and app.extensions["newsletter"].ledger.issue_state("w1") is None

    first = _post_send(client, confirm, confirm="w1")
    second = _post_send(client, confirm, confirm="w1")          # a double click: the same form again
    assert first.status_code == second.status_code == 303
    _wait(app)
    again = _post_send(client, confirm, confirm="w1")           # and once more after it finished
    assert again.status_code == 303
    report = client.get("/admin/issues/w1/send").text
    for address in READERS:
        assert len(mail_to(smtp, address)) == 1, address
    assert mail_to(smtp, REFUSED) == [] and mail_to(smtp, GONE) == []
    assert "went to everyone on list" in report

    status = client.get("/admin/issues/w1/send/status.json").json
    assert status["phase"] == "finished" and status["finished"] and not status["running"]
    assert status["counts"]["sent"] == 3 and status["counts"]["bounced"] == 1
    assert status["total"] == status["done"] == 4 and status["percent"] == 100
    # The failure with its reply class and the server's text, escaped.
    assert REFUSED in report and "recipient" in report
    assert "550 5.1.1 &lt;b&gt;No such user&lt;/b&gt; here" in report and "<b>No such user" not in report
    assert "Send to" not in report                      # nothing left to confirm
    editor = client.get("/admin/issues/w1").text
    assert "Delivery report: 1 failure" in editor and 'data-count="sent">3<' in editor

    # The dashboard: delivered, bounced, and the reader who unsubscribed after it.
    SubscriberStore(get_engine(config)).set_status(READERS[0], "default", "unsubscribed")
    dash = client.get("/admin/dashboard").text
    assert "3 delivered, 1 bounced, 1 unsubscribed" in dash


def test_stale_render_is_refused_then_build_and_send(setup):
    app, config, smtp = setup
    client = logged_in(app.test_client())
    path = issue_path(config.paths.issues, "w1")
    path.write_text(path.read_text().replace("Week one", "Week one, edited"))
    page = client.get("/admin/issues/w1/send").text
    assert "The built issue is out of date" in page and "Build and send to 4 recipients" in page
    refused = _post_send(client, page, confirm="w1")
    assert refused.status_code == 303
    assert "Not sent:" in client.get("/admin/issues/w1/send").text and smtp.messages == []
    assert _post_send(client, page, confirm="w1", build="1").status_code == 303
    _wait(app)
    assert len(smtp.messages) == 3
    assert all("Week one, edited" in m.message["Subject"] for m in smtp.messages)


def test_a_send_running_elsewhere_is_refused_with_a_clear_message(setup):
    from newsletter.delivery.lock import send_lock

    app, config, smtp = setup
    client = logged_in(app.test_client())
    page = client.get("/admin/issues/w1/send").text
    with send_lock(config.paths.state, get_engine(config), "w1"):      # `newsletter send w1` running
        _post_send(client, page, confirm="w1")
    assert "is being sent by another process right now" in client.get("/admin/issues/w1/send").text
    assert smtp.messages == []


def test_api_send_and_status(setup):
    app, config, smtp = setup
    client = app.test_client()
    auth = {"Authorization": f"Bearer {Accounts(get_engine(config)).create_token('t')}"}
    assert client.post("/api/v1/issues/w1/send", json={}, headers=auth).status_code == 400
    wrong = client.post("/api/v1/issues/w1/send", json={"confirm": "w2"}, headers=auth)
    assert wrong.status_code == 400 and wrong.json["error"]["code"] == "confirmation_mismatch"
    nobody = client.post("/api/v1/issues/w1/send", json={"confirm": "w1", "list": "nolist"}, headers=auth)
    assert nobody.status_code == 409 and nobody.json["error"]["code"] == "no_recipients"
    before = client.get("/api/v1/issues/w1/status", headers=auth).json
    assert before["phase"] == "not sent" and before["total"] == 0
    started = client.post("/api/v1/issues/w1/send", json={"confirm": "w1"}, headers=auth)
    assert started.status_code == 202
    assert started.json == {"issue": "w1", "list": "default", "recipients": 4, "queued": False}
    twice = client.post("/api/v1/issues/w1/send", json={"confirm": "w1"}, headers=auth)
    assert twice.status_code == 409 and twice.json["error"]["code"] in ("send_running", "already_sent")
    _wait(app)
    status = client.get("/api/v1/issues/w1/status?per_page=1", headers=auth).json
    assert status["phase"] == "finished" and status["counts"]["sent"] == 3
    assert status["failures"]["total"] == 1 and status["failures"]["per_page"] == 1
    (failure,) = status["failures"]["items"]
    assert failure == {"email": REFUSED, "list": "default", "state": "bounced", "reply_class": "recipient",
                       "reply": "550 5.1.1 <b>No such user</b> here"}
    after = client.post("/api/v1/issues/w1/send", json={"confirm": "w1"}, headers=auth)
    assert after.status_code == 409 and after.json["error"]["code"] == "already_sent"
    assert len(smtp.messages) == 3


def test_api_refuses_a_stale_render(setup):
    app, config, smtp = setup
    client = app.test_client()
    auth = {"Authorization": f"Bearer {Accounts(get_engine(config)).create_token('t')}"}
    path = issue_path(config.paths.issues, "w1")
    path.write_text(path.read_text().replace("Week one", "Week two"))
    stale = client.post("/api/v1/issues/w1/send", json={"confirm": "w1"}, headers=auth)
    assert stale.status_code == 409 and stale.json["error"]["code"] == "stale_render"
    built = client.post("/api/v1/issues/w1/send", json={"confirm": "w1", "build": True}, headers=auth)
    assert built.status_code == 202
    _wait(app)
    assert len(smtp.messages) == 3


@pytest.mark.postgres
def test_api_send_hands_the_send_to_queue_workers(tmp_path, pg_url, monkeypatch):
    """With [queue] enabled the send is queued in chunks (as `newsletter send` does) and the status
    follows the workers; a second request while chunks are open is refused."""
    import collections

    from queue_support import SECRET as QUEUE_SECRET, SECRET_ENV, Workers, wait_for, write_config
    from newsletter.config import load_config
    from store_support import write_csv

    monkeypatch.setenv(SECRET_ENV, QUEUE_SECRET)
    with SMTPTestServer() as smtp, article_site() as site:
        config = load_config(write_config(tmp_path, pg_url, smtp_port=smtp.port, queue="chunk_size = 2"))
        SubscriberStore(get_engine(config)).import_csv(write_csv(tmp_path / "list.csv", 5), "default")
        built_issue(config, site)
        app = create_app(config)
        client = app.test_client()
        auth = {"Authorization": f"Bearer {Accounts(get_engine(config)).create_token('t')}"}
        started = client.post("/api/v1/issues/w1/send", json={"confirm": "w1"}, headers=auth)
        assert started.status_code == 202 and started.json["queued"] and started.json["recipients"] == 5
        queued = client.get("/api/v1/issues/w1/status", headers=auth).json
        assert queued["phase"] == "running" and queued["total"] == 5 and queued["done"] == 0
        again = client.post("/api/v1/issues/w1/send", json={"confirm": "w1"}, headers=auth)
        assert again.status_code == 409 and again.json["error"]["code"] == "send_running"
        workers = Workers(tmp_path / "config.toml")
        workers.start(1)
        try:
            wait_for(lambda: client.get("/api/v1/issues/w1/status", headers=auth).json["finished"], 60,
                     "the workers to finish the send", workers.output)
        finally:
            workers.stop()
        status = client.get("/api/v1/issues/w1/status", headers=auth).json
        assert status["counts"]["sent"] == 5 and status["done"] == 5 and not status["running"]
        per_address = collections.Counter(r for m in smtp.messages for r in m.rcpt_tos)
        assert len(per_address) == 5 and set(per_address.values()) == {1}


def test_dashboard_shows_a_running_send_and_the_editor_its_progress(setup):
    app, config, smtp = setup
    client = logged_in(app.test_client())
    app.extensions["newsletter"].ledger.plan("w1", "default")      # a send started elsewhere (the CLI)
    dash = client.get("/admin/dashboard").text
    assert 'max="4" value="0"' in dash and "0 of 4 done" in dash
    editor = client.get("/admin/issues/w1").text
    assert 'data-phase="stopped"' in editor and "Resume sending" in editor
    page = client.get("/admin/issues/w1/send").text
    assert "Resume the send" in page and "<strong data-recipients>4</strong>" in page


def test_rows_of_unknown_fate_are_not_resent_from_the_web(setup):
    from sqlalchemy import update

    from newsletter.db import deliveries

    app, config, smtp = setup
    client = app.test_client()
    auth = {"Authorization": f"Bearer {Accounts(get_engine(config)).create_token('t')}"}
    app.extensions["newsletter"].ledger.plan("w1", "default")
    with get_engine(config).begin() as conn:      # as a run killed while every message was in flight leaves them
        conn.execute(update(deliveries).values(status="unknown"))
    refused = client.post("/api/v1/issues/w1/send", json={"confirm": "w1"}, headers=auth)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "already_sent"
    assert "--retry-unknown" in refused.json["error"]["message"] and smtp.messages == []
    status = client.get("/api/v1/issues/w1/status", headers=auth).json
    assert status["phase"] == "stopped" and status["failures"]["total"] == 4
    page = logged_in(client).get("/admin/issues/w1/send").text
    assert "4 messages were in flight" in page and "Type w1 to confirm" not in page
