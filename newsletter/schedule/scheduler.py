"""Scheduled sends and the automatic digest as APScheduler 3 jobs in the project's database.

Jobs name a module-level function by text (newsletter.schedule.jobs:…), carry only primitive arguments
(the config file, an issue id, a list) and have explicit ids added with replace_existing=True,
so scheduling again moves a job instead of doubling it. `newsletter run` executes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.triggers.date import DateTrigger

from .. import issues
from ..config import Config
from ..db import get_engine
from ..errors import ConfigError, IssueError
from ..ledger import Ledger
from ..models import DigestState, JobState
from ..pipeline import check_current
from ..render import saved
from .jobstore import (  # noqa: F401 - JOBS_TABLE, StoreOnlyScheduler re-exported
    JOBS_TABLE,
    StoreOnlyScheduler,
    config_file,
    job_scheduler,
    make_scheduler,
    set_active,
)
from .records import (
    OPEN_JOB_STATES,
    JobRecord,
    get_digest,
    get_job,
    jobs_in,
    save_job,
    set_digest,
    set_job_state,
)
from .times import (
    ScheduleError,
    cron_trigger,
    grace_seconds,
    parse_at,
    parse_duration,
    zone,
)

SEND_FUNC = "newsletter.schedule.jobs:send_job"
AUTO_FUNC = "newsletter.schedule.jobs:auto_job"
REFIRE_FUNC = "newsletter.schedule.jobs:refire_job"
# Jobs stored by earlier releases name the functions by their old paths: newsletter/jobs.py
# re-exports them so APScheduler still finds them, and describe() knows both spellings.
_OLD_PATHS = {"newsletter.jobs:send_job": SEND_FUNC, "newsletter.jobs:auto_job": AUTO_FUNC,
              "newsletter.jobs:refire_job": REFIRE_FUNC}
AUTO_JOB_ID = "auto-digest"

__all__ = ["ScheduleError", "JobInfo", "schedule_send", "schedule_auto", "list_jobs", "unschedule",
           "check_sendable", "add_send_job", "make_scheduler", "job_scheduler", "set_active",
           "drop_sent_jobs"]

@dataclass(frozen=True)
class JobInfo:
    """A job as `newsletter jobs` shows it: id, next run time (None = paused) and what it does."""

    id: str
    kind: str               # send | auto | refire | other
    next_run: datetime | None
    what: str
    issue_id: str = ""
    list_name: str = ""     # send jobs: the list as scheduled ("" = delivery.default_list)


def describe(job: Job) -> JobInfo:
    """Return what a stored job does, in words."""
    args = list(job.args)
    func = _OLD_PATHS.get(job.func_ref, job.func_ref)
    if func == SEND_FUNC and len(args) >= 3:
        where = f"list {args[2]}" if args[2] else "the default list"
        return JobInfo(job.id, "send", job.next_run_time, f"send issue {args[1]} to {where}", args[1],
                       args[2] or "")
    if func == AUTO_FUNC and len(args) >= 3:
        return JobInfo(job.id, "auto", job.next_run_time, f"automatic digest (cron {args[1]!r}, {args[2]})")
    if func == REFIRE_FUNC and len(args) >= 2:
        return JobInfo(job.id, "refire", job.next_run_time, f"finish the automatic digest of {args[1]}")
    return JobInfo(job.id, "other", job.next_run_time, job.func_ref)


def check_sendable(config: Config, issue_id: str, list_name: str = "") -> None:
    """Check that issue_id is built, its render current, and not yet sent to the list.

    Raises IssueError (unknown, never built, damaged), StaleRender (changed since `build`) or
    ScheduleError (already sent to the list).
    """
    issues.check_issue_id(issue_id)
    path = issues.issue_path(config.paths.issues, issue_id)
    if not saved.is_built(config.paths.state, issue_id) and not path.exists():
        raise IssueError(f"unknown issue {issue_id!r}: there is no {path} (see `newsletter issue list`)")
    saved.load_rendered(config.paths.state, issue_id)          # never built, or damaged
    check_current(config, issue_id)                           # the job would refuse it anyway
    target = list_name or config.delivery.default_list
    ledger = Ledger(get_engine(config))
    if target in ledger.lists_of(issue_id):
        counts = ledger.counts(issue_id, target)
        if not (counts["pending"] or counts["deferred"] or counts["sending"]):
            raise ScheduleError(f"issue {issue_id!r} was already sent to list {target!r}: "
                                "nothing left to send")


def send_job_id(issue_id: str, list_name: str = "") -> str:
    """Return the id of the job that sends issue_id (to list_name): one job per issue and list."""
    return f"send-{issue_id}" + (f"@{list_name}" if list_name else "")


def review_job_id(issue_id: str) -> str:
    """Return the id of the job that sends a held automatic issue at its review deadline."""
    return f"review-{issue_id}"


def add_send_job(config: Config, issue_id: str, moment: datetime, list_name: str = "",
                 job_id: str | None = None) -> JobInfo:
    """Record and add the job that sends issue_id at moment (replacing one of the same id)."""
    job_id = job_id or send_job_id(issue_id, list_name)
    engine = get_engine(config)
    path = config_file(config)
    # Our record first: if we die before APScheduler has the job, the daemon adds it from here.
    save_job(engine, JobRecord(job_id, "send", issue_id, list_name, "", "", moment.timestamp(),
                               "scheduled", ""))
    with job_scheduler(config) as scheduler:
        job = scheduler.add_job(SEND_FUNC, DateTrigger(run_date=moment), args=[path, issue_id, list_name, job_id],
                                id=job_id, name=f"send {issue_id}", replace_existing=True)
        return describe(job)


def schedule_send(config: Config, issue_id: str, at: str, list_name: str = "", *,
                  now: datetime | None = None) -> JobInfo:
    """Schedule the send of a built issue at the --at time; raises ScheduleError, IssueError, ConfigError."""
    tz = zone(config)
    moment = parse_at(at, tz, now or datetime.now(tz))
    check_sendable(config, issue_id, list_name)
    return add_send_job(config, issue_id, moment, list_name)


def check_auto_config(config: Config) -> None:
    """Check the [schedule] and [sources] keys the automatic digest needs; raises ConfigError."""
    sched = config.schedule
    if not sched.cron.strip():
        raise ConfigError('schedule.cron is empty: set it in [schedule], e.g. cron = "0 7 * * mon"')
    cron_trigger(sched.cron, zone(config))
    if not config.sources.feeds:
        raise ConfigError("sources.feeds is empty: list the feeds of the automatic digest, "
                          'e.g. feeds = [{ url = "https://example.org/feed.xml" }]')
    for i, feed in enumerate(config.sources.feeds):
        if not feed.url.strip():
            raise ConfigError(f"sources.feeds[{i}]: url is empty")
    parse_duration(sched.review_deadline, "schedule.review_deadline")
    grace_seconds(config)
    if sched.max_items < 1:
        raise ConfigError(f"schedule.max_items must be at least 1, got {sched.max_items}")
    if not 0 <= sched.min_items <= sched.max_items:
        raise ConfigError(f"schedule.min_items must be between 0 and max_items ({sched.max_items}), "
                          f"got {sched.min_items}")


def schedule_auto(config: Config, *, now: datetime | None = None) -> JobInfo:
    """Register (or re-register) the automatic digest from [schedule] cron; raises ConfigError."""
    check_auto_config(config)
    tz = zone(config)
    cron = config.schedule.cron.strip()
    engine = get_engine(config)
    path = config_file(config)
    registered = (now or datetime.now(tz)).timestamp()
    save_job(engine, JobRecord(AUTO_JOB_ID, "auto", "", config.schedule.list, cron, tz.key,
                               registered, "active", ""))
    with job_scheduler(config) as scheduler:
        job = scheduler.add_job(AUTO_FUNC, cron_trigger(cron, tz), args=[path, cron, tz.key],
                                id=AUTO_JOB_ID, name="automatic digest", replace_existing=True)
        return describe(job)


def list_jobs(config: Config) -> list[JobInfo]:
    """Return every stored job, soonest first (paused ones last)."""
    with job_scheduler(config) as scheduler:
        jobs = [describe(job) for job in scheduler.get_jobs()]
    far = datetime.max.replace(tzinfo=zone(config))
    return sorted(jobs, key=lambda j: (j.next_run or far, j.id))


def auto_drift(config: Config) -> str:
    """Return how the registered automatic digest differs from [schedule] now ("" when it does not)."""
    record = get_job(get_engine(config), AUTO_JOB_ID)
    if record is None or record.state != "active":
        return ""
    now = (config.schedule.cron.strip(), config.schedule.timezone or "UTC")
    if (record.cron, record.timezone) == now:
        return ""
    return (f"the automatic digest runs with cron {record.cron!r} in {record.timezone}, but config.toml "
            f"now says {now[0]!r} in {now[1]}: run `newsletter schedule --auto` to apply it")


def unschedule(config: Config, job_id: str) -> JobInfo:
    """Remove job job_id (a review deadline's removal cancels its draft); raises ScheduleError."""
    engine = get_engine(config)
    with job_scheduler(config) as scheduler:
        job = scheduler.get_job(job_id)
        if job is None:
            raise ScheduleError(f"no scheduled job {job_id!r} (see `newsletter jobs`)")
        info = describe(job)
        try:
            scheduler.remove_job(job_id)
        except JobLookupError as err:
            raise ScheduleError(f"job {job_id!r} has just started or was removed meanwhile") from err
    set_job_state(engine, job_id, "cancelled", "unscheduled", only_from=OPEN_JOB_STATES + ("active",))
    if info.kind == "send":
        digest = get_digest(engine, info.issue_id)
        sent = Ledger(engine).issue_state(info.issue_id)
        # A draft the editor sent by hand is not cancelled by removing its deadline send.
        if digest is not None and digest.state == "draft" and sent != "sending":
            set_digest(engine, info.issue_id, "sent" if sent == "sent" else "cancelled",
                       detail="deadline send unscheduled", only_from=("draft",))
    return info


def drop_sent_jobs(config: Config, issue_id: str, list_name: str) -> list[JobInfo]:
    """Remove the pending send jobs of issue_id to list_name once a send by hand finished it.

    Covers `newsletter schedule` jobs and an automatic draft's review deadline (the draft is then
    recorded as sent); our records of them become cancelled ("sent by hand"), so the daemon does
    not add them back. Returns the jobs removed.
    """
    default = config.delivery.default_list
    engine = get_engine(config)
    removed: list[JobInfo] = []
    with job_scheduler(config) as scheduler:
        for job in scheduler.get_jobs():
            info = describe(job)
            if info.kind != "send" or info.issue_id != issue_id or (info.list_name or default) != list_name:
                continue
            try:
                scheduler.remove_job(job.id)
            except JobLookupError:
                continue            # it has just started: it will find nothing left to send
            removed.append(info)
    for record in jobs_in(engine, (JobState.SCHEDULED,)):
        if record.kind == "send" and record.issue_id == issue_id and (record.list or default) == list_name:
            set_job_state(engine, record.job_id, JobState.CANCELLED, "sent by hand",
                          only_from=(JobState.SCHEDULED,))
    digest = get_digest(engine, issue_id)
    if digest is not None and digest.state == DigestState.DRAFT:
        set_digest(engine, issue_id, DigestState.SENT, detail="sent by hand", only_from=(DigestState.DRAFT,))
    return removed
