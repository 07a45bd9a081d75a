"""Subscriber data against hostile input: bad rows in a big import are row errors that never stop
the valid ones (SQLite and PostgreSQL), exported cells never run as spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from config_support import build_config
from newsletter.cli import cli
from newsletter.db import dispose_engines, engine_for_url
from newsletter.errors import InputError, SubscriberError
from newsletter.subscribers.csvfile import escape_cell, unescape_cell
from newsletter.subscribers.store import SubscriberStore


@pytest.fixture
def store(db_url) -> SubscriberStore:
    return SubscriberStore(engine_for_url(db_url))


def write_rows(path, rows):
    """Write a CSV with the header email,name,city and rows; returns path."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["email", "name", "city"])
        writer.writerows(rows)
    return path


def test_bad_rows_in_a_big_import_are_reported_and_every_valid_row_is_stored(store, tmp_path):
    # Before: on PostgreSQL a 501-character name at row 2,500 raised a traceback after 2,000 rows
    # and silently skipped the 2,999 valid ones after it.
    rows = [[f"user{i}@example.org", f"User {i}", "Lyon"] for i in range(5000)]
    bad = {2500: "x" * 501, 3100: "NUL\x00inside", 3200: "bell\x07", 3300: "esc\x1b[2J", 4999: "\u202eevil"}
    for index, name in bad.items():
        rows[index][1] = name
    report = store.import_csv(write_rows(tmp_path / "big.csv", rows), "default")
    assert [line for line, _ in report.errors] == [i + 2 for i in sorted(bad)]      # line 1 is the header
    assert "longer than 200 characters" in report.errors[0][1]
    assert all("U+" in message for _, message in report.errors[1:])
    assert report.added == 5000 - len(bad)
    assert store.count("default") == 5000 - len(bad)
    assert store.get("user2501@example.org", "default").name == "User 2501"


def test_a_row_the_database_itself_refuses_is_a_row_error(store, tmp_path):
    # A rule only the database knows (here a constraint an operator added): the batch is split
    # until the refused row is alone, and every other row is stored.
    engine = store.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER no_mallory BEFORE INSERT ON subscribers WHEN NEW.name = 'Mallory' "
                              "BEGIN SELECT RAISE(ABORT, 'no Mallory here'); END"))
        else:
            conn.execute(text("ALTER TABLE subscribers ADD CONSTRAINT no_mallory CHECK (name <> 'Mallory')"))
    rows = [[f"user{i}@example.org", "Mallory" if i == 1234 else f"User {i}", ""] for i in range(2500)]
    report = store.import_csv(write_rows(tmp_path / "list.csv", rows), "default")
    assert [line for line, _ in report.errors] == [1236]
    assert "the database refused this row" in report.errors[0][1]
    assert store.count("default") == 2499


def test_long_list_names_and_names_are_one_clear_error(store):
    with pytest.raises(InputError, match="longer than 100"):
        store.add("a@example.org", list_name="l" * 201)
    with pytest.raises(InputError, match="longer than 200"):
        store.add("a@example.org", name="n" * 600)
    with pytest.raises(InputError, match="U\\+0000"):
        store.add("a@example.org", name="a\x00b")
    with pytest.raises(SubscriberError):
        store.require_list("a\x00b")
    assert store.lists() == []


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\tcmd", "\rcmd"])
def test_export_escapes_formula_cells_and_import_reads_them_back(store, tmp_path, cell):
    store.add("ann@example.org", name=" ".join(cell.split()) or "x", status="active",
              fields={"note": cell.strip() or "x"})
    store.add("-dash@example.org", name="Dash", status="active")      # a valid address starting with -
    out = io.StringIO()
    store.export_csv(out, "default")
    for row in list(csv.reader(io.StringIO(out.getvalue())))[1:]:
        for value in row:
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    # The export imports back as it was: the quote the export added is taken off again.
    path = tmp_path / "export.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    other = store.import_csv(path, "copy")
    assert other.errors == [] and other.added == 2
    assert store.get("-dash@example.org", "copy") is not None
    assert store.get("ann@example.org", "copy").fields == store.get("ann@example.org", "default").fields


def test_escape_rules_follow_owasp():
    for start in "=+-@\t\r":
        assert escape_cell(start + "x") == "'" + start + "x"
        assert unescape_cell("'" + start + "x") == start + "x"
    assert escape_cell("Ann") == "Ann" and unescape_cell("'Ann") == "'Ann"


def test_subscribers_list_never_prints_control_characters(tmp_path):
    config = build_config(tmp_path, write=True)
    engine = engine_for_url(config.database_url())
    with engine.begin() as conn:     # a name stored by an earlier release, before the name rule
        conn.execute(text("INSERT INTO subscribers (list, email, email_key, name, fields, status, created_at, "
                          "updated_at) VALUES ('default', 'old@example.org', 'old@example.org', "
                          "'Old\x1b[2J\x07Name', '{}', 'active', '2024-01-01', '2024-01-01')"))
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.toml"), "subscribers", "list"])
    dispose_engines()
    assert result.exit_code == 0
    assert result.output == "old@example.org\tactive\tOld\\x1b[2J\\x07Name\n"


def test_exports_are_private(tmp_path):
    config = build_config(tmp_path, write=True)
    store = SubscriberStore(engine_for_url(config.database_url()))
    store.add("ann@example.org", status="active")
    target = tmp_path / "out.csv"
    target.write_text("older export", encoding="utf-8")
    target.chmod(0o644)
    store.export_csv(target, "default")
    dispose_engines()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text(encoding="utf-8").startswith("email,name,status")
