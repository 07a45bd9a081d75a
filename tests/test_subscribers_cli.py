"""`newsletter subscribers ...` from the command line: one clear line per problem, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.db import dispose_engines

SAMPLE = Path(__file__).resolve().parent.parent / "subscribers" / "sample.csv"


@pytest.fixture
def run(tmp_path):
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///state/newsletter.db"\n'
                                          '[signing]\nsecret_env = ""\n', encoding="utf-8")
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, ["--config", str(tmp_path / "config.toml"), *args])
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code == 1, result.output
        return result

    yield invoke
    dispose_engines()


def test_import_count_list_export(run, tmp_path):
    out = run("subscribers", "import", str(SAMPLE)).output
    assert "9 added" in out and "1 duplicates merged" in out and "0 rows rejected" in out
    assert (tmp_path / "state" / "newsletter.db").exists()   # relative to the config file
    count = run("subscribers", "count").output
    assert "active" in count and "9" in count.splitlines()[0]
    listing = run("subscribers", "list", "--limit", "2").output.splitlines()
    assert listing == ["ada@example.org\tactive\tAda Lovelace",
                       "grace.hopper@example.com\tactive\tGrace Hopper"]
    exported = run("subscribers", "export").output
    assert exported.splitlines()[0] == "email,name,status,city,interests" and len(exported.splitlines()) == 10
    run("subscribers", "export", str(tmp_path / "out.csv"))
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == exported


def test_malformed_rows_are_named_by_line(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("email,name\nok@example.org,Ok\nnope,Nope\n\"x@example.org\"y,X\n", encoding="utf-8")
    result = run("subscribers", "import", str(bad))
    assert f"warning: {bad}: line 3: invalid email address 'nope'" in result.output
    assert f"warning: {bad}: line 4: malformed CSV" in result.output
    assert "1 added" in result.output and "2 rows rejected" in result.output


def test_a_file_without_email_column_is_one_error_line(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nAnn\n", encoding="utf-8")
    result = run("subscribers", "import", str(bad), ok=False)
    assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_add_remove_and_suppression(run):
    assert "added A@example.org (active)" in run("subscribers", "add", "A@example.org", "--name", "A",
                                                 "--field", "city=Rome").output
    assert "not-an-address" in run("subscribers", "add", "not-an-address", ok=False).output
    run("subscribers", "add", "b@example.org", "--status", "unsubscribed")
    kept = run("subscribers", "add", "b@example.org").output
    assert "stays unsubscribed" in kept
    assert "removed a@example.org" in run("subscribers", "remove", "a@example.org").output
    assert "is unsubscribed already" in run("subscribers", "remove", "a@example.org").output
    assert "is not on list" in run("subscribers", "remove", "c@example.org", ok=False).output


def test_a_removed_address_is_not_subscribed_again_by_an_import(run, tmp_path):
    # README: `subscribers remove` unsubscribes (a suppression with source `manual`), so the next
    # import of a list that still holds the address does not put it back.
    run("subscribers", "add", "a@example.org", "--name", "A")
    run("subscribers", "remove", "a@example.org")
    again = tmp_path / "again.csv"
    again.write_text("email,name\na@example.org,A\n", encoding="utf-8")
    assert "1 kept unsubscribed" in run("subscribers", "import", str(again)).output
    listed = run("subscribers", "list", "--status", "unsubscribed").output
    assert listed.startswith("a@example.org\tunsubscribed") and "\tmanual\t" in listed


def test_unknown_list_is_one_error_line(run):
    run("subscribers", "add", "a@example.org", "--list", "friends")
    for command in (["count"], ["list"], ["export"]):
        result = run("subscribers", *command, "--list", "nope", ok=False)
        assert result.output == "error: unknown list 'nope' (known lists: friends)\n"
