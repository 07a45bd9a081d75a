"""Procrastinate's own tables and functions: created from the SQL that ships with it, upgraded by
its migration files (PostgreSQL only). Our queue tables are Alembic's (newsletter/migrations).

The version the schema matches is kept as the comment of the procrastinate_jobs table, so
`newsletter db upgrade` knows which of Procrastinate's migration files to apply after the
package was upgraded.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from ..config import Config, is_postgres_url
from ..db import dispose_engines, unchecked_engine, write_transaction
from ..db.migrate import UpgradeReport, upgrade_to_head
from ..errors import QueueError

log = logging.getLogger(__name__)

COMMENT_PREFIX = "procrastinate "
SCHEMA_LOCK = 0x6E6C5F7175657565          # advisory lock: one process creates the queue schema
_MIGRATION = re.compile(r"^(\d+)\.(\d+)\.(\d+)_(\d+)_.*\.sql$")
_checked: set[str] = set()


def installed_version() -> tuple[int, ...]:
    """Return the version of the installed procrastinate package, e.g. (3, 10, 0)."""
    return _parse(importlib.metadata.version("procrastinate"))


def _parse(version: str) -> tuple[int, ...]:
    """Return "3.10.0" as (3, 10, 0) (pre-release suffixes ignored)."""
    return tuple(int(re.match(r"\d+", part).group()) for part in version.split(".")[:3])


def schema_version(conn: Connection) -> tuple[int, ...] | None:
    """Return the Procrastinate version conn's schema matches; None when it has no queue schema.

    A schema made outside newsletter (no comment) counts as the installed version's.
    """
    regclass = conn.execute(select(func.to_regclass("procrastinate_jobs"))).scalar()
    if regclass is None:
        return None
    comment = conn.execute(text("SELECT obj_description(to_regclass('procrastinate_jobs'), 'pg_class')")).scalar()
    if comment and comment.startswith(COMMENT_PREFIX):
        return _parse(comment[len(COMMENT_PREFIX):])
    return installed_version()


def _mark(conn: Connection, version: tuple[int, ...]) -> None:
    """Record the version the schema matches now."""
    label = COMMENT_PREFIX + ".".join(map(str, version))
    conn.exec_driver_sql(f"COMMENT ON TABLE procrastinate_jobs IS '{label}'")


def _run_sql(conn: Connection, sql: str) -> None:
    """Run a script of several statements on conn's psycopg connection, in conn's transaction."""
    # Without parameters psycopg sends the script as it is (several statements, "%" untouched).
    conn.connection.driver_connection.execute(sql)


def create(conn: Connection) -> None:
    """Create Procrastinate's schema (of the installed version) in conn's transaction."""
    from procrastinate.schema import SchemaManager

    _run_sql(conn, SchemaManager.get_schema())
    _mark(conn, installed_version())


def pending_migrations(since: tuple[int, ...]) -> list[Path]:
    """Return Procrastinate's migration files newer than version since, oldest first."""
    from procrastinate.schema import SchemaManager

    found = []
    for path in Path(SchemaManager.get_migrations_path()).glob("*.sql"):
        match = _MIGRATION.match(path.name)
        if match and tuple(map(int, match.groups()[:3])) > since:
            found.append((tuple(map(int, match.groups())), path.name, path))
    return [path for *_key, path in sorted(found)]


def upgrade(conn: Connection) -> list[str]:
    """Create the queue schema, or apply the migration files newer than its version; return what ran.

    Runs in conn's transaction, so a failing file leaves the schema as it was.
    """
    version = schema_version(conn)
    if version is None:
        create(conn)
        return ["procrastinate schema " + ".".join(map(str, installed_version()))]
    applied = []
    for path in pending_migrations(version):
        _run_sql(conn, path.read_text(encoding="utf-8"))
        applied.append(path.name)
    if applied or version != installed_version():
        _mark(conn, installed_version())
    return applied


def ensure(engine: Engine) -> None:
    """Create the queue schema of a database that has none (once per process and database).

    Raises QueueError when the schema is older than the installed Procrastinate: `newsletter db
    upgrade` applies its migrations (a worker must not change the schema under running ones).
    """
    key = str(engine.url)
    if key in _checked:
        return
    with write_transaction(engine) as conn:
        version = schema_version(conn)
        if version is None:
            conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK)))
            if schema_version(conn) is None:
                log.info("creating the send queue's schema (procrastinate)")
                create(conn)
                version = installed_version()
            else:
                version = schema_version(conn)
    if version < installed_version() and pending_migrations(version):
        raise QueueError(f"the send queue's schema is Procrastinate {'.'.join(map(str, version))}, the "
                         f"installed package is newer: run `newsletter db upgrade`")
    _checked.add(key)


def upgrade_database(config: Config) -> tuple[UpgradeReport, list[str]]:
    """Bring the database to the newest schema (`newsletter db upgrade`); a new one is created.

    Returns (what Alembic did, Procrastinate's schema steps applied: PostgreSQL with [queue]
    enabled). Raises ConfigError when the database is not one of ours or is newer than this code.
    """

    url = config.database_url()
    engine = unchecked_engine(url)
    try:
        with write_transaction(engine) as conn:
            report = upgrade_to_head(conn)
        steps: list[str] = []
        if is_postgres_url(url) and config.queue.enabled:
            with write_transaction(engine) as conn:
                steps = upgrade(conn)
    finally:
        engine.dispose()
    dispose_engines()           # engines opened before the upgrade checked the old schema
    return report, steps
