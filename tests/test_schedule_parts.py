"""The scheduler's parts: times, durations, cron weekdays, the database lock (time injected)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.errors import ConfigError
from newsletter.schedule.lease import Lease, LeaseKeeper, process_alive, process_start
from newsletter.schedule.times import (ScheduleError, auto_issue_id, cron_trigger, crontab_weekdays, latest_fire,
                                  parse_at, parse_duration)
from newsletter.db import engine_for_url

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def test_at_is_local_to_the_schedule_zone_unless_it_has_an_offset():
    assert parse_at("2026-12-01 09:00", PARIS, NOW) == datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    assert parse_at("2026-12-01T09:00:00+02:00", PARIS, NOW) == datetime(2026, 12, 1, 7, 0, tzinfo=timezone.utc)
    assert parse_at("2026-12-01T09:00Z", PARIS, NOW) == datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    # The autumn hour that happens twice is taken as its first occurrence.
    assert parse_at("2026-10-25 02:30", PARIS, NOW).utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("text, message", [
    ("2026-06-01 13:59", "in the past"),           # 11:59 UTC
    ("2026-06-01T12:00Z", "in the past"),          # now is not the future either
    ("2026-03-29 02:30", "does not exist in Europe/Paris"),
    ("2026-13-01 09:00", "not a date and time"),
    ("2026-12-01", "give a time of day too"),
    ("", "not a date and time"),
])
def test_bad_at_values(text, message):
    with pytest.raises(ScheduleError, match=message):
        parse_at(text, PARIS, NOW)


def test_durations():
    assert parse_duration("6h", "k") == timedelta(hours=6)
    assert parse_duration("1d12h", "k") == timedelta(days=1, hours=12)
    assert parse_duration(" 90s ", "k") == timedelta(seconds=90)
    assert parse_duration("2w", "k") == timedelta(weeks=2)
    for bad in ("", "6", "h", "six hours", "-1h", "1.5h"):
        with pytest.raises(ConfigError, match="schedule.x: .* is not a duration"):
            parse_duration(bad, "schedule.x")


@given(st.integers(0, 7), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)))
@settings(max_examples=60, deadline=None)
def test_crontab_weekday_numbers_keep_their_crontab_meaning(day, now):
    # crontab: 0 and 7 are Sunday, 1 Monday ...; Python: Monday is 0.
    fire = cron_trigger(f"0 7 * * {day}", PARIS).get_next_fire_time(None, now.replace(tzinfo=PARIS))
    assert fire.weekday() == (day - 1) % 7 and (fire.hour, fire.minute) == (7, 0)


def test_weekday_fields():
    assert crontab_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert crontab_weekdays("0,6") == "sun,sat"
    assert crontab_weekdays("*/2") == "sun,tue,thu,sat"
    assert crontab_weekdays("0-7") == "*"
    assert crontab_weekdays("mon-fri") == "mon-fri"
    for bad in ("0 7 * * 8", "0 7 * * 5-2", "0 7 * *", "0 7 * * 1 2", "x 7 * * 1"):
        with pytest.raises(ConfigError, match="schedule.cron: invalid cron expression"):
            cron_trigger(bad, PARIS)


@given(st.sampled_from(["*/5 * * * *", "0 7 * * mon", "30 6 * * 1-5", "0 0 1 * *", "15 9 29 2 *"]),
       st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1)))
@settings(max_examples=80, deadline=None)
def test_latest_fire_is_the_last_time_at_or_before_now(expr, now):
    trigger = cron_trigger(expr, PARIS)
    now = now.replace(tzinfo=PARIS)
    fire = latest_fire(trigger, now)
    assert fire is not None and fire <= now
    assert trigger.get_next_fire_time(None, fire) == fire
    assert trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1)) > now


def test_the_automatic_issue_id_derives_from_the_firing():
    fired = datetime(2026, 12, 7, 6, 0, tzinfo=timezone.utc)
    assert auto_issue_id(fired, PARIS) == "auto-20261207-0700"
    assert auto_issue_id(fired.astimezone(PARIS), PARIS) == "auto-20261207-0700"


# -- the lock --------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(db_url):
    return engine_for_url(db_url)


def test_one_holder_at_a_time_and_takeover_after_expiry(engine):
    clock = Clock()
    a, b = Lease(engine, 10, clock=clock), Lease(engine, 10, clock=clock)
    assert a.try_acquire() and not b.try_acquire()
    assert a.try_acquire()                              # re-entrant for its owner
    clock.now += 9
    assert a.renew() and not b.try_acquire()
    clock.now += 9.5                                    # renewed at +9: valid until +19
    assert not b.try_acquire()
    clock.now += 1
    assert b.try_acquire() and b.holder().owner == b.owner
    assert not a.renew()                                # a lost it and knows
    a.release()                                         # releasing what is not ours changes nothing
    assert b.holder().owner == b.owner
    b.release()
    assert b.holder() is None and a.try_acquire()


def test_the_lease_of_a_dead_local_process_is_taken_at_once(engine):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start(child.pid)
        assert process_alive(child.pid, started)
        dead = Lease(engine, 3600)
        dead.pid, dead.started = child.pid, started
        assert dead.try_acquire()
        other = Lease(engine, 3600)
        assert not other.try_acquire()
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid, started)
    assert other.try_acquire()


def test_the_keeper_renews_and_reports_a_loss(engine):
    clock = Clock()
    mine, theirs = Lease(engine, 5, clock=clock), Lease(engine, 5, clock=clock)
    assert mine.try_acquire()
    lost: list[str] = []
    keeper = LeaseKeeper(mine, lost.append, every=0.02)
    keeper.start()
    try:
        import time
        time.sleep(0.1)
        assert lost == [] and mine.holder().expires_at == clock.now + 5
        clock.now += 6                                  # as if this process had stalled
        assert theirs.try_acquire()
        keeper.join(2)
        assert lost and lost[0].startswith("taken over by")
    finally:
        keeper.stop()


def test_job_functions_stored_by_earlier_releases_still_resolve():
    # APScheduler keeps a job's function as text in the user's database: jobs written before the
    # scheduler moved into newsletter.schedule name newsletter.jobs:… and must still run.
    from apscheduler.util import ref_to_obj

    from newsletter.schedule import jobs

    for name in ("send_job", "auto_job", "refire_job"):
        assert ref_to_obj(f"newsletter.jobs:{name}") is getattr(jobs, name)


def test_a_send_job_stored_under_the_old_path_is_listed_as_a_send(tmp_path):
    from apscheduler.triggers.date import DateTrigger

    from newsletter.schedule.scheduler import job_scheduler, list_jobs
    from schedule_support import write_config

    config = write_config(tmp_path)
    when = datetime.now(timezone.utc) + timedelta(days=1)
    with job_scheduler(config) as scheduler:
        scheduler.add_job("newsletter.jobs:send_job", DateTrigger(run_date=when), id="send-w9",
                          args=[str(config.path), "w9", "", "send-w9"])
    [job] = list_jobs(config)
    assert (job.kind, job.issue_id) == ("send", "w9")
