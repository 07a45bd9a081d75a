"""The functions scheduled jobs name by text: each loads the config file and does one scheduled thing.

They run in `newsletter run`'s worker threads, take only primitive arguments, log their outcome
and never raise for an expected failure (the next start resumes what a crash interrupted).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from ..config import Config, load_config
from ..db import get_engine
from ..delivery.send import SendReport
from ..errors import NewsletterError, SendStopped
from ..feedback.pause import check_scheduled_send
from ..models import IssueState, JobState
from ..pipeline import send_issue
from ..queue.enqueue import QueuedSend
from . import autodigest
from .records import get_job, set_job_state
from .scheduler import add_send_job, review_job_id
from .times import cron_trigger, latest_fire, zone_named

log = logging.getLogger(__name__)

# Set (safe from a signal handler) when the daemon is asked to stop: a running send then stops
# at its next checkpoint instead of holding the process until the last message.
_STOP = threading.Event()


def request_stop() -> None:
    """Ask running sends to stop at their next checkpoint."""
    _STOP.set()


def clear_stop() -> None:
    """Let sends run to the end again (a new scheduler started)."""
    _STOP.clear()


def deliver(config: Config, issue_id: str, list_name: str) -> SendReport | QueuedSend:
    """Send issue_id through the ledger (or hand it to the queue's workers when [queue] is on);
    raises NewsletterError, SendStopped when stopped part-way, and SendPaused (before anything is
    sent) while complaints hold the list's scheduled sends."""
    check_scheduled_send(config, list_name or None)
    try:
        # On request_stop() the send loop stops claiming, finishes and records what is on the
        # wire and hands the rest back untouched; the ledger makes the next run carry on.
        return send_issue(config, issue_id, list_name=list_name or None, halt=_STOP)
    except SendStopped as err:
        raise SendStopped(f"issue {issue_id}: send stopped by the shutdown; it resumes at the next "
                          "start", issue_id=issue_id) from err


def _summary(report: SendReport | QueuedSend) -> str:
    """Return a one-line outcome of a send."""
    if isinstance(report, QueuedSend):
        return (f"{report.enqueued} chunks ({report.enqueued_rows} messages) queued for the workers; "
                f"issue {report.state or 'unknown'}")
    parts = [f"{report.sent} sent"]
    for name in ("bounced", "deferred", "failed", "skipped"):
        if getattr(report, name):
            parts.append(f"{getattr(report, name)} {name}")
    text = ", ".join(parts) + f"; issue {report.state or 'unknown'}"
    return text + (f" (paused: {report.paused})" if report.paused else "")


def _load(config_file: str, what: str) -> Config | None:
    """Return the config, or None after logging why it cannot be loaded."""
    try:
        return load_config(config_file)
    except NewsletterError as err:
        log.error("%s: not run: %s", what, err)
        return None


def send_job(config_file: str, issue_id: str, list_name: str, job_id: str) -> None:
    """Job: send a built issue (a `newsletter schedule` or a review deadline); logs the outcome."""
    config = _load(config_file, f"job {job_id}")
    if config is None:
        return
    engine = get_engine(config)
    record = get_job(engine, job_id)
    if (record is not None and record.state == "cancelled") or autodigest.is_cancelled(config, issue_id):
        log.info("job %s: issue %s was cancelled; not sending", job_id, issue_id)
        return
    set_job_state(engine, job_id, JobState.RUNNING)
    log.info("job %s: sending issue %s to %s", job_id, issue_id, list_name or "the default list")
    try:
        report = deliver(config, issue_id, list_name)
    except SendStopped as err:
        log.warning("job %s: %s", job_id, err)        # stays "running": the next start resumes it
        return
    except NewsletterError as err:
        set_job_state(engine, job_id, JobState.FAILED, str(err))
        log.error("job %s: issue %s not sent: %s (resume with `newsletter send %s`)",
                  job_id, issue_id, err, issue_id)
        return
    if isinstance(report, QueuedSend) and report.state != IssueState.SENT:
        # The workers finish it: the chunk that ends the send marks this record done
        # (schedule.records.finish_queued_send), perhaps already, hence only from "running".
        set_job_state(engine, job_id, JobState.QUEUED, _summary(report), only_from=(JobState.RUNNING,))
    else:
        set_job_state(engine, job_id, JobState.DONE, _summary(report))
    if report.state == IssueState.SENT:
        autodigest.mark_sent(config, issue_id)
    log.info("job %s: issue %s: %s", job_id, issue_id, _summary(report))


def _send_digest(config: Config, issue_id: str, list_name: str) -> SendReport | QueuedSend:
    """Send an automatic issue and log the outcome; raises NewsletterError."""
    report = deliver(config, issue_id, list_name)
    log.info("automatic digest %s: %s", issue_id, _summary(report))
    return report


def _hold(config: Config, issue_id: str, deadline: datetime) -> None:
    """Schedule the review deadline send of a held automatic issue (job review-<issue id>)."""
    add_send_job(config, issue_id, deadline, config.schedule.list, job_id=review_job_id(issue_id))


def run_firing(config: Config, fired_at: datetime, cron: str, tz_name: str) -> autodigest.FireResult:
    """Run (or finish) the automatic digest of fired_at and log its outcome."""
    tz = zone_named(tz_name, "job time zone")
    log.info("automatic digest: firing of %s", fired_at.astimezone(tz).isoformat())
    result = autodigest.fire(config, fired_at, sender=_send_digest, cron=cron, tz=tz, hold=_hold)
    log.info("automatic digest %s: %s (%d items)%s", result.issue_id, result.state, result.items,
             f": {result.detail}" if result.detail else "")
    return result


def auto_job(config_file: str, cron: str, tz_name: str) -> None:
    """Job: the cron firing of the automatic digest; its issue id derives from the firing's time."""
    config = _load(config_file, "automatic digest")
    if config is None:
        return
    try:
        tz = zone_named(tz_name, "job time zone")
        # APScheduler does not pass the scheduled time: it is the cron's latest time up to now
        # (the job runs at or, within misfire_grace_time, after it), so a re-run finds the same.
        fired_at = latest_fire(cron_trigger(cron, tz), datetime.now(tz))
    except NewsletterError as err:
        log.error("automatic digest: not run: %s", err)
        return
    if fired_at is None:
        log.error("automatic digest: cron %r has no past firing to build for", cron)
        return
    try:
        run_firing(config, fired_at, cron, tz_name)
    except NewsletterError as err:
        log.error("automatic digest of %s: stopped: %s", fired_at.isoformat(), err)


def refire_job(config_file: str, fired_at_iso: str, cron: str, tz_name: str) -> None:
    """Job: finish the automatic digest of a firing that a stopped scheduler interrupted or missed."""
    config = _load(config_file, f"automatic digest of {fired_at_iso}")
    if config is None:
        return
    try:
        run_firing(config, datetime.fromisoformat(fired_at_iso), cron, tz_name)
    except NewsletterError as err:
        log.error("automatic digest of %s: not run: %s", fired_at_iso, err)
