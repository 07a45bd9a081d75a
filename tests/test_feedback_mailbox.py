"""DSN (RFC 3464) and ARF (RFC 5965) reports read from a Maildir folder and a real IMAP server
(pymap, STARTTLS with a test CA) by `newsletter bounces fetch`."""

from __future__ import annotations

import imaplib
import ssl
import subprocess
import sys
import time

import pytest

from feedback_support import (
    SECRET,
    SECRET_ENV,
    arf,
    cli_runner,
    deliver_to_maildir,
    dsn,
    ledger_rows,
    maildir,
    project,
    send_sample,
    status_of,
)
from mail_servers import free_port, make_certs
from newsletter.db import dispose_engines, get_engine
from newsletter.feedback.pause import open_pauses
from newsletter.personalize.verp import token


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    yield
    dispose_engines()


def _sent(tmp_path, n=5, **sections):
    """Return (config, ledger rows, Maildir folder) for a project whose issue w1 went to n people."""
    box = maildir(tmp_path / "bounces")
    config = project(tmp_path, bounces={"maildir": "bounces", **sections.pop("bounces", {})}, **sections)
    return config, send_sample(config, n), box


def test_a_dsn_and_an_arf_report_through_a_maildir(tmp_path):
    config, rows, box = _sent(tmp_path)
    bad, spam = rows[1], rows[3]
    deliver_to_maildir(box, dsn(bad["email"], original_message_id=bad["message_id"]), "1.dsn")
    deliver_to_maildir(box, arf(spam["email"], original_message_id=spam["message_id"]), "2.arf")
    run = cli_runner(tmp_path)
    out = run("bounces", "fetch").output
    assert "2 new message(s): 2 report(s) (1 hard bounce, 1 complaint)" in out
    assert f"suppressed {bad['email']} on list 'default' (hard bounce, issue w1)" in out
    assert f"suppressed {spam['email']} on list 'default' (complaint, issue w1)" in out
    assert status_of(config, bad["email"]) == "bounced"
    assert status_of(config, spam["email"]) == "complained"
    assert [status_of(config, r["email"]) for r in rows].count("active") == 3
    after = {r["email"]: r for r in ledger_rows(config, "w1")}
    assert after[bad["email"]]["status"] == "bounced"          # the ledger says it never arrived
    assert after[spam["email"]]["status"] == "sent"            # it arrived: the reader complained
    # Both messages are now seen (cur/, flag S): a second fetch reads nothing.
    assert not list((box / "new").iterdir())
    assert all(name.name.endswith(",S") for name in (box / "cur").iterdir())
    again = run("bounces", "fetch").output
    assert "0 new message(s)" in again
    # One complaint among 5 messages is 20 %: far over 0.1 %, so the list's scheduled sends wait.
    paused = open_pauses(get_engine(config), "default")
    assert [p.issue_id for p in paused] == ["w1"]
    assert "bounces resume --list default" in out


def test_the_suppression_list_keeps_reason_source_and_time(tmp_path):
    config, rows, box = _sent(tmp_path)
    bad = rows[0]
    deliver_to_maildir(box, dsn(bad["email"], original_message_id=bad["message_id"]), "1.dsn")
    run = cli_runner(tmp_path)
    run("bounces", "fetch")
    listing = run("subscribers", "list", "--status", "bounced").output.splitlines()
    assert len(listing) == 1
    email, status, _name, source, when, reason = listing[0].split("\t")
    assert (email, status, source) == (bad["email"], "bounced", "dsn")
    assert when.endswith("UTC") and "5.1.1" in reason and "User unknown" in reason
    exported = run("subscribers", "export", "--status", "bounced").output.splitlines()
    assert exported[1].startswith(f"{bad['email']},") and len(exported) == 2


def test_a_copy_of_a_report_read_again_changes_nothing(tmp_path):
    config, rows, box = _sent(tmp_path)
    raw = arf(rows[0]["email"], original_message_id=rows[0]["message_id"], report_id="<fbl-1@isp.example.net>")
    deliver_to_maildir(box, raw, "1.arf")
    run = cli_runner(tmp_path)
    run("bounces", "fetch")
    run("subscribers", "reactivate", rows[0]["email"])      # someone undoes it by hand...
    deliver_to_maildir(box, raw, "2.arf")                     # ...and the ISP sends the same report again
    out = run("bounces", "fetch").output
    assert "1 report(s) were applied before: nothing changed" in out
    assert status_of(config, rows[0]["email"]) == "active"


