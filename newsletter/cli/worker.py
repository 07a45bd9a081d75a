"""`newsletter worker` (send queued chunks), `newsletter workers` (the live ones) and
`newsletter db upgrade` (schema migrations)."""

from __future__ import annotations

import logging

import click

from ..db import get_engine
from ..errors import ConfigError
from ..queue.schema import upgrade_database
from ..queue.app import require_queue
from ..queue.progress import live_workers, queue_counts
from .common import AppContext, pass_app, say
from .group import cli


def _quiet_procrastinate() -> None:
    """Show Procrastinate's own warnings as plain lines (no tracebacks); its chatter stays off."""
    from .common import _CLIHandler

    logger = logging.getLogger("procrastinate")
    logger.handlers[:] = [_CLIHandler()]
    logger.propagate = False
    logger.setLevel(logging.WARNING)


@cli.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Chunks to send at once (default: queue.concurrency).")
@click.option("--queues", "queues", multiple=True, metavar="NAME",
              help="Take chunks from these queues (repeat the option; default: queue.name).")
@pass_app
def worker(app: AppContext, concurrency: int | None, queues: tuple[str, ...]) -> None:
    """Send queued chunks until stopped (SIGINT/SIGTERM); run one or more on any host."""
    try:
        from ..worker.run import run_worker
    except ImportError as err:
        raise ConfigError(f"`newsletter worker` needs procrastinate (pip install 'newsletter[queue]'): {err}") from err
    _quiet_procrastinate()
    run_worker(app.config, concurrency=concurrency, queues=[q for arg in queues for q in arg.split(",") if q])


@cli.command()
@pass_app
def workers(app: AppContext) -> None:
    """List the live workers and what the queue holds."""
    config = app.config
    require_queue(config)
    engine = get_engine(config)
    live = live_workers(engine, config.queue.stalled_seconds)
    if not live:
        say("no live worker (start one with `newsletter worker`)")
    for w in live:
        doing = ", ".join(w.chunks) if w.chunks else "idle"
        say(f"{w.host}:{w.pid}\tid {w.worker_id}\tqueues {w.queues}\tconcurrency {w.concurrency}\t"
            f"since {w.started_at:%Y-%m-%d %H:%M:%S}Z\theartbeat {w.heartbeat_age:.0f}s ago\t{doing}")
    counts = queue_counts(engine)
    say("chunks in the queue: " + (", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"))


@cli.group()
def db() -> None:
    """The database's schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Bring the database to this version's schema (creates a new one); data is kept."""
    report, steps = upgrade_database(app.config)
    if report.created:
        say(f"created the database at schema revision {report.after}")
    elif report.before == report.after:
        say(f"the database is at schema revision {report.after}: nothing to do")
    else:
        start = "an unversioned 0.1 database (its tables checked)" if report.adopted else f"revision {report.before}"
        say(f"upgraded the database from {start} to revision {report.after}")
    for step in steps:
        say(f"send queue: applied {step}")
