"""The JSON API at /api/v1/: bearer tokens only, JSON errors with a code, and behaviour that
matches its OpenAPI document (checked by schemathesis)."""

from __future__ import annotations

import io
import re

import pytest
from flask import Flask

from admin_support import SECRET, admin_config, article_site
from newsletter.workspace.accounts import Accounts
from newsletter.issues import issue_path
from newsletter.web.api.openapi import document
from newsletter.web.app import create_app


@pytest.fixture
def app(tmp_path, monkeypatch) -> Flask:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    return create_app(admin_config(tmp_path, base_url="http://newsletter.test"))


@pytest.fixture
def auth(app) -> dict[str, str]:
    token = Accounts(app.extensions["newsletter"].engine).create_token("tests")
    return {"Authorization": f"Bearer {token}"}


def _operations() -> list[tuple[str, str]]:
    """Return (method, concrete path) for every operation of the document."""
    out = []
    for path, ops in document("http://x/api/v1")["paths"].items():
        concrete = re.sub(r"\{issue_id\}", "w1", re.sub(r"\{candidate_id\}", "1", path))
        out += [(method.upper(), "/api/v1" + concrete) for method in ops]
    return out + [("GET", "/api/v1/openapi.json")]


def test_every_endpoint_answers_401_without_a_valid_token(app):
    client = app.test_client()
    for method, path in _operations():
        for headers in ({}, {"Authorization": "Bearer nlt_not-a-real-token"}, {"Authorization": "Basic eDp5"}):
            resp = client.open(path, method=method, headers=headers, json={})
            assert resp.status_code == 401, (method, path, resp.status_code)
            assert resp.json["error"]["code"] == "unauthorized"
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_session_cookie_is_not_enough_for_the_api(app):
    from admin_support import add_editor, logged_in

    add_editor(app.extensions["newsletter"].config)
    client = logged_in(app.test_client())
    assert client.get("/api/v1/issues").status_code == 401


def test_issue_flow_with_paging_conflict_and_errors(app, auth):
    client = app.test_client()
    assert client.post("/api/v1/issues", json={"id": "../x"}, headers=auth).json["error"]["code"] == "bad_request"
    made = client.post("/api/v1/issues", json={"id": "w1", "title": "Week one"}, headers=auth)
    assert made.status_code == 201 and made.json["state"] == "draft"
    assert client.post("/api/v1/issues", json={"id": "w1"}, headers=auth).status_code == 409
    for i in range(2, 5):
        client.post("/api/v1/issues", json={"id": f"w{i}"}, headers=auth)
    page = client.get("/api/v1/issues?per_page=3&page=2", headers=auth).json
    assert page["total"] == 4 and [i["id"] for i in page["items"]] == ["w1"]
    assert client.get("/api/v1/issues?per_page=0", headers=auth).status_code == 400
    assert client.post("/api/v1/issues", data="x", headers=auth).status_code == 415

    with article_site() as site:
        report = client.post("/api/v1/issues/w1/items", json={"urls": [f"{site}/a1", f"{site}/nope"]},
                             headers=auth).json
    assert len(report["added"]) == 1 and report["failed"][0]["url"].endswith("/nope")
    # The API refuses what is not a web address: never a local file path.
    assert client.post("/api/v1/issues/w1/items", json={"urls": ["/etc/passwd"]}, headers=auth).status_code == 400

    issue = client.get("/api/v1/issues/w1", headers=auth).json
    edit = {"digest": issue["digest"], "title": "Renamed",
            "items": [{"url": issue["items"][0]["url"], "summary": "From the API."}]}
    assert client.patch("/api/v1/issues/w1", json=edit, headers=auth).json["title"] == "Renamed"
    stale = client.patch("/api/v1/issues/w1", json=dict(edit, title="Lost?"), headers=auth)
    assert stale.status_code == 409 and stale.json["error"]["code"] == "edit_conflict"
    assert "Renamed" in issue_path(app.extensions["newsletter"].config.paths.issues, "w1").read_text()

    built = client.post("/api/v1/issues/w1/preview", headers=auth).json
    assert "From the API." in built["html"] and built["subject"]
    job = client.put("/api/v1/issues/w1/schedule", json={"at": "2999-01-01 09:00"}, headers=auth)
    assert job.status_code == 200 and job.json["id"] == "send-w1"
    assert client.delete("/api/v1/issues/w1/schedule", headers=auth).status_code == 204
    assert client.delete("/api/v1/issues/w1/schedule", headers=auth).status_code == 404


