"""`newsletter bounces ...`: read DSN and ARF reports from the bounce mailbox; lift complaint pauses."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from ..db import get_engine
from ..feedback import mailbox, pause
from ..feedback.apply import Applied
from ..models import FeedbackOutcome
from .common import AppContext, pass_app, say, warn
from .group import cli

SHOWN = 50


@cli.group("bounces")
def bounces_group() -> None:
    """Bounce and complaint reports: the bounce mailbox and complaint pauses."""


def _kinds(applied: list[Applied]) -> str:
    """Return "2 hard_bounce, 1 complaint" for the applied reports (kinds in first-seen order)."""
    counts = Counter(a.report.kind for a in applied)
    return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items()) or "none"


def print_applied(applied: list[Applied]) -> None:
    """Print who was suppressed, and how many reports were duplicates or matched no message."""
    outcomes = Counter(a.outcome for a in applied)
    suppressed = [a for a in applied if a.outcome == FeedbackOutcome.SUPPRESSED]
    for a in suppressed[:SHOWN]:
        say(f"  suppressed {a.email} on list {a.list!r} ({a.report.kind.replace('_', ' ')}, issue "
            f"{a.issue_id}): {a.report.describe()}")
    if len(suppressed) > SHOWN:
        say(f"  ... and {len(suppressed) - SHOWN} more suppressed")
    if outcomes[FeedbackOutcome.UNMATCHED]:
        warn(f"{outcomes[FeedbackOutcome.UNMATCHED]} report(s) match no message we sent (no ledger row has "
             "their Message-ID, VERP token or provider id): kept, nothing changed")
    if outcomes[FeedbackOutcome.DUPLICATE]:
        say(f"  {outcomes[FeedbackOutcome.DUPLICATE]} report(s) were applied before: nothing changed")
    for a in applied:
        if a.paused:
            warn(a.paused)


@bounces_group.command("fetch")
@click.option("--maildir", default=None, metavar="DIR",
              help="Read this Maildir folder instead of the configured mailbox.")
@pass_app
def fetch_cmd(app: AppContext, maildir: str | None) -> None:
    """Read new DSN (bounce) and ARF (complaint) reports from the bounce mailbox and apply them."""
    # A folder named on the command line is relative to where the command runs.
    report = mailbox.fetch(app.config, str(Path(maildir).resolve()) if maildir else None)
    say(f"{report.where}: {report.messages} new message(s): {len(report.applied)} report(s) "
        f"({_kinds(report.applied)}), {report.not_reports} not a bounce or complaint, "
        f"{len(report.unreadable)} unreadable")
    print_applied(report.applied)
    for name, why in report.unreadable[:SHOWN]:
        warn(f"{name}: cannot be read ({why}); left unseen")


@bounces_group.command("resume")
@click.option("--list", "list_name", default=None, help="The subscriber list (default: delivery.default_list).")
@pass_app
def resume_cmd(app: AppContext, list_name: str | None) -> None:
    """Let scheduled sends to the list go ahead again after a complaint pause."""
    name = list_name or app.config.delivery.default_list
    lifted = pause.resume(get_engine(app.config), name)
    if not lifted:
        say(f"list {name!r} is not paused")
        return
    for p in lifted:
        say(f"list {name!r}: resumed (paused since {p.paused_at:%Y-%m-%d %H:%M} UTC by issue {p.issue_id})")
