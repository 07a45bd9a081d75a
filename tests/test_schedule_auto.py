"""Automatic digests from a local feed server, delivered to a real SMTP server; time is injected."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from mail_servers import SMTPTestServer
from newsletter import issues
from newsletter.db import get_engine
from newsletter.schedule import jobs
from newsletter.pipeline import send_issue
from newsletter.errors import ConfigError
from newsletter.schedule.records import claim_digest, get_digest
from newsletter.schedule.times import cron_trigger, latest_fire
from newsletter.schedule.scheduler import AUTO_JOB_ID, job_scheduler, list_jobs, schedule_auto, unschedule
from newsletter.articles.links import page_links
from schedule_support import SCAFFOLD_ARTICLES, Daemon, Site, add_subscribers, per_address, wait_for, write_config

READERS = 3
# Items link to the pages' canonical addresses, not to the test server that served them.
PAGE_OF = {page_links(p.read_text(encoding="utf-8")).canonical: p.stem for p in SCAFFOLD_ARTICLES.glob("*.html")}
WEEKLY = "0 7 * * mon"
MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)        # a firing of WEEKLY


@pytest.fixture
def server():
    with SMTPTestServer() as srv:
        yield srv


@pytest.fixture
def site():
    with Site() as s:
        yield s


def _pages(config, issue_id: str) -> list[str]:
    """Return the sample page names of the issue's items, in order."""
    return [PAGE_OF.get(i.url, i.url) for i in issues.load_issue(config.paths.issues, issue_id).items]


def _project(tmp_path, server, site, **schedule):
    config = write_config(tmp_path, server.port,
                          schedule={"cron": WEEKLY, **schedule},
                          sources={"feeds": [{"url": f"{site.base}/feed.xml", "section": "Science"}]})
    return config, add_subscribers(config, READERS)


def test_a_digest_is_built_from_the_feed_and_sent_and_a_firing_with_nothing_new_sends_nothing(
        tmp_path, server, site):
    config, readers = _project(tmp_path, server, site)
    site.publish("cubesat-aurora", "Cubesat", MONDAY - timedelta(days=3))
    site.publish("library-passkeys", "Passkeys", MONDAY - timedelta(days=2))
    site.publish("street-trees-heat", "Trees", MONDAY - timedelta(days=9))     # before the window

    first = jobs.run_firing(config, MONDAY, WEEKLY, "UTC")
    assert (first.issue_id, first.state, first.items) == ("auto-20261123-0700", "sent", 2)
    issue = issues.load_issue(config.paths.issues, first.issue_id)
    assert _pages(config, first.issue_id) == ["library-passkeys", "cubesat-aurora"]
    assert {i.section for i in issue.items} == {"Science"}
    assert per_address(server) == {r: 1 for r in readers}
    assert "23 November 2026" in server.messages[0].message["Subject"]

    # The same firing again (a retry, a second daemon): nothing more goes out.
    assert jobs.run_firing(config, MONDAY, WEEKLY, "UTC").state == "sent"
    assert len(server.messages) == READERS

    second = jobs.run_firing(config, MONDAY + timedelta(days=7), WEEKLY, "UTC")
    assert (second.state, second.items) == ("skipped", 0)
    assert len(server.messages) == READERS
    assert not issues.issue_path(config.paths.issues, second.issue_id).exists()

    # A new article, and an old one the feed dates anew: only the new one is sent.
    site.publish("walk-after-dinner", "Walk", MONDAY + timedelta(days=10))
    site.publish("cubesat-aurora", "Cubesat again", MONDAY + timedelta(days=11))
    third = jobs.run_firing(config, MONDAY + timedelta(days=14), WEEKLY, "UTC")
    assert (third.state, third.items) == ("sent", 1)
    assert _pages(config, third.issue_id) == ["walk-after-dinner"]
    assert per_address(server) == {r: 2 for r in readers}


