"""The web editor through Flask's test client: the login wall, CSRF, the editor's saves and
conflicts, the inbox, subscribers, and the users/tokens commands."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from admin_support import (EDITOR, PASSWORD, SECRET, add_editor, admin_config, article_site, csrf_of,
                           logged_in)
from newsletter.workspace.accounts import Accounts
from newsletter.cli import cli
from newsletter.db import get_engine
from newsletter.issues import issue_path, load_issue
from newsletter.web.app import create_app

PAGES = ["/admin/", "/admin/dashboard", "/admin/inbox", "/admin/subscribers", "/admin/issues/new",
         "/admin/issues/w1", "/admin/issues/w1/preview.html", "/admin/inbox/clip",
         "/admin/subscribers/export.csv"]


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    cfg = admin_config(tmp_path, base_url="http://newsletter.test")
    add_editor(cfg)
    return cfg


@pytest.fixture
def app(config):
    return create_app(config)


def _create(client, issue_id="w1", title="Week one"):
    token = csrf_of(client.get("/admin/issues/new").text)
    resp = client.post("/admin/issues", data={"csrf_token": token, "issue_id": issue_id, "title": title})
    assert resp.status_code == 302, resp.text
    return client.get(f"/admin/issues/{issue_id}")


def _editor_form(html: str) -> dict[str, str]:
    """Return the editor form's fields as the browser would post them (without a button)."""
    form = html.split('id="editor-form"', 1)[1].split("</form>", 1)[0]
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)" value="([^"]*)"', form))
    for name, value in re.findall(r'<input[^>]*id="[^"]+" name="([^"]+)" value="([^"]*)"', form):
        fields[name] = value
    for name, value in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', form):
        fields[name] = value.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")
    return fields


def test_nothing_answers_without_a_session(app):
    client = app.test_client()
    for path in PAGES:
        resp = client.get(path)
        assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"], path
    resp = client.post("/admin/issues", data={"issue_id": "x"})
    assert resp.status_code == 400          # no CSRF token: refused before anything else
    assert not list((app.extensions["newsletter"].config.paths.issues).glob("*.toml"))


def test_login_cookie_flags_logout_and_wrong_password(app):
    client = app.test_client()
    page = client.get("/admin/login")
    assert 'for="username">Username<' in page.text and 'for="password">Password<' in page.text
    bad = client.post("/admin/login", data={"csrf_token": csrf_of(page.text), "username": EDITOR,
                                            "password": "wrong password!"})
    assert bad.status_code == 401 and "Wrong user name or password" in bad.text
    ok = client.post("/admin/login", data={"csrf_token": csrf_of(page.text), "username": EDITOR,
                                           "password": PASSWORD, "next": "https://evil.example/x"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/admin/dashboard"   # no open redirect
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    dash = client.get("/admin/dashboard")
    assert dash.status_code == 200 and "script-src 'self'" in dash.headers["Content-Security-Policy"]
    out = client.post("/admin/logout", data={"csrf_token": csrf_of(dash.text)})
    assert out.status_code == 302
    assert client.get("/admin/dashboard").status_code == 302


def test_login_attempts_are_rate_limited(app):
    client = app.test_client()
    token = csrf_of(client.get("/admin/login").text)
    codes = [client.post("/admin/login", data={"csrf_token": token, "username": EDITOR,
                                               "password": f"guess number {i}"}).status_code
             for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    right = client.post("/admin/login", data={"csrf_token": token, "username": EDITOR, "password": PASSWORD})
    assert right.status_code == 429         # even the right password waits for the window


def test_a_copy_of_the_session_cookie_stops_working_after_logout(app):
    client = logged_in(app.test_client())
    copy = app.test_client()
    cookie = client.get_cookie("newsletter_session")
    copy.set_cookie("newsletter_session", cookie.value, domain=cookie.domain)
    assert copy.get("/admin/dashboard").status_code == 200   # the stolen copy works while logged in ...
    dash = client.get("/admin/dashboard")
    assert client.post("/admin/logout", data={"csrf_token": csrf_of(dash.text)}).status_code == 302
    assert copy.get("/admin/dashboard").status_code == 302      # ... and not after the logout
    assert copy.get("/api/v1/issues").status_code == 401


def test_a_strangers_failed_logins_do_not_lock_the_editor_out(app):
    stranger = app.test_client()
    stranger.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    token = csrf_of(stranger.get("/admin/login").text)
    codes = [stranger.post("/admin/login", data={"csrf_token": token, "username": EDITOR,
                                                 "password": f"guess number {i}"}).status_code
             for i in range(11)]
    assert codes[-1] == 429                              # the stranger's address is slowed down ...
    editor = app.test_client()
    editor.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    for _ in range(12):                                  # ... the editor, elsewhere, is not; and
        page = editor.get("/admin/login")                # logging in does not count against anyone
        ok = editor.post("/admin/login", data={"csrf_token": csrf_of(page.text), "username": EDITOR,
                                               "password": PASSWORD})
        assert ok.status_code == 302, ok.text
        dash = editor.get("/admin/dashboard")
        editor.post("/admin/logout", data={"csrf_token": csrf_of(dash.text)})


def test_session_of_removed_user_stops_working(app, config):
    client = logged_in(app.test_client())
    assert client.get("/admin/dashboard").status_code == 200
    Accounts(get_engine(config)).remove_user(EDITOR)
    assert client.get("/admin/dashboard").status_code == 302


def test_editor_saves_reorders_removes_and_refuses_a_stale_save(app, config):
    client = logged_in(app.test_client())
    path = issue_path(config.paths.issues, "w1")
    with article_site() as site:
        page = _create(client)
        assert 'title="Preview at 375 px"' in page.text and 'title="Preview at 640 px"' in page.text
        form = _editor_form(page.text)
        form.update(links=f"{site}/a1\n{site}/a2 {site}/missing", action="add")
        added = client.post("/admin/issues/w1", data=form)
    assert added.status_code == 200
    assert added.text.count('class="result added"') == 2 and 'class="result failed"' in added.text
    assert "404" in added.text
    assert f"{site}/missing</span>: HTTP 404" in added.text       # the address once, then why
    path.write_text(path.read_text() + "# a comment the CLI user wrote\n")
    page = client.get("/admin/issues/w1")
    form = _editor_form(page.text)
    urls = [form["item-0-url"], form["item-1-url"]]
    form.update({"item-1-summary": "An edited summary.", "title": "Week one, edited", "action": "up-1"})
    assert client.post("/admin/issues/w1", data=form).status_code == 302
    issue = load_issue(config.paths.issues, "w1")
    assert [i.url for i in issue.items] == urls[::-1]
    assert issue.items[0].summary == "An edited summary." and issue.title == "Week one, edited"
    assert "# a comment the CLI user wrote" in path.read_text()
    preview = client.get("/admin/issues/w1/preview.html")
    assert "An edited summary." in preview.text and "frame-ancestors 'self'" in preview.headers["Content-Security-Policy"]

    # A second browser loaded the page before this change: its save is refused, its text shown back.
    stale = _editor_form(client.get("/admin/issues/w1").text)
    fresh = dict(stale, **{"item-0-summary": "First browser's words.", "action": "save"})
    assert client.post("/admin/issues/w1", data=fresh).status_code == 302
    stale.update({"item-0-summary": "Second browser's words.", "action": "save"})
    refused = client.post("/admin/issues/w1", data=stale)
    assert refused.status_code == 409 and "changed elsewhere" in refused.text
    assert "Second browser&#39;s words." in refused.text          # nothing typed is lost
    assert load_issue(config.paths.issues, "w1").items[0].summary == "First browser's words."
    # "Save anyway" replaces exactly the version it was shown.
    again = _editor_form(refused.text)
    again["action"] = "overwrite"
    assert client.post("/admin/issues/w1", data=again).status_code == 302
    assert load_issue(config.paths.issues, "w1").items[0].summary == "Second browser's words."

    form = _editor_form(client.get("/admin/issues/w1").text)
    form["action"] = "remove-0"
    assert client.post("/admin/issues/w1", data=form).status_code == 302
    assert [i.url for i in load_issue(config.paths.issues, "w1").items] == [urls[0]]


def test_note_section_remove_restore_and_regenerate_in_the_editor(app, config):
    client = logged_in(app.test_client())
    page = _create(client)
    with article_site() as site:
        form = _editor_form(page.text)
        form.update(links=f"{site}/a1\n{site}/a2", action="add")
        client.post("/admin/issues/w1", data=form)
        page = client.get("/admin/issues/w1")
        assert '<label for="item-0-note">Note' in page.text and '<label for="item-0-section">Section' in page.text
        assert '<option value="lead"' in page.text and '<label for="item-0-summarizer">Summariser' in page.text
        form = _editor_form(page.text)
        first, second = form["item-0-url"], form["item-1-url"]
        title = form["item-0-title"]
        form.update({"item-1-note": "Worth *reading* twice.", "item-1-section": "Long reads", "action": "remove-0"})
        assert client.post("/admin/issues/w1", data=form).status_code == 302
        issue = load_issue(config.paths.issues, "w1")
        assert [(i.url, i.note, i.section) for i in issue.items] == [(second, "Worth *reading* twice.", "Long reads")]
        assert issue_path(config.paths.issues, "w1").read_text().count(first) == 1     # as its tombstone

        # The removed item is listed (title and link) and comes back as it was.
        page = client.get("/admin/issues/w1")
        removed = page.text.split('id="removed"', 1)[1].split("</details>", 1)[0]
        assert "Removed (1)" in removed and title in removed and first in removed
        form = _editor_form(page.text)
        form["action"] = "restore-0"
        restored = client.post("/admin/issues/w1", data=form, follow_redirects=True)
        assert "Restored: " in restored.text and 'id="removed"' not in restored.text
        assert [i.url for i in load_issue(config.paths.issues, "w1").items] == [second, first]

        # Regenerate: the script's JSON call, and the same button without a script.
        token = csrf_of(restored.text)
        lead = client.post("/admin/issues/w1/blurb", data={"csrf_token": token, "url": first, "summarizer": "lead"})
        assert lead.status_code == 200 and lead.json["summary"]
        bad = client.post("/admin/issues/w1/blurb", data={"csrf_token": token, "url": first, "summarizer": "nope"})
        assert bad.status_code == 422 and "unknown summariser 'nope'" in bad.json["error"] and "\n" not in bad.json["error"]
        form = _editor_form(restored.text)
        form.update({"item-1-summarizer": "lead", "item-0-title": "Kept while regenerating", "action": "blurb-1"})
        shown = client.post("/admin/issues/w1", data=form)
    assert shown.status_code == 200 and "new summary from the lead summariser" in shown.text
    assert _editor_form(shown.text)["item-1-summary"] == lead.json["summary"]       # shown, not yet saved
    assert load_issue(config.paths.issues, "w1").items[0].title == "Kept while regenerating"
    unsaved = _editor_form(shown.text)
    unsaved["action"] = "save"
    assert client.post("/admin/issues/w1", data=unsaved).status_code == 302
    assert load_issue(config.paths.issues, "w1").items[1].summary == lead.json["summary"]


def test_one_link_at_a_time_for_the_progress_list(app, config):
    client = logged_in(app.test_client())
    token = csrf_of(_create(client).text)
    with article_site() as site:
        ok = client.post("/admin/issues/w1/link", data={"csrf_token": token, "links": f"{site}/a3"})
        gone = client.post("/admin/issues/w1/link", data={"csrf_token": token, "links": f"{site}/gone"})
        again = client.post("/admin/issues/w1/link", data={"csrf_token": token, "links": f"{site}/a3"})
    assert ok.json["results"] == [{"kind": "added", "url": f"{site}/a3", "why": "added"}]
    assert gone.json["results"][0]["kind"] == "failed" and "404" in gone.json["results"][0]["why"]
    assert again.json["results"][0]["kind"] == "skipped"
    assert client.post("/admin/issues/w1/link", data={"links": f"{site}/a1"}).status_code == 400   # CSRF
    assert len(load_issue(config.paths.issues, "w1").items) == 1


def test_bad_issue_id_and_duplicate_are_one_line(app):
    client = logged_in(app.test_client())
    token = csrf_of(client.get("/admin/issues/new").text)
    bad = client.post("/admin/issues", data={"csrf_token": token, "issue_id": "../etc", "title": "x"})
    assert bad.status_code == 400 and "invalid issue id" in bad.text
    _create(client)
    dup = client.post("/admin/issues", data={"csrf_token": token, "issue_id": "w1", "title": "x"})
    assert dup.status_code == 400 and "already exists" in dup.text


def test_inbox_paste_dismiss_is_remembered_and_move_into_issue(app, config):
    from newsletter.workspace.inbox import Inbox

    client = logged_in(app.test_client())
    _create(client)
    with article_site() as site:
        token = csrf_of(client.get("/admin/inbox").text)
        client.post("/admin/inbox/links", data={"csrf_token": token, "links": f"{site}/a1 {site}/a2 not-a-url"})
        inbox = Inbox(get_engine(config))
        (a2, a1), total = inbox.list(waiting_only=True)
        assert total == 2 and a1.url.endswith("/a1")
        assert client.post(f"/admin/inbox/{a2.id}/dismiss", data={"csrf_token": token}).status_code == 302
        again = client.post("/admin/inbox/links", data={"csrf_token": token, "links": f"{site}/a2"},
                            follow_redirects=True)
        assert inbox.list(waiting_only=True)[1] == 1          # dismissed links stay dismissed
        assert "0 link(s) put in the inbox" in again.text and "1 dismissed before" in again.text
        clipped = client.post("/admin/inbox/clip", data={"csrf_token": token, "url": f"{site}/a2", "title": "A2"},
                              follow_redirects=True)          # the bookmarklet says so too
        assert "Put in the inbox" not in clipped.text and "dismissed before" in clipped.text
        moved = client.post(f"/admin/inbox/{a1.id}/move", data={"csrf_token": token, "issue": "w1"},
                            follow_redirects=True)
        clipped = client.post("/admin/inbox/clip", data={"csrf_token": token, "url": f"{site}/a1", "title": "A1"},
                              follow_redirects=True)
        assert "Put in the inbox" not in clipped.text and "Already in issue w1: A1" in clipped.text
    assert "Added to issue w1" in moved.text
    # One item, from a1 (its link is the canonical one the page declares, not the address fetched).
    assert len(load_issue(config.paths.issues, "w1").items) == 1
    assert inbox.get(a1.id).added_to == "w1"


def test_subscribers_add_search_unsubscribe_import_export(app, config):
    client = logged_in(app.test_client())
    token = csrf_of(client.get("/admin/subscribers").text)
    client.post("/admin/subscribers", data={"csrf_token": token, "email": "ann@example.org", "name": "Ann"})
    found = client.get("/admin/subscribers?q=ann")
    assert "ann@example.org" in found.text
    client.post("/admin/subscribers/status", data={"csrf_token": token, "email": "ann@example.org",
                                                   "status": "unsubscribed"})
    assert app.extensions["newsletter"].subscribers.get("ann@example.org", "default").status == "unsubscribed"
    # An unsubscribe is the subscriber's choice: the page does not undo it (as `subscribers reactivate`).
    assert "Reactivate ann@example.org" not in client.get("/admin/subscribers?q=ann").text
    refused = client.post("/admin/subscribers/status", data={"csrf_token": token, "email": "ann@example.org",
                                                             "status": "active"}, follow_redirects=True)
    assert "only they can subscribe again" in refused.text
    assert app.extensions["newsletter"].subscribers.get("ann@example.org", "default").status == "unsubscribed"
    # A bounce made by mistake is undone from the page.
    client.post("/admin/subscribers", data={"csrf_token": token, "email": "dan@example.org"})
    app.extensions["newsletter"].subscribers.set_status("dan@example.org", "default", "bounced")
    assert "Reactivate dan@example.org" in client.get("/admin/subscribers?q=dan").text
    client.post("/admin/subscribers/status", data={"csrf_token": token, "email": "dan@example.org",
                                                   "status": "active"})
    assert app.extensions["newsletter"].subscribers.get("dan@example.org", "default").status == "active"
    import io
    upload = io.BytesIO(b"email,name\nbob@example.org,Bob\nnot an address,X\n")
    result = client.post("/admin/subscribers/import", data={"csrf_token": token, "file": (upload, "s.csv")},
                         content_type="multipart/form-data")
    assert "1 added" in result.text and "Line 3" in result.text
    # The import's report comes with the list as it now is, not an empty search.
    assert "bob@example.org" in result.text and "No subscriber matches" not in result.text
    export = client.get("/admin/subscribers/export.csv")
    assert export.status_code == 200 and "bob@example.org" in export.text

    # Erase: the address and its data go, a hashed suppression stays, no import brings it back.
    client.post("/admin/subscribers/erase", data={"csrf_token": token, "email": "Bob@example.org"})
    store = app.extensions["newsletter"].subscribers
    assert store.get("bob@example.org", "default") is None
    again = client.post("/admin/subscribers/import", data={
        "csrf_token": token, "file": (io.BytesIO(b"email\nbob@example.org\ncat@example.org\n"), "s.csv")},
        content_type="multipart/form-data")
    assert "1 added" in again.text and "1 kept" in again.text
    assert store.get("bob@example.org", "default") is None
    with pytest.raises(Exception, match="erased"):
        store.add("BOB@example.org", list_name="default")
    from sqlalchemy import text
    with get_engine(config).connect() as conn:
        dump = " ".join(str(r) for r in conn.execute(text("select * from erased_addresses")))
    assert "bob" not in dump.lower()


def test_users_and_tokens_commands(config):
    runner = CliRunner()
    base = ["--config", str(config.path)]
    added = runner.invoke(cli, [*base, "users", "add", "second", "--password-stdin"], input="another long password\n")
    assert added.exit_code == 0, added.output
    short = runner.invoke(cli, [*base, "users", "add", "third", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least" in short.output and "Traceback" not in short.output
    prompted = runner.invoke(cli, [*base, "users", "add", "fourth"], input="prompted password\nprompted password\n")
    assert prompted.exit_code == 0 and "prompted password" not in prompted.output
    assert Accounts(get_engine(config)).check_password("fourth", "prompted password")
    listed = runner.invoke(cli, [*base, "users", "list"])
    assert "second" in listed.output and EDITOR in listed.output
    assert runner.invoke(cli, [*base, "users", "remove", "second"]).exit_code == 0
    assert runner.invoke(cli, [*base, "users", "remove", "second"]).exit_code == 1

    made = CliRunner().invoke(cli, [*base, "tokens", "create", "robot"])
    assert made.exit_code == 0
    token = made.stdout.strip()
    assert made.stdout == token + "\n" and token.startswith("nlt_")
    accounts = Accounts(get_engine(config))
    assert accounts.token_name(token) == "robot"
    assert token not in runner.invoke(cli, [*base, "tokens", "list"]).output
    assert runner.invoke(cli, [*base, "tokens", "revoke", "robot"]).exit_code == 0
    assert accounts.token_name(token) is None


def test_dashboard_counts_lists_and_recent_bounces(app, config):
    store = app.extensions["newsletter"].subscribers
    store.add("one@example.org")
    store.add("two@example.org", list_name="friends")
    store.add("dead@example.org", status="bounced")
    client = logged_in(app.test_client())
    _create(client)
    page = client.get("/admin/dashboard").text
    assert re.search(r"<strong>1</strong> draft", page) and "Week one" in page
    assert re.search(r"friends</a>: <strong>1</strong> active", page)
    assert "dead@example.org" in page.split("Recent bounces", 1)[1]


def test_session_cookie_is_secure_under_https(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    cfg = admin_config(tmp_path, base_url="https://news.example.org")
    add_editor(cfg)
    client = create_app(cfg).test_client()
    token = csrf_of(client.get("/admin/login", base_url="https://news.example.org").text)
    resp = client.post("/admin/login", base_url="https://news.example.org",
                       data={"csrf_token": token, "username": EDITOR, "password": PASSWORD})
    assert resp.status_code == 302 and "Secure" in resp.headers["Set-Cookie"]


def test_schedule_after_a_change_elsewhere_says_what_to_do_in_the_page(app, config):
    """The issue file changed since its preview was built (the CLI, $EDITOR): the page refuses to
    schedule the old render and tells the editor what to do here, not which command to run."""
    from newsletter.issues import append_items
    from newsletter.models import Item

    client = logged_in(app.test_client())
    _create(client)
    append_items(config.paths.issues, "w1", [Item(url="https://news.example.org/a", title="A", summary="S.")])
    page = client.get("/admin/issues/w1")                      # builds the preview
    token = csrf_of(page.text)
    path = issue_path(config.paths.issues, "w1")
    path.write_text(path.read_text().replace('title = "Week one"', 'title = "Week one, from the CLI"'))
    later = (datetime.now() + timedelta(days=3)).strftime("%Y-%m-%dT07:00")
    refused = client.post("/admin/issues/w1/schedule", data={"csrf_token": token, "at": later},
                          follow_redirects=True)
    assert "Not scheduled" in refused.text and "newsletter build" not in refused.text
    assert "check the preview, then schedule again" in refused.text
    assert "Week one, from the CLI" in client.get("/admin/issues/w1/preview.html").text
    done = client.post("/admin/issues/w1/schedule", data={"csrf_token": token, "at": later},
                       follow_redirects=True)
    assert "Scheduled: send issue w1" in done.text


def test_dashboard_warns_when_no_scheduler_runs_to_fire_the_next_job(app, config):
    """`newsletter serve` alone fires no job: the dashboard says so beside the next one, as
    `newsletter jobs` does, until a `newsletter run` holds the scheduler's lease."""
    from newsletter.issues import append_items
    from newsletter.models import Item
    from newsletter.schedule.lease import Lease
    from newsletter.schedule.scheduler import schedule_send

    client = logged_in(app.test_client())
    _create(client)
    append_items(config.paths.issues, "w1", [Item(url="https://news.example.org/a", title="A", summary="S.")])
    client.get("/admin/issues/w1")                              # builds the preview
    schedule_send(config, "w1", (datetime.now() + timedelta(days=3)).strftime("%Y-%m-%d 07:00"))
    page = client.get("/admin/dashboard").text
    assert "send issue w1" in page and "No <code>newsletter run</code> is active" in page
    assert Lease(get_engine(config), seconds=60).try_acquire()      # as `newsletter run` does
    assert "No <code>newsletter run</code> is active" not in client.get("/admin/dashboard").text
