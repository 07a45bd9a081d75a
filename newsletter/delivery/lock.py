"""One sender per issue: a lock that the kernel (or PostgreSQL) releases when the process dies."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ..errors import ConfigError, IssueError
from ..render.saved import render_dir


def _pg_key(issue_id: str) -> int:
    """Return the signed 64-bit advisory-lock key for issue_id."""
    digest = hashlib.sha256(f"newsletter-send:{issue_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


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