def test_at_most_max_items_newest_first_the_rest_carried_over_and_min_items_holds_back_a_thin_issue(
        tmp_path, server, site):
    config, _ = _project(tmp_path, server, site, max_items=2, min_items=2)
    for day, name in enumerate(["cubesat-aurora", "library-passkeys", "street-trees-heat"], start=1):
        site.publish(name, name, MONDAY - timedelta(days=7) + timedelta(days=day))
    first = jobs.run_firing(config, MONDAY, WEEKLY, "UTC")
    assert (first.state, first.items) == ("sent", 2)
    assert _pages(config, first.issue_id) == ["street-trees-heat", "library-passkeys"]
    # The entry that did not fit is not dropped: the next issue starts with it.
    site.publish("walk-after-dinner", "Walk", MONDAY + timedelta(days=1))
    second = jobs.run_firing(config, MONDAY + timedelta(days=7), WEEKLY, "UTC")
    assert (second.state, second.items) == ("sent", 2)
    assert _pages(config, second.issue_id) == ["cubesat-aurora", "walk-after-dinner"]
    assert per_address(server) == {r: 2 for r in _}
    # Only stories sent already, dated anew, and nothing carried: fewer than min_items, nothing goes out.
    site.publish("cubesat-aurora", "Cubesat again", MONDAY + timedelta(days=8))     # sent already
    site.publish("library-passkeys", "Passkeys again", MONDAY + timedelta(days=9))  # sent already
    third = jobs.run_firing(config, MONDAY + timedelta(days=14), WEEKLY, "UTC")
    assert (third.state, third.items) == ("skipped", 0)
    assert len(server.messages) == 2 * READERS
    assert "fewer than min_items" in get_digest(get_engine(config), third.issue_id).detail


def test_with_review_on_nothing_is_sent_before_the_deadline(tmp_path, server, site):
    config, readers = _project(tmp_path, server, site, review=True, review_deadline="3s")
    fired = datetime.now(timezone.utc).replace(microsecond=0)
    site.publish("cubesat-aurora", "Cubesat", fired - timedelta(hours=1))
    draft = jobs.run_firing(config, fired, WEEKLY, "UTC")
    assert (draft.state, draft.items) == ("draft", 1)
    [job] = list_jobs(config)
    assert (job.id, job.next_run) == (f"review-{draft.issue_id}", fired + timedelta(seconds=3))
    daemon = Daemon(config)
    try:
        assert daemon.wait_log("scheduler active"), daemon.log()
        wait_for(lambda: time.time() >= fired.timestamp() + 2.6, 5)
        assert server.messages == []
        assert wait_for(lambda: len(server.messages) == READERS, 5), daemon.log()
        assert per_address(server) == {r: 1 for r in readers}
        assert wait_for(lambda: get_digest(get_engine(config), draft.issue_id).state == "sent", 2)
        assert daemon.terminate() == 0
    finally:
        daemon.close()


def test_unscheduling_the_review_cancels_the_draft_and_its_items_stay_new(tmp_path, server, site):
    config, readers = _project(tmp_path, server, site, review=True, review_deadline="24h")
    site.publish("cubesat-aurora", "Cubesat", MONDAY - timedelta(days=1))
    draft = jobs.run_firing(config, MONDAY, WEEKLY, "UTC")
    assert draft.state == "draft"
    info = unschedule(config, f"review-{draft.issue_id}")
    assert info.issue_id == draft.issue_id
    assert get_digest(get_engine(config), draft.issue_id).state == "cancelled"
    assert list_jobs(config) == []
    # Had the job already been handed to a worker, it still would not send a cancelled draft.
    jobs.send_job(str(config.path), draft.issue_id, "", f"review-{draft.issue_id}")
    assert server.messages == []
    following = jobs.run_firing(config, MONDAY + timedelta(days=7), WEEKLY, "UTC")
    assert (following.state, following.items) == ("draft", 1)


