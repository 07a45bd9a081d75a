"""One rule per kind of input, wherever it enters: issue ids, list names, names and addresses
through the CLI, CSV imports, the web forms, the archive URLs and config, on SQLite and on
PostgreSQL. Arbitrary text gives a clean result or one clear error line, never a traceback."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path
from urllib.parse import quote

import pytest
import tomlkit
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings, strategies as st

from config_support import build_config
from newsletter.cli import cli
from newsletter.config import config_from_dict
from newsletter.db import get_engine, subscribers
from newsletter.errors import ConfigError, InputError
from newsletter.inputs import (MAX_NAME, bad_character, check_lengths, check_list_name, clean_field_value,
                               clean_name, printable)
from newsletter.issues import is_issue_id
from newsletter.subscribers.addresses import normalise_address
from newsletter.subscribers.store import SubscriberStore
from newsletter.web import create_app
from store_support import write_issue
from web_support import SECRET, csrf_from, settle

# Any text a person, a file or argv (undecodable bytes arrive as lone surrogates) can hand us.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)
FILE_TEXT = st.text(max_size=80)          # what a UTF-8 file can hold
NASTY = ["", " ", "x" * 600, "a\x00b", "Bell\x07", "Esc\x1b[31mred", "VT\x0bFF\x0c", "\u202eevil",
         "=HYPERLINK(\"http://evil.example\")", "../../../../outside/fake", "v..1", " default", "default ",
         "\udcff", "Zoë Ångström", "ann@example.org", "a\r\nBcc: x@evil.example"]


# -- the rules themselves --------------------------------------------------------------------

@pytest.mark.parametrize("given_name, cleaned", [
    ("  Ann   Lee ", "Ann Lee"), ("two\r\nlines\tand a tab", "two lines and a tab"),
    ("Zoë Ångström", "Zoë Ångström"), ("می\u200cخواهم", "می\u200cخواهم"), ("👩\u200d💻 Dev", "👩\u200d💻 Dev"),
    ("", ""), (None, ""), ("x" * MAX_NAME, "x" * MAX_NAME),
])
def test_names_are_cleaned(given_name, cleaned):
    assert clean_name(given_name) == cleaned


@pytest.mark.parametrize("bad, reason", [
    ("a\x00b", "U+0000"), ("Bell\x07", "U+0007"), ("VT\x0b", "U+000B"), ("FF\x0c", "U+000C"),
    ("Esc\x1b[31m", "U+001B"), ("RTL\u202eoverride", "U+202E"), ("\ufeffBOM", "U+FEFF"),
    ("\udcff", "U+DCFF"), ("x" * (MAX_NAME + 1), "longer than 200"),
])
def test_names_with_control_characters_or_too_long_are_refused(bad, reason):
    with pytest.raises(InputError, match=re.escape(reason)) as info:
        clean_name(bad)
    assert info.value.kind == "name" and "\n" not in str(info.value)


@pytest.mark.parametrize("bad", ["", "  ", " vip", "vip ", "a\x00", "tab\there", "x" * 101, "\u202e"])
def test_bad_list_names_are_refused(bad):
    with pytest.raises(InputError):
        check_list_name(bad)


def test_field_values_keep_line_breaks_but_not_control_characters():
    assert clean_field_value("note", " one\ntwo ") == "one\ntwo"
    with pytest.raises(InputError, match=re.escape("U+001B")):
        clean_field_value("note", "\x1b[2J")
    with pytest.raises(InputError, match="longer than 1000"):
        clean_field_value("note", "x" * 1001)


def test_column_limits_are_checked_before_writing():
    check_lengths(subscribers, {"name": "x" * 500, "list": "default"})
    with pytest.raises(InputError, match="500"):
        check_lengths(subscribers, {"name": "x" * 501})
    with pytest.raises(InputError, match="NUL"):
        check_lengths(subscribers, {"list": "a\x00"})


def test_printable_escapes_what_a_terminal_would_obey():
    assert printable("Ann") == "Ann"
    assert printable("A\x1b[2Jnn\u202e") == "A\\x1b[2Jnn\\u202e"


# -- every entry point, arbitrary text -------------------------------------------------------

@dataclasses.dataclass
class Project:
    """A newsletter on the test database: config file, an active subscriber, a built issue w1."""

    root: Path
    config_file: Path
    store: SubscriberStore
    runner: CliRunner
    client: object

    def run(self, *args: str):
        """Run the CLI in-process and assert it ended cleanly; return the click Result."""
        result = self.runner.invoke(cli, ["--config", str(self.config_file), *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            f"{args!r} raised {result.exception!r}"
        assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
        assert "Traceback" not in result.output
        if result.exit_code == 1:
            # One line per problem: at most one error (which stops the command), any warnings.
            lines = result.stderr.splitlines()
            assert lines and all(line.startswith(("error: ", "warning: ")) for line in lines), (args, lines)
            assert sum(line.startswith("error: ") for line in lines) <= 1, (args, lines)
        return result

    def web_post(self, path: str, **form: str) -> int:
        """Post a form as a browser would (CSRF token included); return the status code."""
        csrf = csrf_from(self.client.get("/subscribe").get_data(as_text=True))
        # Encoded by hand: a client can send any bytes, even ones that are not UTF-8 (a lone
        # surrogate stands for those here).
        body = "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
                        for k, v in {"csrf_token": csrf, **form}.items())
        resp = self.client.post(path, data=body, content_type="application/x-www-form-urlencoded")
        settle(self.client.application)
        assert resp.status_code < 500, resp.get_data(as_text=True)
        return resp.status_code

    def csv_import(self, email: str, name: str, list_name: str = "default"):
        """Import a CSV holding one valid row, then the given row, then another valid row."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([["email", "name"], ["first@example.org", "First"], [email, name],
                          ["last@example.org", "Last"]])
        path = self.root / "import.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        result = self.run("subscribers", "import", str(path), f"--list={list_name}")
        if result.exit_code == 0:
            # The valid rows around a bad one are never lost ("--list=" means the default list).
            assert self.store.get("first@example.org", list_name or "default") is not None
            assert self.store.get("last@example.org", list_name or "default") is not None
        return result


