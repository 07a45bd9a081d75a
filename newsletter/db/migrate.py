"""Schema versions through Alembic: where a database stands, bringing it to the head revision,
and adopting a database made before migrations existed (0.1) after checking its tables.

Every function takes an open SQLAlchemy Connection inside the caller's transaction; the
revisions live in newsletter/migrations/ (package data loaded by Alembic, see its README).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import create_engine, inspect, select, table, column
from sqlalchemy.engine import Connection

from ..errors import ConfigError

log = logging.getLogger(__name__)

SCRIPTS = "newsletter:migrations"
VERSION_TABLE = "alembic_version"
BASELINE = "0001"
# The tables every database of newsletter 0.1 had (the scheduler's were made on first use).
CORE_TABLES = ("subscribers", "issues", "deliveries")


@dataclass
class SchemaState:
    """Where a database stands: its revision (None = never versioned) and which of our tables exist."""

    version: str | None
    tables: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        """Return True for a database that holds none of our tables (a new one)."""
        return self.version is None and not (self.tables & set(CORE_TABLES))


def schema_state(conn: Connection) -> SchemaState:
    """Return the revision of the database conn is on and the names of its tables."""
    names = set(inspect(conn).get_table_names())
    version = None
    if VERSION_TABLE in names:
        version = conn.execute(select(column("version_num")).select_from(table(VERSION_TABLE))).scalar()
    return SchemaState(version, names)


def _config(conn: Connection):  # noqa: ANN202 - alembic.config.Config, imported lazily
    """Return an Alembic Config that runs the revisions on conn."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", SCRIPTS)
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    """Return the newest revision in newsletter/migrations/versions."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory(_scripts_path()).get_heads()
    if len(heads) != 1:
        raise ConfigError(f"newsletter/migrations has {len(heads)} head revisions ({', '.join(heads)}): "
                          "merge them into one")
    return heads[0]


def _scripts_path() -> str:
    """Return the folder of the revisions."""
    from importlib.resources import files

    return str(files("newsletter") / "migrations")


def upgrade(conn: Connection, target: str = "head") -> None:
    """Run every revision from where conn's database stands up to target (inside conn's transaction)."""
    from alembic import command

    command.upgrade(_config(conn), target)


def known_revisions() -> set[str]:
    """Return every revision id in newsletter/migrations/versions."""
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory(_scripts_path()).walk_revisions()}


def baseline_differences(conn: Connection) -> list[str]:
    """Compare an unversioned database's tables with the baseline revision; return the problems.

    The baseline is built in a scratch in-memory SQLite database and reflected, and each of its
    tables that exists in conn's database must have its columns and indexes (names). Extra
    columns, tables and a missing scheduler table are fine (the baseline creates the latter).
    """
    scratch = create_engine("sqlite://")
    with scratch.connect() as sconn:
        with sconn.begin():
            upgrade(sconn, BASELINE)
        want = _shape(sconn)
    scratch.dispose()
    have = _shape(conn)
    problems = [f"table {name} is missing" for name in CORE_TABLES if name not in have]
    for name, (columns, indexes) in want.items():
        if name not in have:
            continue
        got_columns, got_indexes = have[name]
        problems += [f"table {name} lacks column {c}" for c in sorted(columns - got_columns)]
        problems += [f"table {name} lacks index {i}" for i in sorted(indexes - got_indexes)]
    return problems


def _shape(conn: Connection) -> dict[str, tuple[set[str], set[str]]]:
    """Return {table: (column names, index names)} for the tables of conn's database."""
    insp = inspect(conn)
    return {name: ({c["name"] for c in insp.get_columns(name)}, {i["name"] for i in insp.get_indexes(name)})
            for name in insp.get_table_names() if name != VERSION_TABLE}


@dataclass
class UpgradeReport:
    """What `db upgrade` did: the revision before (None = unversioned or new) and after."""

    before: str | None
    after: str
    adopted: bool = False       # a database made before migrations, checked and versioned
    created: bool = False       # a new, empty database


def upgrade_to_head(conn: Connection) -> UpgradeReport:
    """Bring conn's database to the head revision; return what was done.

    A new database gets every revision; one made before migrations (no version, our tables
    present) is checked against the baseline first and raises ConfigError listing what differs;
    a database at a revision this code does not know (a newer release's) raises ConfigError.
    """
    state = schema_state(conn)
    target = head()
    if state.version is not None and state.version not in known_revisions():
        raise ConfigError(f"the database is at schema revision {state.version}, which this version of "
                          "newsletter does not know: it was upgraded by a newer release")
    report = UpgradeReport(before=state.version, after=target, created=state.empty)
    if state.version is None and not state.empty:
        problems = baseline_differences(conn)
        if problems:
            raise ConfigError("the database does not look like one made by newsletter 0.1, so it is not "
                              "upgraded: " + "; ".join(problems))
        report.adopted = True
        log.info("database made before schema versions: its tables match the baseline")
    if state.version != target:
        upgrade(conn, target)
    return report
