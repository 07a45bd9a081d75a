"""The database: SQLAlchemy Core tables and a cached Engine per URL (SQLite by default, PostgreSQL by URL)."""

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
    JSON,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    exc,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Engine, make_url

from .errors import ConfigError
from .files import PRIVATE_FILE, make_private_dir
from .models import SubscriberStatus
from .timeutil import as_utc, utcnow  # noqa: F401 - re-exported for the stores

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

metadata = MetaData()

# Subscriber states. Only "active" receives issues; the last three are suppressions that an
# import never undoes (only an explicit set_status, e.g. a confirmed web sign-up, does).
STATUSES = tuple(SubscriberStatus)
SUPPRESSED = frozenset({SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED})

subscribers = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list", String(200), nullable=False),
    Column("email", String(320), nullable=False),          # normalised, spelling as first given
    Column("email_key", String(320), nullable=False),      # lower-cased: uniqueness per list
    Column("name", String(500), nullable=False, default=""),
    Column("fields", JSON, nullable=False, default=dict),  # custom CSV columns for templates
    Column("status", String(20), nullable=False, default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    UniqueConstraint("list", "email_key", name="uq_subscribers_list_email"),
    Index("ix_subscribers_list_status", "list", "status", "id"),
)

issues = Table(
    "issues", metadata,
    Column("id", String(200), primary_key=True),
    Column("list", String(200), primary_key=True),         # one issue may go to several lists
    Column("state", String(20), nullable=False),           # sending | sent
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)

# The ledger: one row per (issue, subscriber). The row outlives the subscriber (history), so the
# subscriber link becomes NULL when a subscriber is removed and the email column keeps the address.
deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issue_id", String(200), nullable=False),
    Column("list", String(200), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="SET NULL")),
    Column("email", String(320), nullable=False),
    Column("status", String(20), nullable=False),   # pending|sending|sent|deferred|bounced|failed|unknown|skipped
    Column("attempts", Integer, nullable=False, default=0),
    Column("message_id", String(400), nullable=False, default=""),
    Column("provider_id", String(400), nullable=False, default=""),
    Column("reply", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("issue_id", "subscriber_id", name="uq_deliveries_issue_subscriber"),
    ForeignKeyConstraint(["issue_id", "list"], ["issues.id", "issues.list"], ondelete="CASCADE"),
    # (issue, list, id) lets the send loop walk an issue's rows in id order, chunk by chunk.
    Index("ix_deliveries_issue_list_id", "issue_id", "list", "id"),
    # Bounce and complaint reports name a message by its Message-ID or the provider's id, and a
    # VERP token by the subscriber (newsletter/feedback/match.py).
    Index("ix_deliveries_message_id", "message_id"),
    Index("ix_deliveries_provider_id", "provider_id"),
    Index("ix_deliveries_subscriber_id", "subscriber_id"),
)

# Why an address stopped receiving: one row per suppression (bounced, complained, unsubscribed)
# with its reason, source (models.SuppressionSource) and time. Reactivating sets lifted_at; the
# open row (lifted_at NULL) of a subscriber explains its current state.
suppressions = Table(
    "suppressions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(20), nullable=False),          # bounced | complained | unsubscribed
    Column("source", String(20), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("issue_id", String(200)),                       # the issue whose message drew it, when known
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("lifted_at", DateTime(timezone=True)),
    Column("lifted_reason", Text, nullable=False, default=""),
    Index("ix_suppressions_subscriber", "subscriber_id", "lifted_at"),
    Index("ix_suppressions_created", "created_at"),
    Index("ix_suppressions_issue", "issue_id"),
)

# Every bounce or complaint report taken in, once: event_key (provider + its event id, or the
# report's own Message-ID + recipient) makes a replayed webhook or a re-read report harmless.
feedback_events = Table(
    "feedback_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_key", String(400), nullable=False),
    Column("kind", String(20), nullable=False),            # models.FeedbackKind
    Column("source", String(20), nullable=False),          # models.SuppressionSource
    Column("provider", String(40), nullable=False, default=""),
    Column("email", String(320), nullable=False, default=""),
    Column("issue_id", String(200)),
    Column("list", String(200)),
    Column("delivery_id", Integer),                        # the ledger row (kept if the row goes)
    Column("subscriber_id", Integer),
    Column("code", String(40), nullable=False, default=""),   # enhanced status or provider code
    Column("detail", Text, nullable=False, default=""),
    Column("outcome", String(20), nullable=False),         # models.FeedbackOutcome
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("event_key", name="uq_feedback_events_key"),
    Index("ix_feedback_events_delivery", "delivery_id"),
    Index("ix_feedback_events_issue", "issue_id", "list", "kind"),
)

# Lists whose scheduled sends wait because an issue drew too many complaints; one row per
# (list, issue). resumed_at is set by `newsletter bounces resume`; an open row pauses the list.
list_pauses = Table(
    "list_pauses", metadata,
    Column("list", String(200), primary_key=True),
    Column("issue_id", String(200), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("paused_at", DateTime(timezone=True), nullable=False),
    Column("resumed_at", DateTime(timezone=True)),
)

# Facts about this database, one row each, written once (the first writer wins).
meta = Table(
    "newsletter_meta", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)
# When a release that puts opaque subscriber references in links first opened this database: links
# of issues sent before then name the address itself (see web/links.py, signing.legacy_link_days).
OPAQUE_LINKS_SINCE = "opaque_links_since"

# The editors' workspace (web/admin, web/api). Accounts: passwords and API tokens are stored
# only as hashes (argon2 for passwords, SHA-256 for the random 256-bit tokens).
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),   # hex SHA-256 of the token
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
)

# The inbox: links waiting to be put into an issue (from feeds, the bookmarklet, pasting, the API).
inbox_candidates = Table(
    "inbox_candidates", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    Column("url_key", String(64), nullable=False, unique=True),       # hex SHA-256 of the URL
    Column("title", String(1000), nullable=False, default=""),
    Column("site", String(300), nullable=False, default=""),
    Column("origin", String(20), nullable=False),                     # feed|bookmarklet|paste|api
    Column("published", String(40), nullable=False, default=""),
    Column("added_to", String(200), nullable=False, default=""),      # issue id once moved in
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Links the editor dismissed: never offered again, whatever brings them back.
dismissed_links = Table(
    "dismissed_links", metadata,
    Column("url_key", String(64), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("dismissed_at", DateTime(timezone=True), nullable=False),
)

# Addresses erased at their owner's request: only a SHA-256 of the lower-cased address is kept,
# so an import or a manual add cannot bring the address back, and nothing else about it remains.
erased_addresses = Table(
    "erased_addresses", metadata,
    Column("list", String(200), primary_key=True),
    Column("address_hash", String(64), primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

# The newest revision in newsletter/migrations/versions: a database there needs no upgrade.
# A new revision sets this too (tests/test_migrations.py checks that they agree).
SCHEMA_HEAD = "0004"
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
