"""Schema migrations (Alembic): a new database gets every revision, a 0.1 database (a real file
made by newsletter 0.1, tests/data/legacy/) is checked, kept and upgraded, and the revisions build
exactly the tables the code defines."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

from config_support import build_config
from newsletter.db import migrate
from newsletter.cli import cli
from newsletter.db import SCHEMA_HEAD, dispose_engines, get_engine, unchecked_engine, write_transaction
from newsletter.errors import ConfigError
from newsletter.ledger import Ledger
from newsletter.subscribers.store import SubscriberStore

LEGACY = Path(__file__).parent / "data" / "legacy" / "newsletter-0.1.0.db"
MIGRATIONS = Path(__file__).resolve().parent.parent / "newsletter" / "migrations"


def _code_tables():
    """Return every table the code defines, as the developers' `alembic --autogenerate` sees them."""
    namespace: dict = {}
    # env.py runs Alembic's context at import: take only its code_tables() function.
    source = (MIGRATIONS / "env.py").read_text(encoding="utf-8").split("\ndef run()")[0]
    exec(compile(source.replace("from alembic import context", "").replace(
        "config = context.config", ""), str(MIGRATIONS / "env.py"), "exec"), namespace)
    return namespace["code_tables"]()


def _project(tmp_path: Path, db_file: Path | None = None) -> Path:
    """Write a project whose database is state/newsletter.db (a copy of db_file when given)."""
    build_config(tmp_path, write=True)
    if db_file is not None:
        (tmp_path / "state").mkdir(exist_ok=True)
        shutil.copy(db_file, tmp_path / "state" / "newsletter.db")
    return tmp_path / "config.toml"


def _run(config_file: Path, *args: str, code: int = 0):
    result = CliRunner().invoke(cli, ["--config", str(config_file), *args])
    assert result.exit_code == code, result.output
    return result


def test_schema_head_is_the_newest_revision():
    assert migrate.head() == SCHEMA_HEAD, "set newsletter.db.SCHEMA_HEAD to the new revision"


def test_the_revisions_build_exactly_the_code_tables(db_url):
    engine = get_engine(build_config(Path.cwd(), database={"url": db_url}))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), _code_tables())
    assert diff == [], ("the migrations and the code's tables differ (write a revision in "
                        f"newsletter/migrations/versions): {diff}")
    dispose_engines()


def test_legacy_database_needs_an_upgrade_then_keeps_everything(tmp_path):
    config_file = _project(tmp_path, LEGACY)
    error = _run(config_file, "subscribers", "count", code=1)
    assert "made by newsletter 0.1" in error.output and "newsletter db upgrade" in error.output
    out = _run(config_file, "db", "upgrade").output
    assert f"upgraded the database from an unversioned 0.1 database (its tables checked) to revision {SCHEMA_HEAD}" in out
    from newsletter.config import load_config
    config = load_config(config_file)
    store = SubscriberStore(get_engine(config))
    assert [s.email for s in store.iter_active("default")] == [f"user{i}@example.org" for i in range(5)]
    assert Ledger(get_engine(config)).counts("w1")["sent"] == 6
    assert Ledger(get_engine(config)).issue_state("w1") == "sent"
    tables = set(inspect(get_engine(config)).get_table_names())
    assert {"scheduler_lease", "queue_chunks", "apscheduler_jobs", "scheduled_jobs"} <= tables
    # The scheduled job of 0.1 is still there, in APScheduler's table and in ours.
    assert "send-w2" in _run(config_file, "jobs").output
    assert "nothing to do" in _run(config_file, "db", "upgrade").output
    dispose_engines()


def test_a_database_that_is_not_ours_is_left_alone(tmp_path):
    config_file = _project(tmp_path)
    (tmp_path / "state").mkdir()
    con = sqlite3.connect(tmp_path / "state" / "newsletter.db")
    con.execute("CREATE TABLE subscribers (id INTEGER PRIMARY KEY, address TEXT)")
    con.commit()
    con.close()
    out = _run(config_file, "db", "upgrade", code=1).output
    assert "does not look like one made by newsletter 0.1" in out and "subscribers lacks column email" in out
    with sqlite3.connect(tmp_path / "state" / "newsletter.db") as con:
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["subscribers"]