def test_delays_and_policy_blocks_suppress_nobody(tmp_path):
    config, rows, box = _sent(tmp_path)
    deliver_to_maildir(box, dsn(rows[0]["email"], original_message_id=rows[0]["message_id"], action="delayed",
                                status="4.4.1", diagnostic="smtp; 451 4.4.1 try later"), "1.dsn")
    deliver_to_maildir(box, dsn(rows[1]["email"], original_message_id=rows[1]["message_id"], status="5.7.1",
                                diagnostic="smtp; 550 5.7.1 Message rejected as spam"), "2.dsn")
    out = cli_runner(tmp_path)("bounces", "fetch").output
    assert "2 report(s) (1 delayed, 1 blocked)" in out
    assert [status_of(config, r["email"]) for r in rows] == ["active"] * 5
    assert [r["status"] for r in ledger_rows(config, "w1")] == ["sent"] * 5


def test_soft_bounces_on_consecutive_issues_suppress(tmp_path):
    config, rows, box = _sent(tmp_path, n=2, bounces={"soft_bounce_limit": 2})
    reader = rows[0]["email"]
    full = dict(status="5.2.2", diagnostic="smtp; 552 5.2.2 Mailbox full")
    deliver_to_maildir(box, dsn(reader, original_message_id=rows[0]["message_id"], **full), "1.dsn")
    run = cli_runner(tmp_path)
    run("bounces", "fetch")
    assert status_of(config, reader) == "active"              # one soft bounce is not enough
    second = send_sample(config, 2, issue_id="w2")
    mid = next(r["message_id"] for r in second if r["email"] == reader)
    deliver_to_maildir(box, dsn(reader, original_message_id=mid, **full), "2.dsn")
    out = run("bounces", "fetch").output
    assert "2 soft bounces in a row" in out
    assert status_of(config, reader) == "bounced"
    assert status_of(config, rows[1]["email"]) == "active"


def test_a_verp_return_path_names_the_message_without_its_headers(tmp_path):
    config, rows, box = _sent(tmp_path, bounces={"return_path": "bounces+{token}@example.org"})
    row = rows[2]
    to = f"bounces+{token(row['subscriber_id'], row['message_id'])}@example.org"
    # Some MTAs return neither the message nor its headers: only the address they sent the DSN to.
    deliver_to_maildir(box, dsn(row["email"], original_message_id=None, to=to), "1.dsn")
    cli_runner(tmp_path)("bounces", "fetch")
    assert status_of(config, row["email"]) == "bounced"
    assert [status_of(config, r["email"]) for r in rows].count("bounced") == 1


def test_unknown_messages_and_unreadable_ones_stop_nothing(tmp_path):
    config, rows, box = _sent(tmp_path)
    deliver_to_maildir(box, b"From: reader@example.com\r\nSubject: Thanks!\r\n\r\nLoved this week's issue.\r\n",
                       "1.reply")
    deliver_to_maildir(box, dsn("stranger@example.net", original_message_id="<not-ours@example.net>"), "2.dsn")
    deliver_to_maildir(box, dsn(rows[0]["email"], original_message_id=rows[0]["message_id"]), "3.dsn")
    result = cli_runner(tmp_path)("bounces", "fetch")
    assert "3 new message(s): 2 report(s)" in result.stdout and "1 not a bounce or complaint" in result.stdout
    assert "1 report(s) match no message we sent" in result.stderr
    assert status_of(config, rows[0]["email"]) == "bounced"


def test_no_mailbox_configured_is_one_clear_error(tmp_path):
    project(tmp_path)
    result = cli_runner(tmp_path)("bounces", "fetch", code=1)
    assert result.output.strip() == ("error: no bounce mailbox: set bounces.maildir or bounces.imap_host "
                                     "in the config (or give --maildir)")
    (tmp_path / "notabox").mkdir()
    result = cli_runner(tmp_path)("bounces", "fetch", "--maildir", "notabox", code=1)
    assert "is not a Maildir folder" in result.output


