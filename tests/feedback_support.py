"""Helpers for the bounce and complaint tests: a project with a sent issue, the ledger's rows, a CLI
runner, and real DSN (RFC 3464) and ARF (RFC 5965) messages built with the email package."""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select

from config_support import build_config
from newsletter.cli import cli
from newsletter.config import Config
from newsletter.db import deliveries, get_engine
from newsletter.pipeline import send_issue
from newsletter.subscribers.store import SubscriberStore
from store_support import write_csv, write_issue

SECRET_ENV, SECRET = "TEST_NEWSLETTER_SECRET", "feedback-tests-secret-0123456789abcdef"


def project(tmp_path: Path, **sections: Any) -> Config:
    """Write tmp_path/config.toml (signing key from SECRET_ENV) with sections merged in; return it loaded."""
    return build_config(tmp_path, write=True, signing={"secret_env": SECRET_ENV}, **sections)


def send_sample(config: Config, n: int = 5, issue_id: str = "w1", list_name: str = "default",
                start: int = 0) -> list[dict[str, Any]]:
    """Import n subscribers (user{i}@example.org), build and send issue_id through the configured
    backend; return the issue's ledger rows as dicts (email, message_id, provider_id, status, ...)."""
    store = SubscriberStore(get_engine(config))
    store.import_csv(write_csv(config.root / f"{issue_id}-{list_name}.csv", n, start=start), list_name)
    write_issue(config, issue_id)
    send_issue(config, issue_id, list_name=list_name)
    return ledger_rows(config, issue_id)


def ledger_rows(config: Config, issue_id: str) -> list[dict[str, Any]]:
    """Return issue_id's ledger rows in id order as dicts."""
    with get_engine(config).connect() as conn:
        rows = conn.execute(select(deliveries).where(deliveries.c.issue_id == issue_id)
                            .order_by(deliveries.c.id)).mappings().all()
    return [dict(r) for r in rows]


def status_of(config: Config, email: str, list_name: str = "default") -> str | None:
    """Return the subscriber status of email in list_name (None when absent)."""
    sub = SubscriberStore(get_engine(config)).get(email, list_name)
    return sub.status if sub else None


def cli_runner(tmp_path: Path) -> Callable[..., Result]:
    """Return run(*args, code=0) invoking `newsletter --config tmp_path/config.toml ARGS`."""
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Result:
        result = runner.invoke(cli, ["--config", str(tmp_path / "config.toml"), *args])
        assert result.exit_code == code, result.output
        return result
    return run


# -- report messages --------------------------------------------------------------------------------

def _headers_part(original: dict[str, str]) -> MIMEText:
    """Return a text/rfc822-headers part holding original's headers."""
    text = "".join(f"{k}: {v}\n" for k, v in original.items())
    return MIMEText(text, "rfc822-headers")


def dsn(recipient: str, *, original_message_id: str | None, status: str = "5.1.1", action: str = "failed",
        diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
        to: str = "news@example.org", report_id: str | None = None) -> bytes:
    """Return a delivery status notification (RFC 3464) about recipient, as an MTA writes one."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Message-ID"] = report_id or make_msgid(domain="mx.example.net")
    report.attach(MIMEText(f"I'm sorry to have to inform you that your message could not be delivered to "
                           f"{recipient}.\n"))
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.net"
    per_message["Arrival-Date"] = "Mon, 4 May 2026 09:00:00 +0000"
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Original-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = diagnostic.format(r=recipient)
    status_part = MIMEBase("message", "delivery-status")
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    if original_message_id is not None:
        report.attach(_headers_part({"From": "Test Weekly <news@example.org>", "To": recipient,
                                     "Subject": "Weekly digest", "Message-ID": original_message_id}))
    return report.as_bytes()


def arf(recipient: str, *, original_message_id: str, feedback_type: str = "abuse",
        report_id: str | None = None) -> bytes:
    """Return an abuse feedback report (RFC 5965) about our message to recipient."""
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "Feedback Loop <fbl@isp.example.net>"
    report["To"] = "abuse@example.org"
    report["Subject"] = "FW: Weekly digest"
    report["Message-ID"] = report_id or make_msgid(domain="isp.example.net")
    report.attach(MIMEText("This is an email abuse report for an email message received from IP "
                           "192.0.2.1 on Mon, 4 May 2026 09:00:00 +0000.\n"))
    fields = Message()
    fields["Feedback-Type"] = feedback_type
    fields["User-Agent"] = "ExampleFBL/1.0"
    fields["Version"] = "1"
    fields["Original-Mail-From"] = "<news@example.org>"
    fields["Original-Rcpt-To"] = f"<{recipient}>"
    fields["Arrival-Date"] = "Mon, 4 May 2026 09:00:00 +0000"
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload([fields])
    report.attach(feedback)
    report.attach(_headers_part({"From": "Test Weekly <news@example.org>", "To": recipient,
                                 "Subject": "Weekly digest", "Message-ID": original_message_id}))
    return report.as_bytes()


def maildir(root: Path) -> Path:
    """Return an empty Maildir folder under root (new/, cur/, tmp/)."""
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def deliver_to_maildir(folder: Path, raw: bytes, name: str) -> Path:
    """Put raw into folder/new/ as an MTA's local delivery does (write in tmp/, then rename)."""
    tmp = folder / "tmp" / name
    tmp.write_bytes(raw)
    target = folder / "new" / name
    tmp.rename(target)
    return target
