"""Undo and inspect: `subscribers reactivate`, `status --failures`, the suppression list's reasons,
and the complaint pause that holds scheduled sends (`bounces resume` lifts it)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from feedback_support import SECRET, SECRET_ENV, cli_runner, ledger_rows, project, send_sample, status_of
from mail_servers import SMTPTestServer, reply_line
from newsletter.db import dispose_engines, get_engine, suppressions
from newsletter.errors import SendPaused
from newsletter.feedback.apply import apply_report
from newsletter.feedback.report import Report
from newsletter.models import FeedbackKind, SuppressionSource
from newsletter.schedule.jobs import deliver
from newsletter.signing import Signer
from newsletter.subscribers import SubscriberStore
from newsletter.web import create_app

BOUNCING = ("user3@example.org", "user5@example.org")


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    yield
    dispose_engines()


def _refuse(*addresses):
    """reply_for that refuses addresses with 550 5.1.1 and accepts the rest."""
    return lambda address: 550 if address in addresses else 250


def _bounced_send(tmp_path, n=6):
    """Send w1 over SMTP to n subscribers; the server refuses BOUNCING. Returns (config, rows)."""
    with SMTPTestServer(_refuse(*BOUNCING)) as server:
        config = project(tmp_path, delivery={"backend": "smtp", "backoff_seconds": 0.01, "smtp": server.smtp_config()})
        rows = send_sample(config, n)
    return config, rows


def test_status_failures_lists_each_row_with_the_server_reply(tmp_path):
    config, _rows = _bounced_send(tmp_path)
    run = cli_runner(tmp_path)
    lines = run("status", "w1", "--failures").output.splitlines()
    assert sorted(lines) == sorted(f"bounced\t{a}\tdefault\trecipient\t{reply_line(550)}" for a in BOUNCING)
    listing = run("subscribers", "list", "--status", "bounced").output.splitlines()
    assert [line.split("\t")[:4] for line in listing] == [[a, "bounced", f"User {a[4]}", "reply"] for a in BOUNCING]
    assert all(line.endswith(reply_line(550)) for line in listing)
    assert "error: unknown issue 'w9'" in run("status", "w9", "--failures", code=1).stderr


def test_reactivate_by_issue_undoes_the_bounces_and_send_delivers_them(tmp_path):
    config, rows = _bounced_send(tmp_path)
    run = cli_runner(tmp_path)
    dry = run("subscribers", "reactivate", "--issue", "w1", "--dry-run").output
    assert "2 would reactivate" in dry and "nothing changed (dry run)" in dry
    assert [status_of(config, a) for a in BOUNCING] == ["bounced", "bounced"]
    out = run("subscribers", "reactivate", "--issue", "w1").output
    for address in BOUNCING:
        assert f"default: reactivated {address}, was bounced (reply, " in out
    assert "issue w1: 2 bounced row(s) went back to pending: `newsletter send w1 --list default`" in out
    assert [status_of(config, a) for a in BOUNCING] == ["active", "active"]
    with SMTPTestServer() as server:
        (tmp_path / "config.toml").write_text((tmp_path / "config.toml").read_text().replace(
            f"port = {config.delivery.smtp.port}", f"port = {server.port}"))
        sent = run("send", "w1").output
        assert "2 sent, 0 bounced" in sent and "issue is sent" in sent
        assert sorted(r.rcpt_tos[0] for r in server.messages) == sorted(BOUNCING)     # nobody twice
    assert {r["status"] for r in ledger_rows(config, "w1")} == {"sent"}
    with get_engine(config).connect() as conn:
        lifted = conn.execute(select(suppressions.c.lifted_reason).where(suppressions.c.lifted_at.is_not(None))).scalars().all()
    assert lifted == ["reactivated in a mass undo (issue w1)"] * 2        # the history stays


def test_reactivate_addresses_never_undoes_an_unsubscribe(tmp_path):
    config, rows = _bounced_send(tmp_path)
    run = cli_runner(tmp_path)
    run("subscribers", "add", "user1@example.org", "--status", "unsubscribed")          # existing: stays active
    assert status_of(config, "user1@example.org") == "active"
    app = create_app(config)
    user1 = SubscriberStore(get_engine(config)).get("user1@example.org", "default")
    token = Signer.from_config(config).unsubscribe_token("user1@example.org", "default", subscriber_id=user1.id)
    assert app.test_client().post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    result = run("subscribers", "reactivate", "user3@example.org", "user1@example.org", "nobody@example.org",
                 "user0@example.org")
    assert "default: reactivated user3@example.org, was bounced" in result.stdout
    assert "user1@example.org: not reactivated: unsubscribed by their own choice" in result.stderr
    assert "nobody@example.org: not reactivated: not on list 'default'" in result.stderr
    assert "user0@example.org: not reactivated: already active" in result.stderr
    assert (status_of(config, "user3@example.org"), status_of(config, "user1@example.org")) == ("active", "unsubscribed")
    assert status_of(config, "user5@example.org") == "bounced"                         # not named: untouched
    listing = run("subscribers", "list", "--status", "unsubscribed").output
    assert listing.startswith("user1@example.org\tunsubscribed\tUser 1\tlink\t") and listing.rstrip().endswith("one-click")
    refused = run("subscribers", "reactivate", "user1@example.org", code=1)
    assert refused.output.strip().endswith("error: nothing reactivated on list 'default'")


def test_adding_or_importing_never_resubscribes_reactivate_does(tmp_path):
    config, rows = _bounced_send(tmp_path)
    run = cli_runner(tmp_path)
    warned = run("subscribers", "add", "user3@example.org", "--status", "active").stderr
    assert "stays bounced (undo a bounced state made by mistake with `newsletter subscribers reactivate " \
           "user3@example.org`)" in warned
    (tmp_path / "again.csv").write_text("email,name,status\nuser3@example.org,User 3,active\n", encoding="utf-8")
    assert "1 kept unsubscribed/bounced/complained" in run("subscribers", "import", "again.csv").output
    assert status_of(config, "user3@example.org") == "bounced"
    run("subscribers", "reactivate", "user3@example.org")
    assert status_of(config, "user3@example.org") == "active"


def test_reactivate_bounced_since(tmp_path):
    config, rows = _bounced_send(tmp_path)
    run = cli_runner(tmp_path)
    assert "0 reactivated" in run("subscribers", "reactivate", "--bounced-since", "2999-01-01").output
    assert "2 reactivated" in run("subscribers", "reactivate", "--bounced-since", "1h").output
    assert [status_of(config, a) for a in BOUNCING] == ["active", "active"]
    bad = run("subscribers", "reactivate", "--bounced-since", "last tuesday", code=1)
    assert "--bounced-since 'last tuesday': expected a duration" in bad.output
    assert run("subscribers", "reactivate", code=2).exit_code == 2       # nothing named: a usage error


def _complain(config, row, n=1):
    """Apply a complaint webhook report about row."""
    return apply_report(get_engine(config), config.bounces, Report(
        FeedbackKind.COMPLAINT, SuppressionSource.WEBHOOK, "test", f"test:complaint:{row['id']}:{n}",
        email=row["email"], message_id=row["message_id"], detail="abuse"))


def test_complaints_over_the_share_pause_scheduled_sends_until_resumed(tmp_path):
    config = project(tmp_path, bounces={"complaint_pause_ratio": 0.2})
    rows = send_sample(config, 8)
    assert _complain(config, rows[0]).paused == ""                 # 1 of 8 = 12.5 %: under 20 %
    deliver(config, "w1", "default")                                # a scheduled send still runs
    second = _complain(config, rows[1])
    assert second.paused.startswith("list 'default': scheduled sends paused: issue w1 drew 2 spam "
                                    "complaint(s) from 8 messages (25.00 %, over bounces.complaint_pause_ratio "
                                    "= 20.00 %)")
    assert _complain(config, rows[1], n=2).outcome == "recorded"   # a second report of the same message
    third = _complain(config, rows[2])
    assert third.paused == ""                                       # already paused by w1: said once
    with pytest.raises(SendPaused) as info:
        deliver(config, "w1", "default")
    assert info.value.list_name == "default" and info.value.issue_id == "w1"
    assert "`newsletter bounces resume --list default`" in str(info.value)
    run = cli_runner(tmp_path)
    assert "list 'default': resumed (paused since " in run("bounces", "resume").output
    assert "list 'default' is not paused" in run("bounces", "resume").output
    report = deliver(config, "w1", "default")
    assert report.state == "sent"
    assert _complain(config, rows[3]).paused == ""                  # resumed by a person: w1 never pauses again
    assert [status_of(config, r["email"]) for r in rows[:4]] == ["complained"] * 4
    failures = run("status", "w1", "--failures").output
    assert "reports received after sending (5):" in failures and "complaint\tuser0@example.org" in failures


def test_a_persons_own_send_is_warned_but_goes_ahead(tmp_path):
    config = project(tmp_path)
    rows = send_sample(config, 4)
    assert "paused" in _complain(config, rows[0]).paused            # 1 of 4 is far over 0.1 %
    result = cli_runner(tmp_path)("send", "w1")
    assert "scheduled sends of list 'default' are paused by the complaints about issue w1" in result.stderr
    assert "nothing to send" in result.stdout
