"""Hostile input against the editor's pages and the JSON API on a real server (waitress): odd
page numbers, JSON that spells characters no file or database can store. Each gets one clear
answer, never a 500, and nothing already saved changes."""

from __future__ import annotations

import re

import pytest
import requests

from admin_support import EDITOR, PASSWORD, article_site, csrf_of, served_config
from newsletter.issues import create_issue, issue_path
from newsletter.web import serve_in_thread
from newsletter.workspace.accounts import Accounts
from newsletter.db import get_engine


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Yield (config, base URL, logged-in requests.Session, API headers) of a served app with issue w1."""
    config, port = served_config(tmp_path, monkeypatch)
    create_issue(config.paths.issues, "w1", "Week one")
    token = Accounts(get_engine(config)).create_token("tests")
    with serve_in_thread(config, "127.0.0.1", port) as server:
        session = requests.Session()
        form = csrf_of(session.get(f"{server.url}/admin/login").text)
        resp = session.post(f"{server.url}/admin/login", allow_redirects=False,
                            data={"csrf_token": form, "username": EDITOR, "password": PASSWORD})
        assert resp.status_code == 302
        yield config, server.url, session, {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("page", ["99999999999999999999", "%C2%B2", "-3", "abc", "0", "1e3"])
def test_admin_lists_forgive_any_page_number(served, page):
    _, base, session, _ = served
    for path in ("/admin/inbox", "/admin/issues/w1/send"):
        resp = session.get(f"{base}{path}?page={page}")
        assert resp.status_code == 200, (path, page, resp.status_code)


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\u0000"])
def test_api_refuses_json_strings_no_file_or_database_can_store(served, escape):
    config, base, _, auth = served
    headers = {**auth, "Content-Type": "application/json"}
    before = issue_path(config.paths.issues, "w1").read_bytes()
    digest = requests.get(f"{base}/api/v1/issues/w1", headers=auth).json()["digest"]
    bodies = [("POST", "/api/v1/issues", '{"id": "w2", "title": "a%sb"}'),
              ("PATCH", "/api/v1/issues/w1", '{"digest": "' + digest + '", "title": "a%sb"}'),
              ("POST", "/api/v1/inbox", '{"url": "http://127.0.0.1/x", "title": "a%sb"}'),
              ("POST", "/api/v1/subscribers", '{"email": "a@example.org", "name%s": "x"}')]
    for method, path, body in bodies:
        resp = requests.request(method, base + path, headers=headers, data=(body % escape).encode())
        assert resp.status_code == 400, (method, path, resp.status_code, resp.text[:200])
        error = resp.json()["error"]
        assert error["code"] == "bad_request" and re.search(r"U\+[0-9A-F]{4}", error["message"]), error
    assert issue_path(config.paths.issues, "w1").read_bytes() == before
    assert not issue_path(config.paths.issues, "w2").exists()
    assert requests.get(f"{base}/api/v1/inbox", headers=auth).json()["total"] == 0


def test_a_huge_paste_takes_fifty_links_says_what_it_left_out_and_stays_fast(served):
    import time

    _, base, session, auth = served
    form = csrf_of(session.get(f"{base}/admin/inbox").text)
    # ~1.3 MB of different links (~2 MB form-encoded): within web.max_body_bytes (3 MB).
    links = "\n".join(f"http://127.0.0.1:9/story-{i:06d}" for i in range(40_000))
    started = time.monotonic()
    resp = session.post(f"{base}/admin/inbox/links", data={"csrf_token": form, "links": links})
    assert resp.status_code == 200 and time.monotonic() - started < 20
    assert "50 link(s) put in the inbox." in resp.text
    assert "39950 more link(s) were left out" in resp.text
    assert requests.get(f"{base}/api/v1/inbox", headers=auth).json()["total"] == 50


def test_an_unreadable_csv_upload_gets_one_message_naming_the_upload(served):
    _, base, session, _ = served
    # Windows-1252 leaves 0x81 undefined: the header cell keeps it as a lone surrogate, which the
    # message quotes (it once made the session cookie unsavable: a 500).
    garbage = b"\x81\xe9\xe8 nothing like a header;\x93\x94\n" + bytes(range(0x80, 0x100)) * 40
    form = csrf_of(session.get(f"{base}/admin/subscribers").text)
    resp = session.post(f"{base}/admin/subscribers/import", data={"csrf_token": form},
                        files={"file": ("members.csv", garbage, "text/csv")})
    assert resp.status_code == 200, resp.status_code
    found = re.search(r"Not imported: ([^<]*)", resp.text)
    assert found, resp.text[-2000:]
    assert found.group(1).startswith("members.csv: line 1: the header needs exactly one")
    assert "\\udc81" in found.group(1) and "/tmp" not in found.group(1)


@pytest.mark.parametrize("at", ["9999-12-31T23:59-12:00", "0001-01-01T00:00+05:00"])
def test_a_schedule_past_the_calendar_is_one_clear_400(served, at):
    config, base, session, auth = served
    from newsletter.pipeline import add_sources, build_issue

    with article_site() as site:
        assert not add_sources(config, "w1", [f"{site}/a1"]).failed
    build_issue(config, "w1")
    resp = requests.put(f"{base}/api/v1/issues/w1/schedule", headers=auth, json={"at": at})
    assert resp.status_code == 400, resp.text[:300]
    error = resp.json()["error"]
    assert error["code"] == "invalid_schedule" and error["message"].endswith(": that date is out of range"), error
    form = csrf_of(session.get(f"{base}/admin/issues/w1").text)
    resp = session.post(f"{base}/admin/issues/w1/schedule", data={"csrf_token": form, "at": at})
    assert resp.status_code == 200 and "that date is out of range" in resp.text
    assert requests.get(f"{base}/api/v1/issues/w1", headers=auth).json()["state"] == "draft"


def test_an_editor_post_without_the_item_list_keeps_every_item(served):
    config, base, session, auth = served
    from newsletter.issues import load_issue
    from newsletter.pipeline import add_sources

    with article_site() as site:
        assert not add_sources(config, "w1", [f"{site}/a1", f"{site}/a2"]).failed
    html = session.get(f"{base}/admin/issues/w1").text
    digest = re.search(r'name="digest" value="([^"]+)"', html).group(1)
    resp = session.post(f"{base}/admin/issues/w1", data={"csrf_token": csrf_of(html), "digest": digest,
                                                          "title": "Renamed"})
    assert resp.status_code == 200
    issue = load_issue(config.paths.issues, "w1")
    assert issue.title == "Renamed" and len(issue.items) == 2
    assert requests.get(f"{base}/api/v1/issues/w1", headers=auth).json()["removed"] == []


@pytest.mark.parametrize("name", ["%00", "a" * 150, "%E2%80%AE"])
def test_a_list_name_no_list_can_have_is_a_400_page_on_every_subscribers_view(served, name):
    _, base, session, _ = served
    form = csrf_of(session.get(f"{base}/admin/subscribers").text)
    for method, path in (("GET", "/admin/subscribers"), ("GET", "/admin/subscribers/export.csv"),
                         ("POST", "/admin/subscribers"), ("POST", "/admin/subscribers/status"),
                         ("POST", "/admin/subscribers/erase")):
        resp = session.request(method, f"{base}{path}?list={name}",
                               data={"csrf_token": form, "email": "a@example.org", "status": "active"}
                               if method == "POST" else None)
        assert resp.status_code == 400, (path, resp.status_code)
        assert "list name" in resp.text


def test_a_summariser_named_by_a_request_is_never_imported_unless_offered(served):
    import sys

    config, base, session, auth = served
    from newsletter.pipeline import add_sources

    with article_site() as site:
        assert not add_sources(config, "w1", [f"{site}/a1"]).failed
        url = requests.get(f"{base}/api/v1/issues/w1", headers=auth).json()["items"][0]["url"]
        sys.modules.pop("this", None)       # `import this` prints the Zen of Python: a visible side effect
        resp = requests.post(f"{base}/api/v1/issues/w1/blurb", headers=auth,
                             json={"url": url, "summarizer": "this:Summarizer"})
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_summarizer"
        assert "unknown summariser 'this:Summarizer'" in resp.json()["error"]["message"]
        assert "this" not in sys.modules
        ok = requests.post(f"{base}/api/v1/issues/w1/blurb", headers=auth, json={"url": url, "summarizer": "lead"})
        assert ok.status_code == 200 and ok.json()["summary"]


def test_deeply_nested_json_is_one_clear_400(served):
    _, base, _, auth = served
    depth = 100_000         # far past the json module's recursion limit
    body = b'{"id": "w2", "title": ' + b"[" * depth + b"]" * depth + b"}"
    resp = requests.post(f"{base}/api/v1/issues", headers={**auth, "Content-Type": "application/json"}, data=body)
    assert resp.status_code == 400, resp.text[:200]
    assert resp.json()["error"]["code"] == "bad_request"