@pytest.fixture
def project(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    config = build_config(tmp_path, write=True, database={"url": db_url},
                          signing={"secret_env": "NEWSLETTER_SECRET_KEY"},
                          web={"rate_limit_per_hour": 1_000_000})
    store = SubscriberStore(get_engine(config))
    store.add("ann@example.org", name="Ann", status="active")
    write_issue(config, "w1")
    return Project(tmp_path, tmp_path / "config.toml", store, CliRunner(),
                   create_app(config).test_client())


HYPOTHESIS = settings(max_examples=25, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _stored_names_follow_the_rule(store: SubscriberStore) -> None:
    """Assert every stored name and list name satisfies its rule."""
    for list_name in store.lists():
        check_list_name(list_name)
        for sub in store.iter_subscribers(list_name):
            assert bad_character(sub.name) is None and len(sub.name) <= MAX_NAME
            assert normalise_address(sub.email) == sub.email


@HYPOTHESIS
@given(text=ANY_TEXT)
@example(text="../../../../outside/fake")
@example(text="v..1")
@example(text="a\x00b")
@example(text="x" * 300)
def test_issue_ids_everywhere(project, text):
    for args in (("issue", "new", "--", text), ("build", "--", text), ("send", "--dry-run", "--", text),
                 ("send", "--to=ann@example.org", "--", text), ("status", "--", text),
                 ("schedule", "--at", "2099-01-01 07:00", "--", text),
                 ("add", "--issue", text, "missing-file.txt")):
        result = project.run(*args)
        if not is_issue_id(text) and args[0] != "add":
            assert result.exit_code != 0, (args, result.output)
    # An issue file whose id key says something else than its file name.
    (project.root / "issues").mkdir(exist_ok=True)
    (project.root / "issues" / "from-file.toml").write_text(
        tomlkit.dumps({"id": text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"), "title": "T"}),
        encoding="utf-8")
    assert project.run("build", "from-file").exit_code == (0 if text == "from-file" else 1)
    if text:        # "/archive/" alone is the index
        path = "/archive/" + quote(text.encode("utf-8", "surrogatepass"), safe="")
        resp = project.client.get(path)
        # Refused, or (for "/archive//") Werkzeug's redirect to the merged path on this host.
        assert resp.status_code in (400, 404) or (
            resp.status_code == 308 and resp.headers["Location"].startswith(("/", "http://localhost/"))), resp
    # Nothing outside the issues folder and state/issues was written.
    assert not (project.root.parent / "outside").exists()


@HYPOTHESIS
@given(text=ANY_TEXT)
@example(text=" default")
@example(text="x" * 201)
@example(text="a\x00b")
def test_list_names_everywhere(project, text):
    for args in (("subscribers", "add", "ann@example.org", f"--list={text}"),
                 ("subscribers", "remove", "bob@example.org", f"--list={text}"),
                 ("subscribers", "list", f"--list={text}"), ("subscribers", "count", f"--list={text}"),
                 ("subscribers", "export", f"--list={text}"),
                 ("send", "w1", "--dry-run", f"--list={text}"), ("status", "w1", f"--list={text}")):
        project.run(*args)
    if "\udc80" > max(text, default="") or not any("\ud800" <= c <= "\udfff" for c in text):
        project.csv_import("carl@example.org", "Carl", text)
    for section, key in (("delivery", "default_list"), ("schedule", "list")):
        try:
            config_from_dict({section: {key: text}}, project.root)
        except ConfigError as err:
            assert f"'{section}.{key}'" in str(err) and "\n" not in str(err)
    _stored_names_follow_the_rule(project.store)


@HYPOTHESIS
@given(text=ANY_TEXT, file_text=FILE_TEXT)
@example(text="x" * 600, file_text="x" * 501)
@example(text="Bad\x00Name", file_text="Bell\x07 Esc\x1b")
@example(text="a\r\nBcc: x@evil.example", file_text="\u202eevil")
def test_names_everywhere(project, text, file_text):
    project.run("subscribers", "add", "bob@example.org", f"--name={text}")
    project.csv_import("carl@example.org", file_text)
    assert project.web_post("/subscribe", email="dora@example.org", name=text, website="") in (200, 400)
    _stored_names_follow_the_rule(project.store)
    listing = project.run("subscribers", "list").stdout
    assert bad_character(listing, frozenset("\t\n")) is None


@HYPOTHESIS
@given(text=ANY_TEXT, file_text=FILE_TEXT)
@example(text="a\x00b@example.org", file_text="x" * 300 + "@example.org")
@example(text="victim+1@EXAMPLE.org", file_text="=cmd|' /C calc'!A0@example.org")
def test_addresses_everywhere(project, text, file_text):
    for args in (("subscribers", "add", "--", text), ("subscribers", "remove", "--", text),
                 ("send", "w1", f"--to={text}")):
        project.run(*args)
    project.csv_import(file_text, "Someone")
    assert project.web_post("/subscribe", email=text, name="", website="") in (200, 400)
    _stored_names_follow_the_rule(project.store)


def test_send_never_reads_a_render_outside_state(project):
    # Before: `send ../../../../outside/fake` mailed a render from outside state/ and recorded the id.
    outside = project.root / "outside" / "fake"
    outside.mkdir(parents=True)
    for name in ("email.html", "email.txt"):
        (outside / name).write_text("planted", encoding="utf-8")
    (outside / "rendered.json").write_text('{"issue_id": "x", "subject": "s", "preheader": "", "nonce": "n"}')
    for args in (("send", "../../outside/fake"), ("send", "../../outside/fake", "--to=ann@example.org"),
                 ("status", "../../outside/fake"), ("issue", "new", "v..1")):
        result = project.run(*args)
        assert result.exit_code == 1 and "invalid issue id" in result.stderr, (args, result.output)
    from newsletter.ledger import Ledger

    assert Ledger(project.store.engine).sent_issues() == []
    assert not any((project.root / "state" / "outbox").rglob("*.eml"))
