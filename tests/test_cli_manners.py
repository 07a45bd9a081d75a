"""CLI manners: one line per problem naming its source once, exit codes scripts can trust, --json
on every command that reports something, progress on `add`, the signing-key warning only where it
matters, and a manual send that clears the issue's scheduled send."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from compose_support import article_page
from newsletter.db import get_engine
from newsletter.config import load_config
from newsletter.schedule.records import get_job
from newsletter.signing import key_warning


def _ready(project, web_site) -> list[str]:
    """Issue w1 with two pages added, the sample list imported; returns the pages' URLs."""
    pages = [web_site.page(f"/p{i}.html", article_page(f"Story {i}", f"Event {i} took place."))
             for i in range(2)]
    project.run("issue", "new", "w1", "--title", "Week one")
    project.run("add", *pages, "--issue", "w1")
    project.run("subscribers", "import", str(project.root / "subscribers" / "sample.csv"))
    return pages


def test_a_failed_source_is_one_line_naming_it_once_and_the_exit_code_says_so(project, tmp_path):
    project.run("issue", "new", "w1")
    os.chdir(tmp_path)
    result = project.run("add", "x.html", "./y.html", str(project.root / "articles" / "space-diplomacy.txt"),
                         "--issue", "w1", code=1)
    assert "warning: x.html: file not found\n" in result.stderr
    assert "warning: ./y.html: file not found\n" in result.stderr
    assert result.stderr.count("x.html") == 1 and result.stderr.count("y.html") == 1
    assert "1 added to w1, 0 skipped, 2 failed" in result.stdout      # the good one is added all the same
    feed = project.run("add", "--feed", str(tmp_path / "nofeed.xml"), "--issue", "w1", code=1)
    assert feed.stderr.count("nofeed.xml") == 1 and "file not found" in feed.stderr


def test_an_unknown_issue_id_exits_1(project):
    project.run("issue", "new", "w1")
    assert project.run("status", "w1").stdout == "issue w1: not sent yet\n"
    wrong = project.run("status", "w11", code=1)
    assert wrong.output.startswith("error: unknown issue 'w11'") and wrong.output.count("\n") == 1
    assert project.run("status", "../etc", code=1).output.startswith("error: invalid issue id")
    assert project.run("issue", "show", "w11", code=1).output.startswith("error: ")
    assert project.run("build", "w11", code=1).output.startswith("error: ")
    for send in (("send", "w11"), ("send", "w11", "--to", "me@example.net"), ("send", "w11", "--dry-run")):
        wrong = project.run(*send, code=1)
        assert wrong.output.startswith("error: unknown issue 'w11'") and wrong.output.count("\n") == 1
    assert project.run("send", "w1", code=1).output.startswith("error: issue 'w1' was never built")


def test_issue_list_and_show_count_one_item_in_the_singular(project, web_site):
    page = web_site.page("/one.html", article_page("Only story", "Something took place."))
    project.run("issue", "new", "w1", "--title", "Week one")
    project.run("add", page, "--issue", "w1")
    assert "\t1 item\tWeek one" in project.run("issue", "list").stdout
    assert project.run("issue", "show", "w1").stdout.startswith("w1: Week one (")
    assert "), 1 item\n" in project.run("issue", "show", "w1").stdout


