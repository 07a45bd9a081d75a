"""Subscriber lists: addresses, consent states, CSV import/export, streaming (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.errors import SubscriberError
from newsletter.db import dispose_engines, engine_for_url
from newsletter.subscribers.store import SubscriberStore, normalise_address
from store_support import write_csv

SAMPLE = Path(__file__).resolve().parent.parent / "subscribers" / "sample.csv"


@pytest.fixture
def store(db_url) -> SubscriberStore:
    return SubscriberStore(engine_for_url(db_url))


def test_normalise_address_lowercases_the_domain_only():
    assert normalise_address("  Ann.Lee@Example.ORG ") == "Ann.Lee@example.org"


def test_normalise_address_does_not_look_up_the_domain():
    # A domain that does not exist is fine: no DNS lookup by default (imports stay fast, offline).
    assert normalise_address("x@no-such-domain-8f3a1c.com") == "x@no-such-domain-8f3a1c.com"


@pytest.mark.parametrize("bad", ["", "plainaddress", "a@b", "two@@example.org", "a b@example.org",
                                 "x@example.org\nBcc: y@example.org"])
def test_invalid_addresses_raise_subscriber_error(bad):
    with pytest.raises(SubscriberError):
        normalise_address(bad)


def test_add_get_set_status_remove(store):
    sub = store.add("Ann@Example.org", name="Ann", fields={"city": "Paris"})
    assert (sub.email, sub.name, sub.status, sub.fields) == ("Ann@example.org", "Ann", "active", {"city": "Paris"})
    assert store.get("ann@EXAMPLE.org", "default") == sub          # case-insensitive look-up
    assert store.get("ann@example.org", "other") is None
    assert store.set_status("ANN@example.org", "default", "unsubscribed") is True
    assert store.get("ann@example.org", "default").status == "unsubscribed"
    assert store.set_status("nobody@example.org", "default", "active") is False
    assert store.remove("ann@example.org", "default") is True
    assert store.remove("ann@example.org", "default") is False
    assert store.get("ann@example.org", "default") is None


def test_add_invalid_address_or_status(store):
    with pytest.raises(SubscriberError, match="invalid email address"):
        store.add("not-an-address")
    with pytest.raises(SubscriberError, match="unknown subscriber status"):
        store.add("a@example.org", status="happy")
    assert store.count("default") == 0


def test_add_never_resubscribes_a_suppressed_address(store):
    store.add("b@example.org", status="active")
    store.set_status("b@example.org", "default", "complained")
    again = store.add("B@example.org", name="Bee", status="active")
    assert again.status == "complained" and again.name == ""
    # an explicit state change (e.g. a confirmed web sign-up) does it
    store.set_status("b@example.org", "default", "active")
    assert store.get("b@example.org", "default").status == "active"


def test_same_address_in_two_lists_is_two_subscribers(store):
    store.add("c@example.org", list_name="a")
    store.add("C@example.org", list_name="b")
    assert store.lists() == ["a", "b"]
    assert store.count("a") == store.count("b") == 1


def test_import_reports_bad_rows_by_line_and_imports_the_rest(store, tmp_path):
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(
        "email,name,city\n"                       # 1
        "ann@example.org,Ann,Paris\n"             # 2
        "not-an-address,Bad,Nowhere\n"            # 3
        "bob@example.org,Bob,Rome,extra\n"        # 4 too many values
        "\n"                                      # 5 blank: ignored
        "\"carl@example.org\"x,Carl,Oslo\n"       # 6 broken quoting
        "dee@example.org\n"                       # 7 missing trailing columns are empty
        "ANN@EXAMPLE.ORG,,Lyon\n",                # 8 duplicate of line 2: merged
        encoding="utf-8")
    report = store.import_csv(csv_file, "default")
    assert [line for line, _ in report.errors] == [3, 4, 6]
    assert "invalid email address" in report.errors[0][1]
    assert "4 values but the header has 3 columns" in report.errors[1][1]
    assert "malformed CSV" in report.errors[2][1]
    assert (report.added, report.duplicates) == (2, 1)
    ann = store.get("ann@example.org", "default")
    assert (ann.email, ann.name, ann.fields) == ("ann@example.org", "Ann", {"city": "Lyon"})
    assert store.get("dee@example.org", "default").fields == {}


def test_import_streams_in_batches_and_counts_duplicates_across_them(store, tmp_path, monkeypatch):
    from newsletter.subscribers import csvfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    n = csvfile.BATCH * 2 + 500
    lines = ["email,name,city"] + [f"user{i}@example.org,User {i},Town" for i in range(n)]
    # Repeats of rows from earlier batches, one of them twice in the same later batch, and a bad line.
    lines += ["user5@example.org,Fifth,Oslo", "USER5@example.org,,Rome", "user1500@example.org,,Lima", "bad"]
    csv_file = tmp_path / "big.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = store.import_csv(csv_file, "default")
    assert (report.added, report.duplicates, report.updated) == (n, 3, 2)
    assert report.errors == [(n + 5, report.errors[0][1])] and "invalid email address" in report.errors[0][1]
    fifth = store.get("user5@example.org", "default")
    assert (fifth.name, fifth.fields) == ("Fifth", {"city": "Rome"})       # later values win
    assert not list(scratch.iterdir())                                    # its scratch file is gone


def test_import_line_numbers_count_physical_lines(store, tmp_path):
    csv_file = tmp_path / "list.csv"
    csv_file.write_bytes(b'email,name\r\na@example.org,"two\r\nlines"\r\nbad,x\r\nb@example.org,\xff\xfe\r\n'
                         + "c@example.org,Jos\u00e9 Garc\u00eda N\u00fa\u00f1ez\r\n".encode("utf-8"))
    report = store.import_csv(csv_file, "default")
    assert report.format.encoding_name == "UTF-8"       # mostly UTF-8: the stray bytes spoil one row
    assert report.errors[0][0] == 4 and "invalid email" in report.errors[0][1]
    assert report.errors[1][0] == 5 and report.errors[1][1].startswith("not valid UTF-8 text")
    assert store.get("c@example.org", "default").name == "Jos\u00e9 Garc\u00eda N\u00fa\u00f1ez"
    # The one name rule: a line break inside a cell becomes a space (it would reach the To: header).
    assert store.get("a@example.org", "default").name == "two lines"


def test_reimport_never_reactivates_suppressed_addresses(store, tmp_path):
    csv_file = write_csv(tmp_path / "list.csv", 5)
    assert store.import_csv(csv_file, "default").added == 5
    for address, state in [("user1@example.org", "unsubscribed"), ("user2@example.org", "bounced"),
                           ("user3@example.org", "complained")]:
        store.set_status(address, "default", state)
    # even a file that says "active" explicitly leaves them alone
    with_status = tmp_path / "with_status.csv"
    with_status.write_text("email,name,status\nUSER1@example.org,U1,active\nuser2@example.org,U2,active\n"
                           "user3@example.org,U3,\nuser4@example.org,New Name,\n", encoding="utf-8")
    report = store.import_csv(with_status, "default")
    assert (report.added, report.updated, report.kept_suppressed) == (0, 1, 3)
    again = store.import_csv(csv_file, "default")
    assert (again.added, again.kept_suppressed, again.errors) == (0, 3, [])
    assert store.counts("default") == {"active": 2, "unconfirmed": 0, "unsubscribed": 1, "bounced": 1,
                                       "complained": 1}
    assert store.get("user1@example.org", "default").name == "User 1"


def test_import_unusable_files(store, tmp_path):
    with pytest.raises(SubscriberError, match="cannot read"):
        store.import_csv(tmp_path / "missing.csv", "default")
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SubscriberError, match="empty file"):
        store.import_csv(empty, "default")
    no_email = tmp_path / "no_email.csv"
    no_email.write_text("name,city\nAnn,Paris\n", encoding="utf-8")
    with pytest.raises(SubscriberError, match="line 1: the header needs exactly one 'email' column"):
        store.import_csv(no_email, "default")
    assert store.lists() == []


def test_import_semicolon_file_with_bom(store, tmp_path):
    csv_file = tmp_path / "excel.csv"
    csv_file.write_bytes("\ufeffE-mail;Name;First Name\nann@example.org;Ann Lee;Ann\n".encode("utf-8"))
    assert store.import_csv(csv_file, "default").added == 1
    assert store.get("ann@example.org", "default").fields == {"First Name": "Ann"}


def test_sample_list_imports_and_merges_its_duplicate(store):
    report = store.import_csv(SAMPLE, "default")
    assert report.errors == [] and report.duplicates == 1
    assert store.count("default") == report.added == 9
    assert store.get("ada@example.org", "default").fields["interests"] == "computing, poetry"


def test_export_then_import_round_trips(store, tmp_path):
    store.import_csv(SAMPLE, "default")
    store.set_status("hedy@example.com", "default", "unsubscribed")
    out = tmp_path / "export.csv"
    assert store.export_csv(out, "default") == 9
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header == "email,name,status,city,interests"
    store.import_csv(out, "copy")
    originals = {s.email: s for s in store.iter_subscribers("default")}
    copies = {s.email: s for s in store.iter_subscribers("copy")}
    assert {e: (s.name, s.status, s.fields) for e, s in copies.items()} == \
        {e: (s.name, s.status, s.fields) for e, s in originals.items()}
    buffer = io.StringIO()
    store.export_csv(buffer, "default", status="unsubscribed")
    assert buffer.getvalue().splitlines()[1].startswith("hedy@example.com,Hedy Lamarr,unsubscribed")


def test_export_unknown_list(store, tmp_path):
    store.add("a@example.org")
    with pytest.raises(SubscriberError, match="unknown list 'nope' .*default"):
        store.export_csv(tmp_path / "x.csv", "nope")


def test_iter_active_streams_in_chunks(store, tmp_path):
    store.import_csv(write_csv(tmp_path / "list.csv", 10), "default")
    store.set_status("user4@example.org", "default", "bounced")
    seen = [s.email for s in store.iter_active("default", chunk=3)]
    assert seen == [f"user{i}@example.org" for i in range(10) if i != 4]
    assert store.count("default", "active") == 9


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.text(alphabet=st.sampled_from('ab@.,"\n;xé '), max_size=20), max_size=12))
def test_any_file_is_imported_or_reported_row_by_row(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("fuzz")
    store = SubscriberStore(engine_for_url(f"sqlite:///{folder / 'db.sqlite'}"))
    csv_file = folder / "fuzz.csv"
    csv_file.write_text("email,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    report = store.import_csv(csv_file, "fuzz")
    total_lines = csv_file.read_text(encoding="utf-8").count("\n")
    assert all(2 <= line <= total_lines for line, _ in report.errors)
    assert all(message and "\n" not in message for _, message in report.errors)
    imported = store.count("fuzz") if store.lists() else 0
    dispose_engines()
    assert imported == report.added