def test_db_upgrade_creates_a_new_database(db_url, tmp_path):
    config_file = _project(tmp_path)
    text_ = config_file.read_text().replace('url = "sqlite:///state/newsletter.db"', f'url = "{db_url}"')
    config_file.write_text(text_)
    assert f"created the database at schema revision {SCHEMA_HEAD}" in _run(config_file, "db", "upgrade").output
    assert "nothing to do" in _run(config_file, "db", "upgrade").output
    dispose_engines()


def test_an_older_or_newer_revision_is_refused_until_upgraded(db_url):
    config = build_config(Path.cwd(), database={"url": db_url})
    engine = get_engine(config)
    dispose_engines()
    with write_transaction(engine) as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        for name in ("admin_sessions",                                                   # revision 0006's
                     "users", "api_tokens", "inbox_candidates", "dismissed_links",
                     "erased_addresses",                                                 # revision 0004's
                     "auto_digest_carry", "feed_entries_seen", "newsletter_meta", "list_pauses",
                     "feedback_events", "suppressions",                                  # revision 0003's
                     "queue_rates", "queue_workers", "queue_chunks", "queue_sends"):    # revision 0002's
            conn.execute(text(f"DROP TABLE {name}"))
        for index in ("ix_deliveries_message_id", "ix_deliveries_provider_id", "ix_deliveries_subscriber_id"):
            conn.execute(text(f"DROP INDEX {index}"))
    engine.dispose()
    with pytest.raises(ConfigError, match="revision 0001, this version of newsletter needs"):
        get_engine(config)
    scratch = unchecked_engine(db_url)
    with write_transaction(scratch) as conn:
        report = migrate.upgrade_to_head(conn)
    assert (report.before, report.after, report.adopted) == ("0001", SCHEMA_HEAD, False)
    with write_transaction(scratch) as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with write_transaction(scratch) as conn, pytest.raises(ConfigError, match="newer release"):
        migrate.upgrade_to_head(conn)
    scratch.dispose()
    dispose_engines()


def test_two_processes_opening_a_new_database_at_once(tmp_path):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'new.db'}"
    code = ("import sys; from newsletter.db import engine_for_url; engine_for_url(sys.argv[1]); print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(3)]
    outs = [p.communicate(timeout=60)[0].decode() for p in procs]
    assert all(o.strip().endswith("ok") for o in outs), outs
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [SCHEMA_HEAD]
    engine.dispose()


@pytest.mark.postgres
def test_an_unversioned_postgresql_database_is_adopted(pg_url, tmp_path):
    from newsletter.queue.schema import upgrade_database
    from store_support import write_csv

    config = build_config(tmp_path, database={"url": pg_url})
    engine = get_engine(config)
    SubscriberStore(engine).import_csv(write_csv(tmp_path / "l.csv", 4), "default")
    Ledger(engine).plan("w1", "default")
    dispose_engines()
    scratch = unchecked_engine(pg_url)
    with write_transaction(scratch) as conn:     # as 0.1 left it: no version, no queue, no lease yet
        for name in ("alembic_version", "queue_rates", "queue_workers", "queue_chunks", "queue_sends",
                     "scheduler_lease", "auto_digest_carry", "feed_entries_seen", "newsletter_meta",
                     "list_pauses", "feedback_events", "suppressions", "users", "api_tokens", "admin_sessions",
                     "inbox_candidates", "dismissed_links", "erased_addresses"):
            conn.execute(text(f"DROP TABLE {name}"))
        for index in ("ix_deliveries_message_id", "ix_deliveries_provider_id", "ix_deliveries_subscriber_id"):
            conn.execute(text(f"DROP INDEX {index}"))
    scratch.dispose()
    with pytest.raises(ConfigError, match="made by newsletter 0.1"):
        get_engine(config)
    report, steps = upgrade_database(config)
    assert report.adopted and report.after == SCHEMA_HEAD and steps == []
    assert Ledger(get_engine(config)).counts("w1")["pending"] == 4
    assert {"scheduler_lease", "queue_sends"} <= set(inspect(get_engine(config)).get_table_names())
    dispose_engines()