def test_every_reporting_command_speaks_json(project, web_site):
    pages = _ready(project, web_site)
    added = json.loads(project.run("add", pages[0], web_site.base + "/gone", "--issue", "w1", "--json",
                                   code=1).stdout)
    assert added["skipped"] == [{"source": pages[0], "reason": "already in this issue"}]
    assert added["failed"][0]["source"] == web_site.base + "/gone" and "404" in added["failed"][0]["error"]
    built = json.loads(project.run("build", "w1", "--json").stdout)
    assert built["issue"] == "w1" and built["subject"].endswith("Week one") and built["html_bytes"] > 0
    issues_listed = json.loads(project.run("issue", "list", "--json").stdout)
    assert issues_listed == [{"id": "w1", "date": issues_listed[0]["date"], "items": 2, "title": "Week one"}]
    dry = json.loads(project.run("send", "w1", "--dry-run", "--json").stdout)
    assert dry["dry_run"] is True and dry["would_send"] == 9
    sent = json.loads(project.run("send", "w1", "--json").stdout)
    assert (sent["sent"], sent["state"], sent["counts"]["sent"]) == (9, "sent", 9)
    status = json.loads(project.run("status", "w1", "--json").stdout)
    assert (status["state"], status["lists"], status["total"]) == ("sent", ["default"], 9)
    counts = json.loads(project.run("subscribers", "count", "--json").stdout)
    assert counts["list"] == "default" and counts["total"] == 9 and counts["counts"]["active"] == 9
    listed = json.loads(project.run("subscribers", "list", "--json", "--limit", "2").stdout)
    assert len(listed) == 2 and set(listed[0]) == {"email", "name", "status", "fields"}
    assert json.loads(project.run("jobs", "--json").stdout) == []
    project.run("issue", "new", "w2")
    project.run("add", str(project.root / "articles" / "space-diplomacy.txt"), "--issue", "w2")
    project.run("build", "w2")
    project.run("schedule", "w2", "--at", "2030-01-01 07:00")
    [job] = json.loads(project.run("jobs", "--json").stdout)
    assert (job["id"], job["kind"], job["issue_id"]) == ("send-w2", "send", "w2")
    assert job["next_run"].startswith("2030-01-01T07:00")


def test_a_manual_send_removes_the_issues_pending_scheduled_send(project, web_site):
    _ready(project, web_site)
    project.run("build", "w1")
    project.run("schedule", "w1", "--at", "2030-01-01 07:00")
    result = project.run("send", "w1")
    assert "removed scheduled job send-w1 (send issue w1 to the default list): the issue was sent by hand" \
        in result.stdout
    assert project.run("jobs").stdout.startswith("no scheduled jobs")
    record = get_job(get_engine(load_config(project.config_file)), "send-w1")
    assert (record.state, record.detail) == ("cancelled", "sent by hand")


def test_the_signing_key_warning_is_said_by_serve_not_by_every_command(project, web_site):
    _ready(project, web_site)
    for args in (["build", "w1"], ["send", "w1", "--dry-run"], ["status", "w1"], ["send", "w1"]):
        assert "NEWSLETTER_SECRET_KEY" not in project.run(*args).stderr
    config = load_config(project.config_file)
    assert "NEWSLETTER_SECRET_KEY is not set" in key_warning(config)
    with socket.socket() as busy:                      # serve says it first, then fails to listen
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = {k: v for k, v in os.environ.items() if k != "NEWSLETTER_SECRET_KEY"}
        proc = subprocess.run([sys.executable, "-m", "newsletter", "--config", str(project.config_file),
                               "serve", "--port", str(busy.getsockname()[1])],
                              capture_output=True, text=True, env=env, timeout=60)
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("warning: environment variable NEWSLETTER_SECRET_KEY is not set")
    assert lines[1].startswith("error: web: cannot listen") and proc.returncode == 1


def test_add_reports_progress_source_by_source(project, web_site):
    from newsletter import pipeline

    pages = [web_site.page(f"/p{i}.html", article_page(f"Story {i}", f"Event {i} took place."))
             for i in range(3)]
    project.run("issue", "new", "w1")
    seen: list[tuple[int, int, str]] = []
    report = pipeline.add_sources(load_config(project.config_file), "w1", [pages[0], pages[0], *pages[1:]],
                                  progress=lambda done, total, source: seen.append((done, total, source)))
    assert len(report.added) == 3 and report.skipped == [(pages[0], "given twice")]
    assert [(d, t) for d, t, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert sorted(s for _, _, s in seen) == sorted([pages[0], pages[0], *pages[1:]])


def test_add_shows_a_progress_bar_on_a_terminal(project, web_site, tmp_path):
    import pty

    web_site.delay = 0.2
    pages = [web_site.page(f"/p{i}.html", article_page(f"Story {i}", f"Event {i} took place."))
             for i in range(3)]
    project.run("issue", "new", "w1")
    primary, secondary = pty.openpty()
    env = dict(os.environ, COLUMNS="120", TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", "--config", str(project.config_file),
                             "add", *pages, "--issue", "w1"], stdin=secondary, stdout=subprocess.PIPE,
                            stderr=secondary, env=env)
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:                 # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(primary)
    assert proc.returncode == 0 and b"3 added to w1" in out
    assert b"sources" in seen and b"/3" in seen            # rich's bar: "sources ━━━╸ 1/3 0:00:00 …"