def test_note_section_remove_restore_and_blurb(app, auth, tmp_path):
    client = app.test_client()
    client.post("/api/v1/issues", json={"id": "w1"}, headers=auth)
    with article_site() as site:
        added = client.post("/api/v1/issues/w1/items", json={"urls": [f"{site}/a1", f"{site}/a2"]}, headers=auth).json
        first, second = (i["url"] for i in added["added"])
        issue = client.get("/api/v1/issues/w1", headers=auth).json
        assert issue["removed"] == []
        edit = {"digest": issue["digest"], "items": [
            {"url": second, "note": "Read *this* one first.", "section": "Long reads"}]}
        edited = client.patch("/api/v1/issues/w1", json=edit, headers=auth).json
        assert [(i["url"], i["note"], i["section"]) for i in edited["items"]] == [
            (second, "Read *this* one first.", "Long reads")]
        assert edited["removed"] == [{"url": first, "title": added["added"][0]["title"]}]
        # `add` does not bring a removed story back; restoring does, as it was, and clears the tombstone.
        again = client.post("/api/v1/issues/w1/items", json={"urls": [f"{site}/a1"]}, headers=auth).json
        assert again["added"] == [] and again["skipped"]
        restored = client.post("/api/v1/issues/w1/restore", json={"url": first}, headers=auth)
        assert restored.status_code == 200, restored.json
        assert [i["url"] for i in restored.json["items"]] == [second, first] and restored.json["removed"] == []
        assert restored.json["items"][1] == added["added"][0] | {"note": ""}
        gone = client.post("/api/v1/issues/w1/restore", json={"url": first}, headers=auth)
        assert gone.status_code == 404 and gone.json["error"]["code"] == "not_removed"

        names = client.get("/api/v1/summarizers", headers=auth).json
        assert {"default", "lead", "llm"} <= set(names["items"]) and names["default"] in names["items"]
        lead = client.post("/api/v1/issues/w1/blurb", json={"url": first, "summarizer": "lead"}, headers=auth)
        assert lead.status_code == 200 and lead.json["summarizer"] == "lead" and len(lead.json["summary"]) > 40
        unknown = client.post("/api/v1/issues/w1/blurb", json={"url": first, "summarizer": "nope"}, headers=auth)
        assert unknown.status_code == 400 and "unknown summariser 'nope'" in unknown.json["error"]["message"]
        missing = client.post("/api/v1/issues/w1/blurb", json={"url": f"{site}/gone"}, headers=auth)
        assert missing.status_code == 409 and "404" in missing.json["error"]["message"]
    # The blurb is only proposed: the file keeps its summary until the client PATCHes it.
    assert client.get("/api/v1/issues/w1", headers=auth).json["items"][1]["summary"] == added["added"][0]["summary"]


def test_unknown_paths_and_methods_answer_json(app, auth):
    client = app.test_client()
    for path in ("/api/v1/nothing-here", "/api/v1/issues/w1/nope/deeper", "/api/v2/issues"):
        resp = client.get(path, headers=auth)
        assert resp.status_code == 404 and resp.is_json and resp.json["error"]["code"] == "not_found", path
        assert client.get(path).status_code == 401                     # no token: nothing is revealed
    wrong = client.put("/api/v1/issues", json={}, headers=auth)
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert "text/html" in client.get("/no-such-page").content_type     # the site keeps its pages


def test_inbox_and_subscribers(app, auth):
    client = app.test_client()
    made = client.post("/api/v1/inbox", json={"url": "https://example.org/story", "title": "Story"}, headers=auth)
    assert made.status_code == 201
    assert client.get("/api/v1/inbox", headers=auth).json["total"] == 1
    assert client.delete(f"/api/v1/inbox/{made.json['id']}", headers=auth).status_code == 204
    again = client.post("/api/v1/inbox", json={"url": "https://example.org/story"}, headers=auth)
    assert again.status_code == 409 and again.json["error"]["code"] == "dismissed"
    sub = client.post("/api/v1/subscribers", json={"email": "ann@example.org", "name": "Ann"}, headers=auth)
    assert sub.status_code == 201 and sub.json["status"] == "active"
    assert client.post("/api/v1/subscribers", json={"email": "nope"}, headers=auth).status_code == 400
    found = client.get("/api/v1/subscribers?q=ANN", headers=auth).json
    assert found["total"] == 1 and found["items"][0]["email"] == "ann@example.org"
    lists = client.get("/api/v1/lists", headers=auth).json["items"]
    assert lists == [{"name": "default", "counts": {"active": 1, "unconfirmed": 0, "unsubscribed": 0,
                                                    "bounced": 0, "complained": 0}}]


