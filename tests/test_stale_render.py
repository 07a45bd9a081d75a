"""What is built is what is sent: a render older than its issue file, templates or [newsletter]
settings is refused by send, send --dry-run, send --to, schedule and a scheduled job; send --build
rebuilds first; a frozen render (its send started) still goes out as it is."""

from __future__ import annotations

import email
import logging
import re
from pathlib import Path

import pytest
import tomlkit

from newsletter.db import get_engine
from newsletter.config import load_config
from newsletter.schedule import jobs
from newsletter.schedule.records import get_job

STALE = "changed after it was built"


def _set_title(path: Path, title: str) -> None:
    """Change the issue's title in its file the way an editor would (comments stay)."""
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    doc["title"] = title
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")


def _subjects(outbox: Path) -> set[str]:
    """Return the subjects of the .eml files the file backend wrote under outbox."""
    return {email.message_from_bytes(p.read_bytes())["Subject"] for p in outbox.rglob("*.eml")}


@pytest.fixture
def built(project):
    """A project with issue w1 (one saved article), a subscriber list, and a build of it."""
    project.run("issue", "new", "w1", "--title", "Old title")
    project.run("add", str(project.root / "articles" / "space-diplomacy.txt"), "--issue", "w1")
    project.run("subscribers", "import", str(project.root / "subscribers" / "sample.csv"))
    project.run("build", "w1")
    return project


def test_editing_the_issue_after_build_is_refused_by_every_send(built):
    _set_title(built.issue_file("w1"), "New title")
    for args in (["send", "w1"], ["send", "w1", "--dry-run"], ["send", "w1", "--to", "me@example.org"],
                 ["schedule", "w1", "--at", "2030-01-01 07:00"]):
        result = built.run(*args, code=1)
        assert result.output.count("\n") == 1, result.output
        assert result.output.startswith(f"error: issue 'w1' {STALE} (the issue file ")
        assert "w1.toml" in result.output and "newsletter send w1 --build" in result.output
    assert not (built.root / "state" / "outbox").exists()
    assert built.run("jobs").stdout.strip() == "no scheduled jobs"


def test_send_build_rebuilds_first_and_sends_the_new_title(built):
    _set_title(built.issue_file("w1"), "New title")
    result = built.run("send", "w1", "--build")
    assert "built w1" in result.stdout and "sent" in result.stdout
    subjects = _subjects(built.root / "state" / "outbox")
    assert subjects and all("New title" in s for s in subjects)


def test_only_changes_that_reach_the_render_make_it_stale(built):
    path = built.issue_file("w1")
    path.write_text(path.read_text(encoding="utf-8") + "\n# a note to myself\n", encoding="utf-8")
    config = built.config_file
    config.write_text(config.read_text(encoding="utf-8").replace("rate_per_second = 0.0", "rate_per_second = 50.0"),
                      encoding="utf-8")
    assert "would go to" in built.run("send", "w1", "--dry-run").stdout   # comments, delivery: not stale
    text = config.read_text(encoding="utf-8")
    assert re.search(r'(?m)^name = "', text)                   # the [newsletter] name, as init wrote it
    config.write_text(re.sub(r'(?m)^name = ".*"', 'name = "Orbit"', text, count=1), encoding="utf-8")
    assert "the [newsletter] settings" in built.run("send", "w1", "--dry-run", code=1).output
    built.run("build", "w1")
    template = built.root / "templates" / "digest.txt.j2"
    template.write_text(template.read_text(encoding="utf-8") + "\nP.S. Thanks for reading.\n", encoding="utf-8")
    assert "the templates" in built.run("send", "w1", "--dry-run", code=1).output


def test_a_scheduled_job_refuses_a_stale_render(built, caplog):
    built.run("schedule", "w1", "--at", "2030-01-01 07:00")
    _set_title(built.issue_file("w1"), "New title")
    with caplog.at_level(logging.ERROR, logger="newsletter"):
        jobs.send_job(str(built.config_file), "w1", "", "send-w1")
    record = get_job(get_engine(load_config(built.config_file)), "send-w1")
    assert record.state == "failed" and STALE in record.detail
    assert any(STALE in r.getMessage() and "not sent" in r.getMessage() for r in caplog.records)
    assert not (built.root / "state" / "outbox").exists()


def test_a_frozen_render_goes_out_whatever_changed_later(built):
    built.run("send", "w1")
    sent = _subjects(built.root / "state" / "outbox")
    _set_title(built.issue_file("w1"), "New title")
    again = built.run("send", "w1")
    assert "nothing to send" in again.stdout
    assert "changed since its send started; the frozen render goes out" in again.stderr
    assert "frozen" in built.run("build", "w1", code=1).output
    assert _subjects(built.root / "state" / "outbox") == sent


def test_a_render_whose_issue_file_is_gone_is_refused(built):
    built.issue_file("w1").unlink()
    result = built.run("send", "w1", "--dry-run", code=1)
    assert result.output.startswith(f"error: issue 'w1' {STALE} (its file ") and "is gone" in result.output
