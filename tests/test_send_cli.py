"""`newsletter send` and `newsletter status` from the command line, against a real SMTP server."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mail_servers import SMTPTestServer, free_port
from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.db import dispose_engines, get_engine
from newsletter.subscribers.store import SubscriberStore
from store_support import write_csv, write_issue


def _config(tmp_path, port: int, extra: str = "") -> None:
    (tmp_path / "config.toml").write_text(f"""
[newsletter]
sender = "Test Weekly <news@example.org>"
[signing]
secret_env = "TEST_NEWSLETTER_SECRET"
[delivery]
backend = "smtp"
backoff_seconds = 0.01
{extra}
[delivery.smtp]
host = "127.0.0.1"
port = {port}
timeout = 10
""", encoding="utf-8")


@pytest.fixture
def newsletter(tmp_path, monkeypatch):
    """Return a function that runs `newsletter ARGS...` on tmp_path/config.toml."""
    monkeypatch.setenv("TEST_NEWSLETTER_SECRET", "cli-tests-secret-0123456789abcdef")
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(cli, ["--config", str(tmp_path / "config.toml"), *args])
        assert result.exit_code == code, result.output
        return result

    yield run
    dispose_engines()


def _counts(lines: list[str]) -> dict[str, int]:
    """Return the "state  count" lines of `newsletter status` as a dict."""
    return {k: int(v) for k, v in (line.split() for line in lines[1:] if len(line.split()) == 2)}


def _populate(tmp_path, n: int = 5) -> None:
    config = load_config(tmp_path / "config.toml")
    SubscriberStore(get_engine(config)).import_csv(write_csv(tmp_path / "list.csv", n), "default")
    write_issue(config)


def test_send_status_and_send_again(tmp_path, newsletter):
    with SMTPTestServer() as server:
        _config(tmp_path, server.port)
        _populate(tmp_path)
        result = newsletter("send", "w1")
        assert "issue w1 to 'default': 5 sent, 0 bounced, 0 deferred, 0 failed, 0 skipped" in result.stdout
        assert "issue is sent" in result.stdout
        assert "sent 5/5 (100%)\n" in result.stderr     # plain progress when not on a terminal; the
        assert result.stderr.count("msg/s") == 0        # summary alone gives the rate of a finished run
        assert len(server.messages) == 5
        status = newsletter("status", "w1").stdout.splitlines()
        assert status[0] == "issue w1: sent (lists: default)"
        counts = _counts(status)
        assert (counts["sent"], counts["total"], counts["pending"]) == (5, 5, 0)
        again = newsletter("send", "w1")
        assert "nothing to send: issue w1 went to everyone on list 'default' (5 sent)" in again.stdout
        assert len(server.messages) == 5


def test_progress_starts_at_zero_when_the_first_message_is_about_to_go(tmp_path, newsletter):
    # The plain progress line's rate is timed from this first call, so it agrees with the summary
    # line's instead of counting the imports and set-up before the send.
    from newsletter.pipeline import send_issue

    with SMTPTestServer() as server:
        _config(tmp_path, server.port)
        _populate(tmp_path, 4)
        seen: list[tuple[int, int]] = []
        send_issue(load_config(tmp_path / "config.toml"), "w1", progress=lambda d, t: seen.append((d, t)))
        assert seen[0] == (0, 4) and seen[-1] == (4, 4) and len(server.messages) == 4


def test_a_relay_without_smtputf8_fails_a_non_ascii_address_without_suppressing_it(tmp_path, newsletter):
    # The address is fine; our relay cannot carry it. Marking it bounced would stop its mail for
    # good (until someone runs reactivate): it is a failure of this send, shown by --failures.
    with SMTPTestServer(smtputf8=False) as server:
        _config(tmp_path, server.port)
        _populate(tmp_path, 2)
        newsletter("subscribers", "add", "zoë@example.com", "--name", "Zoë")
        result = newsletter("send", "w1")
        assert "2 sent, 0 bounced, 0 deferred, 1 failed" in result.stdout
        assert "warning: zoë@example.com failed: " in result.stderr     # one line, as a bounce gets
        assert [m.rcpt_tos for m in server.messages] and all(m.rcpt_tos[0].isascii() for m in server.messages)
        listed = newsletter("subscribers", "list").stdout
        assert "zoë@example.com\tactive" in listed
        failures = newsletter("status", "w1", "--failures").stdout
        assert "failed\tzoë@example.com" in failures and "does not offer SMTPUTF8" in failures


def test_rows_left_in_flight_by_a_killed_run_are_not_called_sent_to_everyone(tmp_path, newsletter):
    from sqlalchemy import update

    from newsletter.db import deliveries

    with SMTPTestServer() as server:
        _config(tmp_path, server.port)
        _populate(tmp_path, 3)
        newsletter("send", "w1")
        engine = get_engine(load_config(tmp_path / "config.toml"))
        with engine.begin() as conn:         # what SIGKILL leaves: rows claimed, never recorded
            conn.execute(update(deliveries).where(deliveries.c.email != "user0@example.org")
                         .values(status="sending"))
        dispose_engines()
        again = newsletter("send", "w1")
        assert "went to everyone" not in again.stdout
        assert "1 sent, 2 unknown" in again.stdout and "--retry-unknown" in again.stdout
        assert len(server.messages) == 3


def test_test_copy_and_dry_run(tmp_path, newsletter):
    with SMTPTestServer() as server:
        _config(tmp_path, server.port)
        _populate(tmp_path, 3)
        copy = newsletter("send", "w1", "--to", "editor@example.com")
        assert copy.stdout.startswith("test copy of w1 sent to editor@example.com <w1.test-")
        assert "test copy" not in copy.stderr           # said once, on stdout, not again as a log line
        assert server.messages[0].message["Subject"] == "[TEST] Weekly digest"
        dry = newsletter("send", "w1", "--dry-run").stdout
        assert "dry run: 3 messages" in dry and "nothing was sent" in dry
        assert len(server.messages) == 1
        assert newsletter("status", "w1").stdout == "issue w1: not sent yet\n"
        mixed = newsletter("send", "w1", "--to", "editor@example.com", "--dry-run", code=2)
        assert "--to sends one test copy" in mixed.output


@pytest.mark.parametrize("args, message", [
    (["send", "w9"], "error: unknown issue 'w9': no "),
    (["send", "w1", "--list", "vip"], "error: unknown list 'vip' (known lists: default)\n"),
    (["send", "w1", "--to", "not-an-address"], "error: invalid email address 'not-an-address'"),
])
def test_bad_input_is_one_error_line(tmp_path, newsletter, args, message):
    with SMTPTestServer() as server:
        _config(tmp_path, server.port)
        _populate(tmp_path, 2)
        result = newsletter(*args, code=1)
        assert result.output.startswith(message) and result.output.count("\n") == 1
        assert server.messages == []


def test_unreachable_server_marks_nothing(tmp_path, newsletter):
    _config(tmp_path, free_port())
    _populate(tmp_path, 2)
    result = newsletter("send", "w1", code=1)
    assert result.output.startswith("error: cannot reach SMTP server 127.0.0.1:") and result.output.count("\n") == 1
    assert newsletter("status", "w1").stdout == "issue w1: not sent yet\n"


def test_bad_credentials_mark_nothing(tmp_path, newsletter, monkeypatch):
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    with SMTPTestServer(auth=("news", "right")) as server:
        _config(tmp_path, server.port)
        with open(tmp_path / "config.toml", "a", encoding="utf-8") as f:
            f.write('username = "news"\npassword_env = "TEST_SMTP_PASSWORD"\n')
        _populate(tmp_path, 2)
        result = newsletter("send", "w1", code=1)
        assert result.output.startswith("error: SMTP server") and "refused the login of 'news'" in result.output
        assert result.output.count("\n") == 1
        assert newsletter("status", "w1").stdout == "issue w1: not sent yet\n"
        assert server.messages == []


def test_a_paused_send_says_why_and_resumes(tmp_path, newsletter):
    broken = [True]
    with SMTPTestServer(lambda a: 421 if broken[0] else 250) as server:
        _config(tmp_path, server.port, "max_attempts = 1\npause_window = 5\nconcurrency = 1")
        _populate(tmp_path, 200)
        result = newsletter("send", "w1", code=1)
        assert "error: send paused: 5 of the last 5 messages failed (last reply: 421" in result.output
        assert "run `newsletter send w1` again to resume" in result.output
        status = newsletter("status", "w1").stdout.splitlines()
        counts = _counts(status)
        assert status[0].startswith("issue w1: sending") and counts["sending"] == 0 and counts["pending"] > 0
        broken[0] = False
        newsletter("send", "w1")
        assert len(server.messages) == 200
        assert len({m.rcpt_tos[0] for m in server.messages}) == 200
