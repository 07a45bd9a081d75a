"""One sender per issue: a lock that the kernel (or PostgreSQL) releases when the process dies."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ..errors import ChunkBusy, ConfigError, IssueError
from ..render.saved import render_dir

log = logging.getLogger(__name__)


def _pg_key(issue_id: str) -> int:
    """Return the signed 64-bit advisory-lock key for issue_id."""
    digest = hashlib.sha256(f"newsletter-send:{issue_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def issue_lock_key(issue_id: str) -> int:
    """Return the PostgreSQL advisory-lock key a send of issue_id takes (queue workers take it shared)."""
    return _pg_key(issue_id)


@contextlib.contextmanager
def send_lock(state_dir: Path, engine: Engine, issue_id: str) -> Iterator[None]:
    """Hold the send lock of issue_id for the block; raises IssueError when another process holds it.

    A file lock (flock) guards one machine and vanishes with the process, even on SIGKILL, so a
    resumed send never waits for a stale lock. With PostgreSQL a session advisory lock also
    guards senders on other machines; the server drops it when the session dies.
    """
    path = render_dir(state_dir, issue_id) / "send.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise ConfigError(f"{path}: cannot create the send lock: {err.strerror or err}") from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise IssueError(f"issue {issue_id!r} is being sent by another process right now") from err
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                key = _pg_key(issue_id)
                got = conn.execute(select(func.pg_try_advisory_lock(key))).scalar_one()
                conn.commit()
                if not got:
                    raise IssueError(f"issue {issue_id!r} is being sent by another process right now")
                try:
                    yield
                finally:
                    conn.execute(select(func.pg_advisory_unlock(key)))
                    conn.commit()
        else:
            yield
    finally:
        os.close(fd)    # closing the descriptor releases the flock


def _chunk_key(chunk_id: int) -> int:
    """Return the signed 64-bit advisory-lock key of queue chunk chunk_id."""
    digest = hashlib.sha256(f"newsletter-chunk:{chunk_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def chunk_lock(engine: Engine, issue_id: str, chunk_id: int, *, keepalive: float = 10.0) -> Iterator[None]:
    """Hold the lock of one queue chunk for the block (PostgreSQL); raises ChunkBusy when another
    session holds it or a single-process `send` of the issue runs.

    Session advisory locks on a connection kept for the block: the server drops them when the
    worker dies, at once for a killed process and, through TCP keepalives probed every keepalive
    seconds, soon after a lost host. So a chunk never runs twice at once, even when a worker was
    wrongly thought dead. The issue's send lock is taken shared: workers share an issue, a
    single-process send (which takes it exclusively) excludes them.
    """
    with engine.connect() as conn:
        probe = max(1, int(keepalive))
        for name, value in (("tcp_keepalives_idle", probe), ("tcp_keepalives_interval", probe),
                            ("tcp_keepalives_count", 3)):
            conn.execute(select(func.set_config(name, str(value), False)))
        if not conn.execute(select(func.pg_try_advisory_lock_shared(_pg_key(issue_id)))).scalar_one():
            conn.commit()
            raise ChunkBusy(f"issue {issue_id!r} is being sent by a single `newsletter send` process right now",
                            chunk_id=chunk_id)
        key, held = _chunk_key(chunk_id), False
        try:
            if not conn.execute(select(func.pg_try_advisory_lock(key))).scalar_one():
                raise ChunkBusy(f"chunk {chunk_id} of issue {issue_id!r} is being sent by another worker",
                                chunk_id=chunk_id)
            conn.commit()
            held = True
            yield
        finally:
            shared = func.pg_advisory_unlock_shared(_pg_key(issue_id))
            _unlock(conn, [func.pg_advisory_unlock(key), shared] if held else [shared])


def _unlock(conn: Connection, calls: list) -> None:
    """Release session advisory locks; a session the server dropped meanwhile (pg_terminate_backend,
    a restart, a proxy's timeout) released them itself, so losing it here is not the chunk's failure."""
    try:
        for call in calls:
            conn.execute(select(call))
        conn.commit()
    except DBAPIError as err:
        if not (err.connection_invalidated or conn.invalidated):
            raise
        log.warning("the database session holding a chunk's lock was lost; the server released the lock")
