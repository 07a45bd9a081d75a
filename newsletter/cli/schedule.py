"""Commands that schedule: schedule, jobs, unschedule and run (the scheduler in the foreground)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from datetime import datetime

import click

from .. import signing
from ..config import Config
from ..db import get_engine
from ..schedule import scheduler
from ..schedule.lease import Lease
from ..schedule.times import zone
from .common import AppContext, emit_json, json_option, pass_app, say, warn
from .group import cli


def _when(moment: datetime | None, config: Config) -> str:
    """Return moment in the schedule's time zone, or "paused"."""
    if moment is None:
        return "paused"
    return f"{moment.astimezone(zone(config)):%Y-%m-%d %H:%M:%S %Z}"


def _note_if_no_daemon(config: Config) -> None:
    """Say on stderr when no `newsletter run` is active on this database (jobs would not fire)."""
    holder = Lease(get_engine(config)).holder()
    if holder is None or holder.expires_at < time.time():
        warn("no `newsletter run` is active on this database: jobs fire once one runs")


@cli.command()
@click.argument("issue_id", required=False)
@click.option("--at", "at", default=None, metavar="TIME",
              help='When to send: "2026-12-01 09:00" in [schedule] timezone, or ISO 8601 with an offset.')
@click.option("--list", "list_name", default="", help="The subscriber list (default: delivery.default_list).")
@click.option("--auto", is_flag=True, help="Register the automatic digest of [schedule] cron and [sources] feeds.")
@pass_app
def schedule(app: AppContext, issue_id: str | None, at: str | None, list_name: str, auto: bool) -> None:
    """Schedule the send of built issue ISSUE_ID --at a time, or the automatic digest with --auto."""
    config = app.config
    if auto:
        if issue_id or at or list_name:
            raise click.UsageError("--auto takes no ISSUE_ID, --at or --list (it uses [schedule] and [sources])")
        info = scheduler.schedule_auto(config)
        review = (f"; each issue is held for review and sent {config.schedule.review_deadline} after its firing"
                  if config.schedule.review else "")
        say(f"registered the automatic digest (job {info.id}, cron {config.schedule.cron!r}, "
            f"{zone(config).key}); next firing {_when(info.next_run, config)}{review}")
    else:
        if not issue_id or not at:
            raise click.UsageError("give ISSUE_ID and --at TIME (or --auto)")
        info = scheduler.schedule_send(config, issue_id, at, list_name)
        say(f"scheduled job {info.id}: {info.what} at {_when(info.next_run, config)}")
    _note_if_no_daemon(config)


@cli.command()
@json_option
@pass_app
def jobs(app: AppContext, as_json: bool) -> None:
    """List the scheduled jobs with their next run time."""
    config = app.config
    found = scheduler.list_jobs(config)
    if as_json:
        emit_json([{"id": i.id, "kind": i.kind, "next_run": i.next_run.isoformat() if i.next_run else None,
                    "what": i.what, "issue_id": i.issue_id or None} for i in found])
    elif not found:
        say("no scheduled jobs")
    for info in found if not as_json else ():
        say(f"{info.id}\t{_when(info.next_run, config)}\t{info.what}")
    drift = scheduler.auto_drift(config)
    if drift:
        warn(drift)
    _note_if_no_daemon(config)


@cli.command()
@click.argument("job_id")
@pass_app
def unschedule(app: AppContext, job_id: str) -> None:
    """Remove scheduled job JOB_ID (see `newsletter jobs`); a review deadline's removal cancels its draft."""
    info = scheduler.unschedule(app.config, job_id)
    say(f"removed job {info.id}: {info.what}")


def _daemon_logging() -> None:
    """Log with timestamps on stderr: a daemon's log is read later, next to other logs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    ours = logging.getLogger("newsletter")
    ours.handlers[:] = [handler]
    aps = logging.getLogger("apscheduler")
    aps.handlers[:] = [handler]
    aps.propagate = False


@cli.command()
@click.option("--poll", type=click.FloatRange(min=0.1, max=60), default=1.0, show_default=True,
              help="Seconds between looks at the job store (jobs added by other commands).")
@pass_app
def run(app: AppContext, poll: float) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C; serves the web app if [web] enabled."""
    from ..schedule.daemon import Daemon
    from ..web import serve_in_thread

    _daemon_logging()
    key_warning = signing.key_warning(app.config)
    if key_warning:
        logging.getLogger("newsletter").warning("%s", key_warning)
    daemon = Daemon(app.config, poll=poll, serve_web=serve_in_thread)

    def _on_signal(signum: int, _frame: object) -> None:
        """Ask the daemon to stop."""
        # Only flags are set here; the scheduler's own loop stops itself at its next pass.
        daemon.stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    logging.getLogger("newsletter").info("scheduler starting (pid %d)", os.getpid())
    daemon.run()
