"""The inbox's background fetch (image, blurb, failure reason per link; moving in without a second
fetch) and the daemon's scheduled feed job, against a local article site and feed."""

from __future__ import annotations

import pytest

from admin_support import SECRET, add_editor, admin_config, article_site, csrf_of, logged_in
from config_support import build_config
from newsletter.db import get_engine
from newsletter.issues import create_issue, load_issue
from newsletter.schedule import inbox_feeds
from newsletter.schedule.scheduler import list_jobs
from newsletter.web.app import create_app
from newsletter.web.inbox_fetch import EXTENSION
from newsletter.workspace.inbox import Inbox


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    config = admin_config(tmp_path, base_url="http://newsletter.test")
    add_editor(config)
    return create_app(config)


def _idle(app) -> None:
    assert app.extensions[EXTENSION].jobs.wait_idle(60), "the inbox fetch did not finish"


def test_pasted_links_are_fetched_in_the_background_and_moved_in_without_a_second_fetch(app):
    config = app.extensions["newsletter"].config
    client = logged_in(app.test_client())
    create_issue(config.paths.issues, "w1", "Week one")
    with article_site() as site:
        token = csrf_of(client.get("/admin/inbox").text)
        client.post("/admin/inbox/links", data={"csrf_token": token, "links": f"{site}/a1 {site}/gone"})
        _idle(app)
        found = {c.url: c for c in Inbox(get_engine(config)).list(waiting_only=True)[0]}
        page = client.get("/admin/inbox").text
    ok, bad = found[f"{site}/a1"], found[f"{site}/gone"]
    assert ok.fetch_state == "fetched" and ok.blurb and ok.title and ok.image and ok.site
    assert bad.fetch_state == "failed" and "404" in bad.fetch_error and "\n" not in bad.fetch_error
    assert ok.blurb in page and f'src="{ok.image}"' in page
    assert "not fetched</span> " + bad.fetch_error.replace("'", "&#39;") in page
    assert f'aria-label="Try again: {bad.url}"' in page
    assert 'hx-trigger="every 2s"' not in page           # nothing left to poll for

    # The site is gone: moving the fetched link in uses the article fetched when it arrived.
    resp = client.post(f"/admin/inbox/{ok.id}/move", data={"csrf_token": token, "issue": "w1"},
                       follow_redirects=True)
    assert f"Added to issue w1: {ok.title}" in resp.text
    (item,) = load_issue(config.paths.issues, "w1").items
    assert (item.title, item.summary, item.image) == (ok.title, ok.blurb, ok.image)
    # ... and, like `add`, it knows the story now: the same link again is a duplicate.
    again = Inbox(get_engine(config)).add(f"{site}/a1", "paste")
    assert again.added_to == "w1"


def test_the_api_reads_feeds_shows_fetched_details_and_moves_in(tmp_path, monkeypatch):
    from newsletter.workspace.accounts import Accounts

    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    with article_site() as site:
        config = admin_config(tmp_path, base_url="http://newsletter.test", feeds=[f"{site}/feed.xml"])
        app = create_app(config)
        auth = {"Authorization": "Bearer " + Accounts(get_engine(config)).create_token("t")}
        client = app.test_client()
        client.post("/api/v1/issues", json={"id": "w1"}, headers=auth)
        assert client.post("/api/v1/inbox/feeds", headers=auth).json == {"offered": 1, "failed": []}
        _idle(app)
        (story,) = client.get("/api/v1/inbox", headers=auth).json["items"]
        assert story["fetch_state"] == "fetched" and story["blurb"] and story["title"] == "Feed story"
    moved = client.post(f"/api/v1/inbox/{story['id']}/move", json={"issue": "w1"}, headers=auth)
    assert moved.status_code == 200 and moved.json["added"][0]["summary"] == story["blurb"]
    assert client.get("/api/v1/inbox", headers=auth).json["total"] == 0
    assert client.post("/api/v1/inbox/999/move", json={"issue": "w1"}, headers=auth).status_code == 404
    assert client.post(f"/api/v1/inbox/{story['id']}/move", json={"issue": "nope"}, headers=auth).status_code == 404


def test_a_card_is_polled_while_its_article_is_fetched(app):
    config = app.extensions["newsletter"].config
    client = logged_in(app.test_client())
    inbox = Inbox(get_engine(config))
    waiting = inbox.add("https://example.invalid/story", "api", "A story")
    assert inbox.claim_fetch(waiting.id)                    # as if a fetch were running
    card = client.get(f"/admin/inbox/{waiting.id}/card")
    assert card.status_code == 200 and 'hx-trigger="every 2s"' in card.text and "Fetching" in card.text
    inbox.record_fetch(waiting.id, error="example.invalid: cannot connect")
    card = client.get(f"/admin/inbox/{waiting.id}/card")
    assert "hx-trigger" not in card.text and "cannot connect" in card.text
    inbox.dismiss(waiting.id)
    assert client.get(f"/admin/inbox/{waiting.id}/card").status_code == 286      # htmx: stop polling


def test_the_daemon_reads_the_feeds_into_the_inbox_on_its_interval(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    with article_site() as site:
        config = build_config(tmp_path, write=True, sources={"feeds": [{"url": f"{site}/feed.xml"}]},
                              inbox={"fetch_every": "30m"})
        inbox_feeds.install(config)
        (job,) = [j for j in list_jobs(config) if j.id == inbox_feeds.JOB_ID]
        assert job.what == inbox_feeds.JOB_FUNC and job.next_run is not None
        inbox_feeds.fetch_feeds_job(str(config.path))          # what the scheduler runs
        (story,), total = Inbox(get_engine(config)).list(waiting_only=True)
    assert total == 1 and story.title == "Feed story" and story.origin == "feed"
    assert story.fetch_state == "fetched" and story.blurb
    # Turned off: the next start removes the job.
    off = build_config(tmp_path, write=True, sources={"feeds": [{"url": "http://127.0.0.1:9/f"}]})
    inbox_feeds.install(off)
    assert inbox_feeds.JOB_ID not in {j.id for j in list_jobs(off)}
