"""`newsletter run`: the scheduler in the foreground, one active process per database, others on standby."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.date import DateTrigger

from ..config import Config
from ..db import get_engine
from ..errors import ConfigError, NewsletterError
from ..models import JobState
from . import inbox_feeds, jobs
from .lease import Lease, LeaseKeeper
from .records import (
    OPEN_JOB_STATES,
    UNFINISHED_DIGEST,
    digests_in,
    get_digest,
    get_job,
    jobs_in,
    set_job_state,
)
from .scheduler import (
    AUTO_JOB_ID,
    REFIRE_FUNC,
    SEND_FUNC,
    config_file,
    describe,
    job_scheduler,
    make_scheduler,
    set_active,
)
from .times import (
    auto_issue_id,
    cron_trigger,
    grace_seconds,
    latest_fire,
    zone,
    zone_named,
)

log = logging.getLogger(__name__)


class _Scheduler(BlockingScheduler):
    """A BlockingScheduler that re-reads the store every poll seconds and stops when told to.

    APScheduler 3 only sees jobs another process added when it wakes up, so it never sleeps
    longer than poll. Stopping happens on this (main loop) thread, never inside a signal handler.
    """

    def __init__(self, *args, poll: float, should_stop: Callable[[], str], **kwargs):
        super().__init__(*args, **kwargs)
        self.poll = poll
        self.should_stop = should_stop

    def _process_jobs(self):  # noqa: ANN202 - APScheduler's signature
        """Run due jobs; return seconds to sleep (at most poll), or None once stopped."""
        reason = self.should_stop()
        if reason:
            log.info("scheduler stopping (%s); waiting for running jobs", reason)
            self.shutdown(wait=True)
            return None
        try:
            wait = super()._process_jobs()
        except Exception as err:  # e.g. a job unscheduled between APScheduler's read and update
            log.warning("scheduler: %s; trying again", err)
            wait = self.poll
        return self.poll if wait is None else min(wait, self.poll)


class Daemon:
    """Runs scheduled jobs while it holds the database lock; run() blocks until stop()."""

    def __init__(self, config: Config, *, poll: float = 1.0, lease_seconds: float = 15.0,
                 clock: Callable[[], float] = time.time,
                 serve_web: Callable[[Config], Any] | None = None):
        """serve_web(config) starts the web app in a thread and returns an object with stop();
        the CLI passes it (the web layer sits beside this one, not below it)."""
        zone(config)
        grace_seconds(config)
        config_file(config)
        self.config = config
        self.poll = poll
        self.engine = get_engine(config)
        self.lease = Lease(self.engine, lease_seconds, clock=clock)
        self._halt = ""            # plain values: written by signal handlers and the lease keeper
        self._lost = ""
        self._web = None
        self._serve_web = serve_web
        self._activations = 0

    def stop(self, reason: str = "asked to stop") -> None:
        """Ask run() to return once running jobs have finished or reached a checkpoint (signal-safe)."""
        self._halt = reason
        jobs.request_stop()

    def run(self) -> None:
        """Schedule while holding the lock, stand by while another process holds it; raises ConfigError."""
        waiting_for = None
        try:
            while not self._halt:
                if self.lease.try_acquire():
                    waiting_for = None
                    self._active()
                    continue
                holder = self.lease.holder()
                if holder is not None and holder.owner != waiting_for:
                    waiting_for = holder.owner
                    log.info("standby: %s is the active scheduler; taking over if it stops",
                             holder.describe())
                self._sleep(max(self.poll, 0.2))
        finally:
            if self._web is not None:
                self._web.stop()
            self.lease.release()
            log.info("scheduler stopped")

    def _sleep(self, seconds: float) -> None:
        """Sleep up to seconds, waking early when stop() is called."""
        end = time.monotonic() + seconds
        while not self._halt and time.monotonic() < end:
            time.sleep(min(0.1, max(end - time.monotonic(), 0)))

    def _should_stop(self) -> str:
        """Return why the active scheduler must stop now, or "" to go on."""
        return self._halt or (f"lost the scheduler lock: {self._lost}" if self._lost else "")

    def _on_lost(self, reason: str) -> None:
        """Note that another process took the lock (called by the lease keeper's thread)."""
        log.error("scheduler lock %s: stopping this scheduler, standing by", reason)
        self._lost = reason

    def _active(self) -> None:
        """Recover interrupted work, then run the scheduler until stopped or the lock is lost."""
        self._activations += 1
        self._lost = ""
        jobs.clear_stop()
        if self._halt:
            return
        keeper = LeaseKeeper(self.lease, self._on_lost)
        keeper.start()
        try:
            self._start_web()
            recover(self.config)
            inbox_feeds.install(self.config)
            scheduler = make_scheduler(self.config, _Scheduler, poll=self.poll, should_stop=self._should_stop)
            scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
            set_active(scheduler, self.config)
            try:
                scheduler.start()          # blocks until _process_jobs sees a stop reason
            finally:
                set_active(None)
        finally:
            keeper.stop()
            keeper.join(5)

    def _start_web(self) -> None:
        """Serve the web app once this process is active, when [web] enabled = true."""
        if not self.config.web.enabled or self._web is not None or self._serve_web is None:
            return
        try:
            self._web = self._serve_web(self.config)
        except ConfigError as err:
            if self._activations == 1:
                raise
            log.error("%s (scheduling goes on without the web app)", err)

    def _on_event(self, event: JobEvent) -> None:
        """Log missed and failed jobs and record them (runs in APScheduler's threads)."""
        try:
            record = get_job(self.engine, event.job_id)
            if event.code == EVENT_JOB_MISSED and isinstance(event, JobExecutionEvent):
                log.warning("job %s missed its time (%s) by more than misfire_grace_time: not run%s",
                            event.job_id, event.scheduled_run_time,
                            f"; send it with `newsletter send {record.issue_id}`"
                            if record is not None and record.kind == "send" else "")
                if record is not None and record.kind == "send":
                    set_job_state(self.engine, event.job_id, "missed", only_from=OPEN_JOB_STATES)
            elif event.code == EVENT_JOB_ERROR and isinstance(event, JobExecutionEvent):
                log.error("job %s failed: %s", event.job_id, event.exception)
                if record is not None and record.kind == "send":
                    set_job_state(self.engine, event.job_id, JobState.FAILED, str(event.exception))
            elif event.code == EVENT_JOB_MAX_INSTANCES:
                log.warning("job %s is still running from its previous time: this run is skipped",
                            event.job_id)
        except NewsletterError as err:
            log.error("job %s: could not record its outcome: %s", event.job_id, err)


def _readd_sends(config: Config, scheduler: BaseScheduler, stored: set[str]) -> None:
    """Schedule again the sends that were due or running when a scheduler stopped."""
    engine, tz, path = get_engine(config), zone(config), config_file(config)
    for rec in jobs_in(engine, OPEN_JOB_STATES):
        if rec.kind != "send" or rec.job_id in stored:
            continue
        when = datetime.fromtimestamp(rec.run_at, tz)
        log.warning("job %s (issue %s, due %s) was interrupted: scheduling it again", rec.job_id,
                    rec.issue_id, when.isoformat())
        # Its original time: APScheduler runs it now if within misfire_grace_time, else reports it.
        scheduler.add_job(SEND_FUNC, DateTrigger(run_date=when), args=[path, rec.issue_id, rec.list, rec.job_id],
                          id=rec.job_id, name=f"send {rec.issue_id}", replace_existing=True)


def _firings_to_finish(config: Config, scheduler: BaseScheduler, now: datetime) -> dict[str, datetime]:
    """Return the automatic firings (issue id → time) that a stopped scheduler left unfinished."""
    engine = get_engine(config)
    todo = {d.issue_id: datetime.fromtimestamp(d.fired_at, zone(config)) for d in digests_in(engine, UNFINISHED_DIGEST)}
    auto, job = get_job(engine, AUTO_JOB_ID), scheduler.get_job(AUTO_JOB_ID)
    if auto is None or auto.state != "active" or job is None:
        return todo
    tz = zone_named(auto.timezone, "job time zone")
    last = latest_fire(cron_trigger(auto.cron, tz), now.astimezone(tz))
    # APScheduler moves the cron job to its next time when it hands the firing to a worker: a
    # crash right then loses the firing unless we notice that its time passed without a record.
    if (last is not None and last.timestamp() >= auto.run_at and job.next_run_time is not None
            and job.next_run_time > last and get_digest(engine, auto_issue_id(last, tz)) is None):
        todo[auto_issue_id(last, tz)] = last
    return todo


def recover(config: Config, now: datetime | None = None) -> None:
    """Re-add the jobs a crash or stop interrupted, so that each runs once (if within the grace time)."""
    now = now or datetime.now(zone(config))
    grace, path = grace_seconds(config), config_file(config)
    auto = get_job(get_engine(config), AUTO_JOB_ID)
    cron, tz_name = (auto.cron, auto.timezone) if auto is not None else (config.schedule.cron, zone(config).key)
    with job_scheduler(config) as scheduler:
        stored = {job.id for job in scheduler.get_jobs()}
        _readd_sends(config, scheduler, stored)
        for issue_id, fired in sorted(_firings_to_finish(config, scheduler, now).items()):
            late = (now - fired).total_seconds()
            if late > grace:
                log.warning("automatic digest %s was interrupted %.0f h ago, more than misfire_grace_time: "
                            "left as it is (send it with `newsletter send %s` if it was built)",
                            issue_id, late / 3600, issue_id)
                continue
            log.warning("automatic digest %s was interrupted: finishing it", issue_id)
            scheduler.add_job(REFIRE_FUNC, DateTrigger(run_date=fired), args=[path, fired.isoformat(), cron, tz_name],
                              id=f"refire-{issue_id}", name=f"finish {issue_id}", replace_existing=True)
        upcoming = sorted((describe(j) for j in scheduler.get_jobs() if j.next_run_time), key=lambda j: j.next_run)
    if upcoming:
        log.info("scheduler active: %d job(s); next: %s at %s", len(upcoming), upcoming[0].id,
                 upcoming[0].next_run.astimezone(zone(config)).isoformat())
    else:
        log.info("scheduler active: no jobs yet (add some with `newsletter schedule`)")
