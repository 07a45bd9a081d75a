"""The scheduler lock: a lease row in the database so only one `newsletter run` schedules at a time."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    exc,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from ..db import create_tables, write_transaction
from ..errors import ConfigError

log = logging.getLogger(__name__)

lock_metadata = MetaData()

scheduler_lease = Table(
    "scheduler_lease", lock_metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(200), nullable=False),      # host:pid:random, unique per process
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started", String(40), nullable=False),     # the process's start time, against pid reuse
    Column("expires_at", Float, nullable=False),       # UNIX time
)

LEASE_NAME = "scheduler"
_created: set[int] = set()
_created_lock = threading.Lock()


@dataclass(frozen=True)
class Holder:
    """Who holds the lease and until when (UNIX time)."""

    owner: str
    host: str
    pid: int
    expires_at: float

    def describe(self) -> str:
        """Return "host (pid N)" for messages."""
        return f"{self.host} (pid {self.pid})"


def ensure_tables(engine: Engine, metadata: MetaData) -> None:
    """Create metadata's tables on engine once per process; raises ConfigError when it cannot."""
    key = id(metadata) ^ (id(engine) << 1)
    with _created_lock:
        if key in _created:
            return
        try:
            # store.create_tables is safe when two daemons start at the same instant.
            create_tables(engine, metadata)
        except exc.SQLAlchemyError as err:
            raise ConfigError(f"database: cannot create the scheduler tables: {err}") from err
        _created.add(key)


def process_start(pid: int) -> str:
    """Return the start time of process pid as recorded by the kernel ("" when unknown or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] == "Z":
        return ""
    return fields[19]


def process_alive(pid: int, started: str) -> bool:
    """Return False when process pid on this host is certainly gone (or was replaced); else True."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                    # exists, owned by someone else
    if os.path.isdir("/proc/self"):
        now_started = process_start(pid)
        if not now_started or (started and now_started != started):
            return False        # a zombie, or the pid now belongs to another process
    return True


class Lease:
    """A renewable lease on one database row; try_acquire/renew/release return whether we hold it."""

    def __init__(self, engine: Engine, seconds: float = 15.0, *, name: str = LEASE_NAME,
                 clock: Callable[[], float] = time.time):
        ensure_tables(engine, lock_metadata)
        self.engine = engine
        self.seconds = seconds
        self.name = name
        self.clock = clock
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = process_start(self.pid)
        self.owner = f"{self.host}:{self.pid}:{secrets.token_hex(4)}"

    def holder(self) -> Holder | None:
        """Return the current holder, expired or not, or None when nobody ever took the lease."""
        t = scheduler_lease
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.name == self.name)).first()
        return None if row is None else Holder(row.owner, row.host, row.pid, row.expires_at)

    def _takeable(self, row, now: float) -> bool:  # noqa: ANN001 - a Row
        """Return True when the row is ours, expired, or held by a dead process on this host."""
        if row.owner == self.owner or row.expires_at < now:
            return True
        return row.host == self.host and not process_alive(row.pid, row.started)

    def try_acquire(self) -> bool:
        """Take the lease when it is free, expired, ours or held by a dead local process."""
        t = scheduler_lease
        now = self.clock()
        values = dict(owner=self.owner, host=self.host, pid=self.pid, started=self.started,
                      expires_at=now + self.seconds)
        try:
            with write_transaction(self.engine) as conn:
                row = conn.execute(select(t).where(t.c.name == self.name)).first()
                if row is None:
                    conn.execute(insert(t).values(name=self.name, **values))
                    return True
                if not self._takeable(row, now):
                    return False
                # Compare-and-swap on the old owner and expiry: of two standbys, one wins.
                done = conn.execute(update(t).where(t.c.name == self.name, t.c.owner == row.owner,
                                                    t.c.expires_at == row.expires_at).values(**values))
                return done.rowcount == 1
        except exc.SQLAlchemyError as err:
            # Busy database or a concurrent insert: not acquired this round, the caller retries.
            log.debug("scheduler lock: acquire failed: %s", err)
            return False

    def renew(self) -> bool:
        """Extend our lease; return False when another process holds it now (we lost it)."""
        t = scheduler_lease
        with write_transaction(self.engine) as conn:
            done = conn.execute(update(t).where(t.c.name == self.name, t.c.owner == self.owner)
                                .values(expires_at=self.clock() + self.seconds))
            return done.rowcount == 1

    def release(self) -> None:
        """Give the lease up (a standby may take over at once); errors are logged, not raised."""
        t = scheduler_lease
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(delete(t).where(t.c.name == self.name, t.c.owner == self.owner))
        except exc.SQLAlchemyError as err:
            log.warning("scheduler lock: could not release it (it expires by itself): %s", err)


class LeaseKeeper(threading.Thread):
    """Renews a held lease in the background; calls on_lost once if it is lost or cannot be renewed."""

    def __init__(self, lease: Lease, on_lost: Callable[[str], None], every: float | None = None):
        super().__init__(name="newsletter-lease", daemon=True)
        self.lease = lease
        self.on_lost = on_lost
        self.every = every if every is not None else max(lease.seconds / 4, 0.2)
        self._halt = threading.Event()

    def run(self) -> None:
        """Renew every `every` seconds until stopped or the lease is lost."""
        # Renewal failures are retried until the lease would have expired: a busy database for a
        # few seconds must not stop the scheduler, but past expiry a standby may already be active.
        deadline = self.lease.clock() + self.lease.seconds
        while not self._halt.wait(self.every):
            try:
                if not self.lease.renew():
                    holder = self.lease.holder()
                    self.on_lost(f"taken over by {holder.describe()}" if holder else "released")
                    return
                deadline = self.lease.clock() + self.lease.seconds
            except exc.SQLAlchemyError as err:
                log.warning("scheduler lock: renewal failed: %s", err)
                if self.lease.clock() >= deadline - self.every:
                    self.on_lost("could not be renewed in time")
                    return

    def stop(self) -> None:
        """Stop renewing (the lease itself is left as it is)."""
        self._halt.set()