def test_registering_the_automatic_digest_and_bad_settings(tmp_path, site):
    config = write_config(tmp_path, schedule={"cron": "0 7 * * 1", "timezone": "Europe/Paris"},
                          sources={"feeds": [{"url": f"{site.base}/feed.xml"}]})
    info = schedule_auto(config)
    assert info.id == AUTO_JOB_ID and info.kind == "auto"
    local = info.next_run.astimezone(info.next_run.tzinfo)
    assert (local.weekday(), local.hour, local.minute) == (0, 7, 0)     # crontab's 1 is Monday
    assert schedule_auto(config).id == AUTO_JOB_ID and len(list_jobs(config)) == 1    # replaced
    bad = [({"cron": "0 7 * *"}, "schedule.cron: invalid cron expression"),
           ({"cron": "0 7 * * 1", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
           ({"cron": ""}, "schedule.cron is empty"),
           ({"cron": "0 7 * * 1", "review_deadline": "soon"}, "schedule.review_deadline")]
    for schedule, message in bad:
        cfg = write_config(tmp_path, schedule=schedule, sources={"feeds": [{"url": f"{site.base}/feed.xml"}]})
        with pytest.raises(ConfigError, match=message):
            schedule_auto(cfg)
    with pytest.raises(ConfigError, match="sources.feeds is empty"):
        schedule_auto(write_config(tmp_path, schedule={"cron": "0 7 * * 1"}))


def test_a_cron_firing_missed_while_down_runs_once_at_start(tmp_path, server, site):
    config, readers = _project(tmp_path, server, site, cron="0 * * * *")
    site.publish("cubesat-aurora", "Cubesat", datetime.now(timezone.utc) - timedelta(seconds=10))
    schedule_auto(config, now=datetime.now(timezone.utc) - timedelta(hours=6))
    last = latest_fire(cron_trigger("0 * * * *", timezone.utc), datetime.now(timezone.utc))
    with job_scheduler(config) as scheduler:         # as if the daemon had been down for 5 hours
        scheduler.modify_job(AUTO_JOB_ID, next_run_time=last - timedelta(hours=5))
    daemon = Daemon(config)
    try:
        assert wait_for(lambda: len(server.messages) == READERS, 15), daemon.log()
        time.sleep(1.0)
        assert per_address(server) == {r: 1 for r in readers}
        assert daemon.log().count("automatic digest: firing of") == 1
        assert wait_for(lambda: get_digest(get_engine(config), f"auto-{last:%Y%m%d-%H%M}").state == "sent", 3)
        assert daemon.terminate() == 0
    finally:
        daemon.close()


def test_a_firing_interrupted_mid_build_is_finished_by_the_next_daemon(tmp_path, server, site):
    config, readers = _project(tmp_path, server, site, cron="0 * * * *")
    now = datetime.now(timezone.utc)
    site.publish("library-passkeys", "Passkeys", now - timedelta(seconds=10))
    schedule_auto(config, now=now - timedelta(hours=2))
    fired = latest_fire(cron_trigger("0 * * * *", timezone.utc), now)
    claim_digest(get_engine(config), f"auto-{fired:%Y%m%d-%H%M}", fired.timestamp())   # died here
    daemon = Daemon(config)
    try:
        assert wait_for(lambda: len(server.messages) == READERS, 15), daemon.log()
        assert "was interrupted: finishing it" in daemon.log()
        assert per_address(server) == {r: 1 for r in readers}
        assert daemon.terminate() == 0
    finally:
        daemon.close()


def test_a_draft_the_editor_sent_by_hand_is_not_sent_again_at_the_deadline(tmp_path, server, site):
    config, readers = _project(tmp_path, server, site, review=True, review_deadline="24h")
    site.publish("street-trees-heat", "Trees", MONDAY - timedelta(days=1))
    draft = jobs.run_firing(config, MONDAY, WEEKLY, "UTC")
    assert draft.state == "draft" and server.messages == []
    assert send_issue(config, draft.issue_id).sent == READERS              # `newsletter send` by the editor
    jobs.send_job(str(config.path), draft.issue_id, "", f"review-{draft.issue_id}")   # the deadline
    assert per_address(server) == {r: 1 for r in readers}
    assert get_digest(get_engine(config), draft.issue_id).state == "sent"
    # Removing a deadline job after the editor's send does not turn the issue into a cancelled one.
    again = jobs.run_firing(config, MONDAY + timedelta(days=7), WEEKLY, "UTC")
    site.publish("walk-after-dinner", "Walk", MONDAY + timedelta(days=8))
    assert again.state == "skipped"
    draft2 = jobs.run_firing(config, MONDAY + timedelta(days=14), WEEKLY, "UTC")
    send_issue(config, draft2.issue_id)
    unschedule(config, f"review-{draft2.issue_id}")
    assert get_digest(get_engine(config), draft2.issue_id).state == "sent"
