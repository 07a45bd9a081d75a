"""`newsletter schedule`, `jobs` and `unschedule` through the real CLI: listings and one-line errors."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.pipeline import send_issue
from newsletter.schedule.scheduler import list_jobs
from newsletter.db import dispose_engines
from schedule_support import add_subscribers, write_built_issue, write_config


@pytest.fixture
def run(tmp_path):
    # The CLI routes the "newsletter" logger to the terminal; put it back for the tests after us.
    saved = [(log, log.handlers[:], log.level, log.propagate)
             for log in map(logging.getLogger, ("newsletter", "apscheduler"))]
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, ["--config", str(tmp_path / "config.toml"), *args])
        assert result.exit_code == code, (result.output, result.exception)
        return result
    yield invoke
    dispose_engines()
    for log, handlers, level, propagate in saved:
        log.handlers[:], log.level, log.propagate = handlers, level, propagate


@pytest.fixture
def config(tmp_path):
    cfg = write_config(tmp_path, schedule={"timezone": "Europe/Paris"})
    write_built_issue(cfg, "w1")
    return cfg


def test_schedule_list_reschedule_and_unschedule(config, run):
    out = run("schedule", "w1", "--at", "2030-01-15 09:00")
    assert out.stdout.strip() == ("scheduled job send-w1: send issue w1 to the default list "
                                  "at 2030-01-15 09:00:00 CET")
    assert "no `newsletter run` is active" in out.stderr
    [job] = list_jobs(config)
    assert job.next_run == datetime(2030, 1, 15, 8, 0, tzinfo=timezone.utc)

    run("schedule", "w1", "--at", "2030-01-15T09:00+05:00")            # same id: moved, not doubled
    run("schedule", "w1", "--at", "2030-02-01 18:30", "--list", "vip")
    lines = run("jobs").stdout.strip().splitlines()
    assert lines == ["send-w1\t2030-01-15 05:00:00 CET\tsend issue w1 to the default list",
                     "send-w1@vip\t2030-02-01 18:30:00 CET\tsend issue w1 to list vip"]

    assert run("unschedule", "send-w1").stdout.strip() == "removed job send-w1: send issue w1 to the default list"
    assert [j.id for j in list_jobs(config)] == ["send-w1@vip"]
    run("unschedule", "send-w1@vip")
    assert run("jobs").stdout.strip() == "no scheduled jobs"


@pytest.mark.parametrize("args, message", [
    (["schedule", "nope", "--at", "2030-01-01 09:00"], "error: unknown issue 'nope': there is no "),
    (["schedule", "w1", "--at", "2020-01-01 09:00"], "error: send time '2020-01-01 09:00': that time is in the past"),
    (["schedule", "w1", "--at", "next tuesday"], "error: send time 'next tuesday': not a date and time"),
    (["schedule", "w1", "--at", "2030-01-01"], "error: send time '2030-01-01': give a time of day too"),
    (["schedule", "w1", "--at", "2030-03-31 02:30"], "that local time does not exist in Europe/Paris"),
    (["schedule", "../etc", "--at", "2030-01-01 09:00"], "error: invalid issue id '../etc'"),
    (["unschedule", "send-nothing"], "error: no scheduled job 'send-nothing' (see `newsletter jobs`)"),
    (["schedule", "--auto"], "error: schedule.cron is empty"),
])
def test_bad_input_gives_one_clear_line(config, run, args, message):
    result = run(*args, code=1)
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_an_unbuilt_issue_cannot_be_scheduled(config, run):
    config.paths.issues.joinpath("w2.toml").write_text('id = "w2"\ntitle = "Two"\n', encoding="utf-8")
    result = run("schedule", "w2", "--at", "2030-01-01 09:00", code=1)
    assert result.stderr.strip() == "error: issue 'w2' was never built (run `newsletter build w2`)"


def test_an_issue_already_sent_to_the_list_cannot_be_scheduled(config, run):
    add_subscribers(config, 2)
    assert send_issue(config, "w1").state == "sent"
    result = run("schedule", "w1", "--at", "2030-01-01 09:00", code=1)
    assert "issue 'w1' was already sent to list 'default'" in result.stderr


def test_bad_time_zone_and_bad_cron_are_one_line_each(tmp_path, run):
    write_config(tmp_path, schedule={"timezone": "Mars/Olympus"})
    result = run("schedule", "w1", "--at", "2030-01-01 09:00", code=1)
    assert result.stderr.strip().startswith("error: schedule.timezone: unknown time zone 'Mars/Olympus'")
    write_config(tmp_path, schedule={"cron": "0 25 * * mon"}, sources={"feeds": [{"url": "feed.xml"}]})
    result = run("schedule", "--auto", code=1)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "schedule.cron: invalid cron expression '0 25 * * mon'" in result.stderr


def test_auto_registration_and_usage_errors(tmp_path, run):
    write_config(tmp_path, schedule={"cron": "30 6 * * 1-5", "review": True},
                 sources={"feeds": [{"url": "https://example.org/feed.xml"}]})
    out = run("schedule", "--auto").stdout
    assert out.startswith("registered the automatic digest (job auto-digest, cron '30 6 * * 1-5', UTC); "
                          "next firing ")
    assert "held for review and sent 24h after its firing" in out
    assert "auto-digest\t" in run("jobs").stdout
    write_config(tmp_path, schedule={"cron": "0 8 * * 1-5", "review": True},
                 sources={"feeds": [{"url": "https://example.org/feed.xml"}]})
    assert "now says '0 8 * * 1-5' in UTC: run `newsletter schedule --auto`" in run("jobs").stderr
    run("schedule", "--auto")
    assert "now says" not in run("jobs").stderr
    assert "--auto takes no ISSUE_ID" in run("schedule", "--auto", "w1", code=2).output
    assert "give ISSUE_ID and --at TIME" in run("schedule", "w1", code=2).output
