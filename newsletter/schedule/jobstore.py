"""The APScheduler side of scheduling: the job store on the project's engine, a scheduler that only
stores jobs (for commands and the web app), and, inside `newsletter run`, the daemon's running
scheduler that jobs added in its process go through (one scheduler per store)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import exc

from ..config import Config
from ..db import create_tables, get_engine
from ..errors import ConfigError
from .times import grace_seconds, zone

JOBS_TABLE = "apscheduler_jobs"
WORKERS = 4             # sends of different issues may overlap; each send has its own concurrency

_active: BaseScheduler | None = None      # the running daemon's scheduler, in the daemon's process
_active_url = ""
_active_lock = threading.Lock()



class StoreOnlyScheduler(BaseScheduler):
    """A scheduler that never runs jobs and starts no thread: it adds, lists and removes them.

    A paused BackgroundScheduler is not safe for this: on shutdown its thread makes one more
    pass over the store and would take due jobs away from the daemon.
    """

    def shutdown(self, wait: bool = True) -> None:
        """Close the job store (APScheduler requires each scheduler class to define this)."""
        super().shutdown(wait)

    def wakeup(self) -> None:
        """Do nothing: jobs run in `newsletter run`, which polls the store."""
        return None

    def _process_jobs(self) -> None:
        """Run nothing, ever (returns None: no wake-up needed)."""
        return None


class _JobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy job store on the project's engine, which it must not dispose."""

    def start(self, scheduler: BaseScheduler, alias: str) -> None:
        """Create the jobs table the way store.create_tables does: safe when two daemons start at once."""
        BaseJobStore.start(self, scheduler, alias)
        # The base class's plain CREATE TABLE fails with "database is locked" on SQLite when
        # another process touches the database at that instant.
        create_tables(self.engine, self.jobs_t.metadata)

    def shutdown(self) -> None:
        """Leave the engine open."""
        # The base class disposes the engine; ours is shared with the ledger and the web app.
        return None


def config_file(config: Config) -> str:
    """Return the config file jobs will load (absolute); raises ConfigError when there is none."""
    if config.path is None:
        raise ConfigError("scheduling needs a config file: jobs load it when they run")
    return str(config.path)


def make_scheduler(config: Config, cls: type[BaseScheduler] = StoreOnlyScheduler,
                   **options: object) -> BaseScheduler:
    """Return an unstarted scheduler of cls on the project's job store; raises ConfigError."""
    engine = get_engine(config)
    return cls(jobstores={"default": _JobStore(engine=engine, tablename=JOBS_TABLE)},
               executors={"default": ThreadPoolExecutor(WORKERS)},
               job_defaults={"coalesce": True, "max_instances": 1,
                             "misfire_grace_time": grace_seconds(config)},
               timezone=zone(config), **options)


def set_active(scheduler: BaseScheduler | None, config: Config | None = None) -> None:
    """Make jobs added in this process go through the running daemon's scheduler (or stop doing so)."""
    global _active, _active_url
    with _active_lock:
        _active = scheduler
        _active_url = config.database_url() if (scheduler is not None and config) else ""


@contextlib.contextmanager
def job_scheduler(config: Config) -> Iterator[BaseScheduler]:
    """Yield a scheduler to add, list and remove jobs with, without running any; raises ConfigError.

    Inside `newsletter run` that is the running scheduler (one scheduler per store); elsewhere a
    scheduler that never runs jobs: the daemon sees its changes at its next poll of the store.
    """
    with _active_lock:
        active = _active if _active is not None and _active_url == config.database_url() else None
    if active is not None and active.running:
        yield active
        return
    scheduler = make_scheduler(config)
    try:
        scheduler.start(paused=True)
    except exc.SQLAlchemyError as err:
        raise ConfigError(f"database: cannot open the job store: {err}") from err
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)
