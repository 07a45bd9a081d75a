"""The database connection: a cached Engine per URL (SQLite by default, PostgreSQL by URL), private
SQLite files, the schema brought to its head revision on first open, and write transactions."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    MetaData,
    create_engine,
    event,
    exc,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Engine, make_url

from ..errors import ConfigError
from ..files import PRIVATE_FILE, make_private_dir
from ..timeutil import utcnow
from .tables import OPAQUE_LINKS_SINCE, meta

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

SCHEMA_HEAD = "0006"
SCHEMA_LOCK = 0x6E6C5F736368656D          # PostgreSQL advisory lock: one process creates a new schema

WAL_ATTEMPTS = 20         # tries to switch a new SQLite file to WAL (about 4 s in all)
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(config: "Config") -> Engine:
    """Return the Engine for config's database (cached per URL, tables created); raises ConfigError."""
    return engine_for_url(config.database_url())


def engine_for_url(url: str) -> Engine:
    """Return the cached Engine for url; raises ConfigError.

    A new, empty database gets every schema revision first; one at an older revision (or made
    before revisions existed) raises ConfigError asking for `newsletter db upgrade`.
    """
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            _engines[url] = engine
        return engine


def unchecked_engine(url: str) -> Engine:
    """Return a new Engine for url without looking at its schema (for `db upgrade`); dispose it after."""
    return _create(url, check=False)


def dispose_engines() -> None:
    """Close every cached Engine's connections (tests, forked children)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _create(url: str, *, check: bool = True) -> Engine:
    """Build, configure and check one Engine; raises ConfigError naming the (password-free) URL."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as err:
        raise ConfigError(f"database.url: not a database URL: {url!r}") from err
    shown = parsed.render_as_string(hide_password=True)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        try:
            _private_sqlite_file(Path(parsed.database))
        except OSError as err:
            raise ConfigError(f"database.url {shown}: cannot create its folder: {err}") from err
    try:
        engine = create_engine(parsed, pool_pre_ping=not is_sqlite)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
        raise ConfigError(f"database.url {shown}: {err}") from err
    if is_sqlite:
        _configure_sqlite(engine)
    try:
        if check:
            ensure_schema(engine, shown)
        else:
            with engine.connect():
                pass
        if check:
            remember(engine, OPAQUE_LINKS_SINCE, utcnow().isoformat())
    except exc.SQLAlchemyError as err:
        engine.dispose()
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise ConfigError(f"database.url {shown}: cannot open the database: {reason}") from err
    except ConfigError:
        engine.dispose()
        raise
    return engine


def _private_sqlite_file(path: Path) -> None:
    """Create the SQLite file's folder (0700) and the file itself (0600) before SQLite does.

    SQLite gives its -wal and -shm files the database file's mode, so they are private too. A file
    an earlier release left readable by others is made private, with its -wal and -shm.
    """
    make_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    os.close(fd)
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if candidate.stat().st_mode & 0o077:
                os.chmod(candidate, PRIVATE_FILE)
                log.info("%s was readable by other users; made it private (0600)", candidate)
        except FileNotFoundError:
            continue


def remember(engine: Engine, key: str, value: str) -> str:
    """Store value under key in newsletter_meta unless a value is there already; return the stored one.

    Safe when several processes do it at once: the first insert wins, the others read it.
    """
    with engine.connect() as conn:
        found = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
    if found is not None:
        return found
    try:
        with write_transaction(engine) as conn:
            conn.execute(insert(meta).values(key=key, value=value))
        return value
    except exc.IntegrityError:
        with engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one()


def recall(engine: Engine, key: str) -> str | None:
    """Return the value stored under key in newsletter_meta, or None."""
    with engine.connect() as conn:
        return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()


def ensure_schema(engine: Engine, shown: str) -> None:
    """Create a new database's schema (every revision); raise ConfigError when a used one is not at head.

    Raises SQLAlchemyError when the database refuses. Two processes opening a new database at
    once are serialised (SQLite: the write lock; PostgreSQL: an advisory lock), and the second
    finds the schema made.
    """
    from .migrate import schema_state, upgrade

    with engine.connect() as conn:
        state = schema_state(conn)
    if state.empty:
        with write_transaction(engine) as conn:
            if not is_sqlite(engine):
                conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK)))
            state = schema_state(conn)
            if state.empty:
                log.debug("new database %s: creating its schema", shown)
                upgrade(conn, SCHEMA_HEAD)
                return
    if state.version == SCHEMA_HEAD:
        return
    if state.version is None:
        why = "it was made by newsletter 0.1, before schema versions"
    else:
        why = f"its schema is at revision {state.version}, this version of newsletter needs {SCHEMA_HEAD}"
    raise ConfigError(f"database {shown}: {why}: run `newsletter db upgrade` (back it up first)")


def _configure_sqlite(engine: Engine) -> None:
    """Set WAL, busy timeout and foreign keys per connection, and let us emit BEGIN ourselves."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001 - DBAPI types
        """Configure one new SQLite connection."""
        # sqlite3's own implicit BEGIN is off, so the "begin" hook below decides the kind of BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")    # wait for the web app's short writes
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")    # durable across process crashes in WAL mode
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        """Start a transaction: BEGIN IMMEDIATE for writers, a plain BEGIN for readers."""
        # A deferred transaction that reads and then writes fails at once (SQLITE_BUSY, no wait)
        # when another writer got in between; writers therefore take the lock up front.
        if conn.get_execution_options().get("newsletter_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database file to WAL mode (once: the mode is stored in the file)."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    # Switching needs the file to itself and SQLite does not wait for that (no busy handler):
    # when several processes open a new database at once, the losers retry until one has won.
    for attempt in range(WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Yield a connection inside a write transaction (BEGIN IMMEDIATE on SQLite); commits on success."""
    with engine.connect() as conn:
        conn.execution_options(newsletter_write=True)
        with conn.begin():
            yield conn


def create_tables(engine: Engine, tables: MetaData) -> None:
    """Create the missing tables and indexes of `tables`; safe when several processes start at once.

    Raises SQLAlchemyError when the database refuses. On SQLite the check-then-create runs in
    one write transaction (a deferred one fails at once with "database is locked" when another
    process creates the tables first); on PostgreSQL a concurrent creator makes our CREATE fail,
    and the retry then finds the tables there.
    """
    for attempt in range(3):
        try:
            with write_transaction(engine) as conn:
                tables.create_all(conn)
                # create_all makes the indexes of new tables only: an index added to an existing
                # table (a database made by an earlier release) is created here.
                for table in tables.sorted_tables:
                    for index in table.indexes:
                        index.create(conn, checkfirst=True)
            return
        except (exc.IntegrityError, exc.ProgrammingError):
            if attempt == 2:
                raise


def is_sqlite(engine: Engine) -> bool:
    """Return True when engine talks to SQLite."""
    return engine.dialect.name == "sqlite"