# -- IMAP: a real server (pymap) over STARTTLS with certificates made for the test ---------------------

@pytest.fixture
def imap_server(tmp_path):
    """Yield (port, CA file) of a pymap IMAP server on 127.0.0.1 with user bounces / password pw."""
    pytest.importorskip("pymap", reason="pymap (in the test extra) serves IMAP for this test")
    ca, cert, key = make_certs(tmp_path / "certs")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from pymap.main import main; main()", "--host", "127.0.0.1", "--port", str(port),
                             "--cert", str(cert), "--key", str(key), "dict", "--demo-user", "bounces",
                             "--demo-password", "pw", "--demo-data"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            imaplib.IMAP4("127.0.0.1", port, timeout=2).logout()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"pymap did not start: {proc.communicate()[0][-2000:]!r}")
            time.sleep(0.1)
    try:
        yield port, ca
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _imap(port, ca):
    """Return a logged-in client of the test server."""
    conn = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    conn.starttls(ssl_context=ssl.create_default_context(cafile=str(ca)))
    conn.login("bounces", "pw")
    return conn


def test_reports_from_an_imap_mailbox_over_tls(tmp_path, imap_server, monkeypatch):
    port, ca = imap_server
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "pw")
    config = project(tmp_path, bounces={"imap_host": "127.0.0.1", "imap_port": port, "imap_security": "starttls",
                                        "imap_user": "bounces", "password_env": "TEST_IMAP_PASSWORD",
                                        "ca_file": str(ca)})
    rows = send_sample(config, 3)
    client = _imap(port, ca)
    client.select("INBOX")
    unseen_before = client.uid("SEARCH", None, "UNSEEN")[1][0].split()
    client.append("INBOX", None, None, dsn(rows[0]["email"], original_message_id=rows[0]["message_id"]))
    client.append("INBOX", None, None, arf(rows[1]["email"], original_message_id=rows[1]["message_id"]))
    client.logout()
    run = cli_runner(tmp_path)
    out = run("bounces", "fetch").output
    assert "2 report(s) (1 hard bounce, 1 complaint)" in out
    assert f"{len(unseen_before)} not a bounce or complaint" in out      # pymap's demo mail
    assert (status_of(config, rows[0]["email"]), status_of(config, rows[1]["email"])) == ("bounced", "complained")
    client = _imap(port, ca)
    client.select("INBOX")
    assert client.uid("SEARCH", None, "UNSEEN")[1][0] in (b"", None)   # all marked \Seen
    client.logout()
    assert "0 new message(s)" in run("bounces", "fetch").output


def test_a_wrong_imap_password_is_one_error_line(tmp_path, imap_server, monkeypatch):
    port, ca = imap_server
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "wrong")
    project(tmp_path, bounces={"imap_host": "127.0.0.1", "imap_port": port, "imap_security": "starttls",
                               "imap_user": "bounces", "password_env": "TEST_IMAP_PASSWORD", "ca_file": str(ca)})
    result = cli_runner(tmp_path)("bounces", "fetch", code=1)
    assert result.output.startswith(f"error: IMAP server 127.0.0.1:{port} refused us ('bounces')")
    assert "wrong" not in result.output and len(result.output.strip().splitlines()) == 1


def test_smtp_sends_each_message_from_its_verp_address_and_a_bounce_to_it_finds_the_message(tmp_path):
    from mail_servers import SMTPTestServer

    template = "bounces+{token}@example.org"
    with SMTPTestServer() as server:
        config, rows, box = _sent(tmp_path, n=3, bounces={"return_path": template},
                                  delivery={"backend": "smtp", "smtp": server.smtp_config()})
        by_rcpt = {m.rcpt_tos[0]: m.mail_from for m in server.messages}
    expected = {r["email"]: f"bounces+{token(r['subscriber_id'], r['message_id'])}@example.org" for r in rows}
    assert by_rcpt == expected                              # RFC 5321 MAIL FROM: where bounces go
    row = rows[1]
    deliver_to_maildir(box, dsn(row["email"], original_message_id=None, to=by_rcpt[row["email"]]), "1.dsn")
    cli_runner(tmp_path)("bounces", "fetch")
    assert [status_of(config, r["email"]) for r in rows] == ["active", "bounced", "active"]
