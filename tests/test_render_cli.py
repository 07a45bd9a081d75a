"""`newsletter init` and `newsletter build` from the command line: an identity that is yours (asked
on a terminal, given by options, or placeholders that build warns about), previews that open,
links checked, empty issues refused; and a test send through the file backend says where it went."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomlkit
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.db import dispose_engines
from newsletter.render.checks import check_personalised

ROOT = Path(__file__).resolve().parent.parent
MINE = ["--name", "Field Notes", "--sender", "Field Notes <letters@fieldnotes.eu>",
        "--postal-address", "Field Notes, 4 Quay Road, Bristol", "--base-url", "https://news.fieldnotes.eu"]
ISSUE = """id = "w1"
title = "Week one"
date = "2026-03-02"
intro = \"\"\"
Hello **{{ subscriber.name or 'there' }}**{% if subscriber.city %} in {{ subscriber.city }}{% endif %}!

- one [link](LINK)
- and a list
\"\"\"
outro = "See you next week."

[[items]]
url = "https://example.org/a"
title = "A story"
source = "Example Times"
summary = "The summary of the story."
note = "My *own* take, with a [source](https://example.org/src)."
"""


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, result.output
        return result

    yield invoke
    dispose_engines()


@pytest.fixture
def project(tmp_path, run, monkeypatch):
    """A newsletter made by `init` with a real identity, holding issue w1 and a list with a city column."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "render-cli-tests-0123456789abcdef")
    run("init", str(tmp_path / "news"), *MINE)
    root = tmp_path / "news"
    (root / "issues" / "w1.toml").write_text(ISSUE.replace("LINK", "https://example.org/list"), encoding="utf-8")
    os.chdir(root)
    (root / "subscribers" / "list.csv").write_text("email,name,city\na@example.net,Ann,Oslo\n", encoding="utf-8")
    run("subscribers", "import", "subscribers/list.csv")
    return root


def newsletter_table(root: Path) -> dict:
    return tomlkit.parse((root / "config.toml").read_text(encoding="utf-8"))["newsletter"].unwrap()


# -- init ------------------------------------------------------------------------------------------

def test_init_with_options_writes_the_identity_and_keeps_the_comments(tmp_path, run):
    result = run("init", str(tmp_path / "news"), *MINE)
    table = newsletter_table(tmp_path / "news")
    assert (table["name"], table["sender"], table["postal_address"], table["base_url"]) == (
        "Field Notes", "Field Notes <letters@fieldnotes.eu>", "Field Notes, 4 Quay Road, Bristol",
        "https://news.fieldnotes.eu")
    text = (tmp_path / "news" / "config.toml").read_text(encoding="utf-8")
    assert "# the From header" in text and "The Orbit Weekly" not in text
    assert "placeholder" not in result.output
    load_config(tmp_path / "news" / "config.toml")              # still a valid config


def test_init_without_a_terminal_or_options_keeps_placeholders_and_says_so(tmp_path, run):
    result = run("init", str(tmp_path / "news"))
    assert ("kept placeholders for newsletter.name, newsletter.sender, newsletter.postal_address, "
            "newsletter.base_url") in result.output
    assert "--name --sender --postal-address --base-url" in result.output
    table = newsletter_table(tmp_path / "news")
    assert "example.org" in table["sender"] and table["postal_address"] == ""
    assert "The Orbit Weekly" not in (tmp_path / "news" / "config.toml").read_text(encoding="utf-8")


def test_init_with_some_options_names_only_what_it_kept(tmp_path, run):
    result = run("init", str(tmp_path / "news"), "--name", "Field Notes")
    assert "kept placeholders for newsletter.sender, newsletter.postal_address, newsletter.base_url" in result.output
    assert newsletter_table(tmp_path / "news")["sender"] == "Field Notes <newsletter@example.org>"


@pytest.mark.parametrize("option, value, message", [
    ("--sender", "not an address", "sender 'not an address'"),
    ("--base-url", "news.fieldnotes.eu", "must be an https:// address with a host"),
    ("--base-url", "ftp://news.fieldnotes.eu", "must be an https:// address with a host"),
])
def test_init_refuses_an_unusable_option_and_writes_nothing(tmp_path, run, option, value, message):
    result = run("init", str(tmp_path / "news"), option, value, code=2)
    assert message in result.output
    assert not (tmp_path / "news" / "config.toml").exists()