def test_subscriber_status_both_ways_and_the_refusal(app, auth):
    client, store = app.test_client(), app.extensions["newsletter"].subscribers
    for email in ("ann@example.org", "bob@example.org"):
        client.post("/api/v1/subscribers", json={"email": email, "list": "news"}, headers=auth)
    store.set_status("bob@example.org", "news", "bounced", reason="550 by mistake")

    def change(email, status, list_name="news"):
        return client.post("/api/v1/subscribers/status", headers=auth,
                           json={"email": email, "list": list_name, "status": status})

    back = change("bob@example.org", "active")
    assert back.status_code == 200 and back.json["status"] == "active"
    gone = change("ann@example.org", "unsubscribed")
    assert gone.status_code == 200 and gone.json == {"email": "ann@example.org", "name": "", "list": "news",
                                                      "status": "unsubscribed"}
    # An unsubscribe is the subscriber's own choice: the API cannot undo it, as the page and CLI cannot.
    refused = change("ann@example.org", "active")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "unsubscribed_by_choice"
    assert "own choice" in refused.json["error"]["message"]
    assert store.get("ann@example.org", "news").status == "unsubscribed"
    missing = change("cy@example.org", "unsubscribed")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    assert change("ann@example.org", "active", "nope").status_code == 404
    assert change("not-an-address", "active").json["error"]["code"] == "invalid_subscriber"
    assert change("ann@example.org", "bounced").status_code == 400           # only the two of the schema


def test_import_reports_bad_lines_and_export_escapes_formulas(app, auth):
    client, store = app.test_client(), app.extensions["newsletter"].subscribers
    body = "email,name\nann@example.org,Ann\nnot an address,Bad\nbob@example.org,=HYPERLINK(\"x\")\n"
    done = client.post("/api/v1/subscribers/import?list=news", data=body.encode(),
                       headers={**auth, "Content-Type": "text/csv"})
    assert done.status_code == 200, done.json
    assert (done.json["added"], done.json["rejected"]) == (2, 1)
    assert [e["line"] for e in done.json["errors"]] == [3] and done.json["errors"][0]["reason"]
    again = client.post("/api/v1/subscribers/import?list=news", headers=auth,
                        data={"file": (io.BytesIO(body.encode()), "people.csv")})
    assert (again.json["added"], again.json["unchanged"]) == (0, 2)
    assert store.count("news") == 2

    bad = client.post("/api/v1/subscribers/import?list=news", data=b"name\nAnn\n",
                      headers={**auth, "Content-Type": "text/csv"})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_csv"
    assert bad.json["error"]["message"].startswith("the uploaded CSV: line 1:")     # never the temporary path
    named = client.post("/api/v1/subscribers/import?list=news", headers=auth,
                        data={"file": (io.BytesIO(b""), "people.csv")})
    assert named.status_code == 400 and named.json["error"]["message"].startswith("people.csv: empty file")
    # A UTF-16 file cut in the middle of a character: the rows before it import, the end is reported.
    cut = client.post("/api/v1/subscribers/import?list=cut", headers={**auth, "Content-Type": "text/csv"},
                      data=b"\xff\xfe" + "email\ncy@example.org\n".encode("utf-16-le") + b"a")
    assert cut.status_code == 200 and cut.json["added"] == 1
    assert cut.json["errors"] == [{"line": 3, "reason": "not valid UTF-16 text: truncated data"}]
    assert client.post("/api/v1/subscribers/import", json={}, headers=auth).status_code == 415
    too_big = app.extensions["newsletter"].config.web.max_body_bytes + 1
    huge = client.post("/api/v1/subscribers/import?list=news", data=b"x" * too_big,
                       headers={**auth, "Content-Type": "text/csv"})
    assert huge.status_code == 413 and huge.json["error"]["code"] == "too_large"

    export = client.get("/api/v1/subscribers/export.csv?list=news", headers=auth)
    assert export.status_code == 200 and export.mimetype == "text/csv"
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0].startswith("email,name,status")
    assert lines[1:] == ["ann@example.org,Ann,active", "bob@example.org,\"'=HYPERLINK(\"\"x\"\")\",active"]
    assert client.get(f"/api/v1/subscribers/export.csv?list={'x' * 101}", headers=auth).json["error"]["code"] == "invalid_list"
    unknown = client.get("/api/v1/subscribers/export.csv?list=nope", headers=auth)
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_list"


def test_schemathesis_finds_no_server_error_or_schema_break(app, auth):
    """Fuzz every operation (but the one that fetches from the web) against the served document.

    Every check runs but positive_data_acceptance: a well-formed body may still be refused with a
    documented 400 for what a schema cannot say (an unreachable URL, a date in the past, an
    address that is not deliverable)."""
    import schemathesis
    from schemathesis.checks import positive_data_acceptance
    from hypothesis import HealthCheck, given, settings

    client = app.test_client()
    client.post("/api/v1/issues", json={"id": "w1"}, headers=auth)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=auth)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("operationId") in ("addItems", "regenerateBlurb", "moveCandidate"):
            continue        # fetch the URLs they are given: covered above with a local site

        # Derandomised: the same examples every run, so CI is repeatable (widen max_examples to hunt).
        @settings(max_examples=25, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            case.call_and_validate(headers=auth, excluded_checks=[positive_data_acceptance])

        try:
            run()
        except Exception as err:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{operation.label}: {str(err)[:1500]}")
    assert not failures, "\n\n".join(failures)
