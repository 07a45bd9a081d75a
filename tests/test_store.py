"""The database layer: engine creation, SQLite settings, errors for bad URLs (SQLite and PostgreSQL)."""

from __future__ import annotations

import ast
import subprocess
import sys
import time

import pytest
from sqlalchemy import inspect, text

from newsletter.errors import ConfigError
from newsletter.db import engine_for_url, get_engine, write_transaction
from store_support import make_config


def test_engine_creates_tables_and_is_cached(db_url):
    engine = engine_for_url(db_url)
    assert {"subscribers", "issues", "deliveries"} <= set(inspect(engine).get_table_names())
    assert engine_for_url(db_url) is engine


def test_default_sqlite_database_lives_under_the_config_folder(tmp_path):
    config = make_config(tmp_path, url="sqlite:///state/sub/newsletter.db")
    engine = get_engine(config)
    assert (tmp_path / "state" / "sub" / "newsletter.db").exists()
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1        # NORMAL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000


def test_write_transaction_rolls_back_on_error(db_url):
    engine = engine_for_url(db_url)
    with pytest.raises(RuntimeError):
        with write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO issues (id, list, state, started_at) "
                              "VALUES ('x', 'default', 'sending', CURRENT_TIMESTAMP)"))
            raise RuntimeError("boom")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM issues")).scalar() == 0


@pytest.mark.parametrize("url, words", [
    ("not a url", "not a database URL"),
    ("nosuchdb://host/db", "nosuchdb"),
    ("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", "cannot open the database"),
])
def test_bad_database_url_is_one_clear_config_error(url, words):
    with pytest.raises(ConfigError) as info:
        engine_for_url(url)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert "secret" not in message          # the password never reaches the terminal


def test_sqlite_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot create its folder"):
        engine_for_url(f"sqlite:///{tmp_path / 'file' / 'db' / 'newsletter.db'}")


def test_processes_starting_together_all_get_the_tables(db_url):
    # Several commands (send, the web app, the scheduler) may open a fresh database at once.
    # Each process imports first, then all open the database at the same agreed instant.
    code = ("import sys, time; from newsletter.db import engine_for_url; from sqlalchemy import inspect; "
            "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
            "print(sorted(inspect(engine_for_url(sys.argv[1])).get_table_names()))")
    start = f"{time.time() + 1.5:.3f}"
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url, start], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    # Every process sees the whole schema (the one that created it ran every revision).
    assert all({"deliveries", "issues", "newsletter_meta", "subscribers", "suppressions", "feedback_events",
      "list_pauses", "users", "api_tokens", "inbox_candidates", "dismissed_links", "erased_addresses",
      "alembic_version"}
               <= set(ast.literal_eval(out.strip().splitlines()[-1])) for out in outputs), outputs