def _on_terminal(args: list[str], answers: list[tuple[str, str]], cwd: Path, timeout: float = 60) -> str:
    """Run args with a pseudo-terminal as stdin/stdout, typing each answer once its prompt appears."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    output, seen, pending = b"", 0, list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:         # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if pending and pending[0][0].encode() in output[seen:]:
                seen = output.rindex(pending[0][0].encode()) + 1
                os.write(master, pending.pop(0)[1].encode() + b"\n")
            if proc.poll() is not None and not ready:
                break
    finally:
        os.close(master)
        proc.wait(timeout=10)
    assert not pending, output.decode(errors="replace")
    return output.decode(errors="replace")


def test_init_on_a_terminal_asks_for_the_identity_and_checks_the_answers(tmp_path):
    output = _on_terminal([sys.executable, "-m", "newsletter", "init", "news"], [
        ("Newsletter name", "Field Notes"),
        ("Sender", "no address here"),                      # refused, asked again
        ("Sender", "Field Notes <letters@fieldnotes.eu>"),
        ("Postal address", "4 Quay Road, Bristol"),
        ("Public https address", "http://news.fieldnotes.eu"),   # accepted, with a note
    ], cwd=tmp_path)
    assert "invalid email address" in output
    assert "one-click unsubscribe needs https" in output
    assert "kept placeholders" not in output
    table = newsletter_table(tmp_path / "news")
    assert (table["name"], table["sender"], table["postal_address"], table["base_url"]) == (
        "Field Notes", "Field Notes <letters@fieldnotes.eu>", "4 Quay Road, Bristol", "http://news.fieldnotes.eu")


# -- build -----------------------------------------------------------------------------------------

def test_build_writes_previews_filled_for_a_sample_subscriber(project, run):
    result = run("build", "w1")
    folder = project / "state" / "issues" / "w1"
    assert f"look at it: {folder / 'preview.html'} and preview.txt" in result.output
    html = (folder / "preview.html").read_text(encoding="utf-8")
    text = (folder / "preview.txt").read_text(encoding="utf-8")
    assert check_personalised(html, text) == []                 # no raw placeholder, no Jinja
    assert "NLT" not in html and "NLT" not in text
    assert "Hello <strong>Sample Reader</strong>!" in html and "Hello Sample Reader!" in text
    assert "/u/" in html and "reader@example.com" in text      # a working sample unsubscribe link
    assert "NLT" in (folder / "email.html").read_text(encoding="utf-8")   # the raw render keeps tokens
    assert "0 warnings" in result.output and "warning:" not in result.output, result.output


def test_build_warns_about_a_placeholder_identity_and_strict_fails(tmp_path, run, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "render-cli-tests-0123456789abcdef")
    run("init", str(tmp_path / "news"))
    (tmp_path / "news" / "issues" / "w1.toml").write_text(ISSUE.replace("LINK", "https://example.org/l"),
                                                          encoding="utf-8")
    os.chdir(tmp_path / "news")
    result = run("build", "w1")
    assert "newsletter.sender 'My Newsletter <newsletter@example.org>' is a placeholder" in result.output
    assert "newsletter.postal_address is empty" in result.output
    result = run("build", "w1", "--strict", code=1)
    assert "error: " in result.output and "nothing saved" in result.output


def test_build_strict_fails_on_an_http_base_url(project, run):
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("https://news.fieldnotes.eu",
                                                                 "http://news.fieldnotes.eu"), encoding="utf-8")
    result = run("build", "w1", "--strict", code=1)
    assert "newsletter.base_url 'http://news.fieldnotes.eu' is not https" in result.output


def test_an_empty_issue_is_an_error(project, run):
    run("issue", "new", "w2")
    result = run("build", "w2", code=1)
    assert "error: issue 'w2' has no items: add some with `newsletter add SOURCE --issue w2`" in result.output
    assert not (project / "state" / "issues" / "w2").exists()


def test_check_links_reports_dead_links_and_strict_fails(project, run, httpserver):
    httpserver.expect_request("/list").respond_with_data("ok")
    httpserver.expect_request("/gone").respond_with_data("gone", status=404)
    issue = project / "issues" / "w1.toml"
    text = ISSUE.replace("LINK", httpserver.url_for("/gone")).replace("https://example.org/a",
                                                                       httpserver.url_for("/list"))
    issue.write_text(text.replace("https://example.org/src", "https://nowhere.invalid/src"), encoding="utf-8")
    result = run("build", "w1")                                   # links are not checked unless asked
    assert "is dead" not in result.output
    result = run("build", "w1", "--check-links")
    assert f"warning: link {httpserver.url_for('/gone')} is dead: HTTP 404" in result.output
    assert "warning: link https://nowhere.invalid/src is dead: host not found" in result.output
    assert httpserver.url_for("/list") + " is dead" not in result.output
    run("build", "w1", "--check-links", "--strict", code=1)


def test_unknown_merge_fields_are_build_warnings(project, run):
    issue = project / "issues" / "w1.toml"
    issue.write_text(issue.read_text(encoding="utf-8").replace(
        "See you next week.", "See you in {{ subscriber.citty or 'town' }}."), encoding="utf-8")
    result = run("build", "w1")
    assert "unknown merge field subscriber.citty in merge field \"{{ subscriber.citty or 'town' }}\"" in result.output
    assert "subscriber.city " not in result.output                # city is a column of the list


def test_a_problem_of_the_render_is_not_reported_again_for_the_preview(project, run):
    # A merge field in an item's title is not filled (only intro, outro, notes): the leftover
    # marker is one warning per part, not a second time with "preview: " in front.
    issue = project / "issues" / "w1.toml"
    issue.write_text(issue.read_text(encoding="utf-8").replace(
        'title = "A story"', 'title = "A story for {{ subscriber.name }}"'), encoding="utf-8")
    warnings = [line for line in run("build", "w1").stderr.splitlines() if "leftover template marker" in line]
    assert len(warnings) == 2 and not any("preview:" in line for line in warnings), warnings


def test_a_test_send_through_the_file_backend_says_where_the_file_is(project, run):
    run("build", "w1")
    result = run("send", "w1", "--to", "me@fieldnotes.eu")
    path = project / "state" / "outbox" / "w1" / "me@fieldnotes.eu.eml"
    assert f"written to {path}" in result.output and "nothing was mailed" in result.output
    assert path.exists()


def test_readme_points_editors_at_the_preview():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "preview.html" in readme
