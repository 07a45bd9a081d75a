"""End to end through the CLI: a real article server → init → issue new → add → build."""

from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from compose_support import ARTICLES, Site, rss_item
from newsletter.cli import cli

PAGES = {"/a1": "cubesat-aurora.html", "/a2": "library-passkeys.html", "/a3": "street-trees-heat.html"}
FORBIDDEN = ("Medical news", "Nathan Thorne", "Bristol Royal Infirmary", "Latest medical news", "•")


@pytest.fixture()
def site():
    with Site() as server:
        for path, name in PAGES.items():
            server.file(path, ARTICLES / name)
        now = datetime.now(timezone.utc)
        items = [rss_item(f"{server.base}{path}", f"Story {i}", format_datetime(now - timedelta(days=age)))
                 for i, (path, age) in enumerate([("/a1", 1), ("/a2", 2), ("/a3", 30)])]
        server.feed("/feed.xml", items)
        yield server.base


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_compose_from_urls_text_and_feed(site: str, tmp_path: Path):
    run("init", "demo")
    config = str(tmp_path / "demo" / "config.toml")
    run("--config", config, "issue", "new", "w1", "--title", "Week one")
    sample = str(tmp_path / "demo" / "articles" / "space-diplomacy.txt")

    added = run("--config", config, "add", sample, f"{site}/a1", f"{site}/missing",
                "--issue", "w1", "--section", "Picks", ok=False)
    assert added.exit_code == 1                 # a source failed: scripts must notice
    assert "2 added" in added.output and "1 failed" in added.output
    assert f"warning: {site}/missing: HTTP 404" in added.output and added.output.count("/missing") == 1
    assert "Traceback" not in added.output

    again = run("--config", config, "add", f"{site}/a1", "--issue", "w1")
    assert "already in this issue" in again.output and "0 added" in again.output

    feed = run("--config", config, "add", "--feed", f"{site}/feed.xml", "--since", "7d", "--issue", "w1")
    assert "1 added" in feed.output and "1 skipped" in feed.output  # a1 is in; a3 is too old

    built = run("--config", config, "build", "w1")
    assert "built w1" in built.output
    folder = tmp_path / "demo" / "state" / "issues" / "w1"
    html = (folder / "email.html").read_text()
    assert len(html.encode()) <= 100 * 1024
    issue_text = (tmp_path / "demo" / "issues" / "w1.toml").read_text()
    # The seed sample was added first, so the first summary is its blurb.
    summary = issue_text.split('summary = """', 1)[1].split('"""', 1)[0]
    assert summary and not any(bad in summary for bad in FORBIDDEN), summary

    message = email.message_from_bytes((folder / "preview.eml").read_bytes())
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.get_payload()]
    assert parts == ["text/plain", "text/html"]
    for part in message.get_payload():
        body = part.get_payload(decode=True).decode(part.get_content_charset())
        for marker in ("{{", "{%", "%%", "NLT"):
            assert marker not in body


def test_bad_issue_file_is_one_line_and_untouched(site: str, tmp_path: Path):
    run("init", "demo")
    config = str(tmp_path / "demo" / "config.toml")
    path = tmp_path / "demo" / "issues" / "w2.toml"
    path.write_text('id = "w2"\ntitle = = "broken"\n')
    result = run("--config", config, "add", f"{site}/a1", "--issue", "w2", ok=False)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "w2.toml" in result.output and "line 2" in result.output
    assert path.read_text() == 'id = "w2"\ntitle = = "broken"\n'


def test_unknown_config_key_is_named(tmp_path: Path):
    (tmp_path / "config.toml").write_text("[delivery]\nrate_per_secnd = 3\n")
    result = run("issue", "new", "w1", ok=False)
    assert result.exit_code == 1
    assert "delivery.rate_per_secnd" in result.output and "Traceback" not in result.output
