"""`newsletter send` and `newsletter status`: deliver a built issue through the ledger, and report on it."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..db import get_engine
from ..delivery.send import SendReport
from ..errors import DeliveryError
from ..ledger import STATES, Ledger
from ..personalize.message import message_id
from ..personalize.mime import sender_domain
from ..pipeline import send_issue, send_test
from .common import AppContext, pass_app, say, warn
from .group import cli

PLAIN_EVERY = 5.0      # seconds between progress lines when not on a terminal
UNKNOWN_SHOWN = 20


class _RateColumn(ProgressColumn):
    """Shows messages per second."""

    def render(self, task: Task) -> Text:
        """Return the current speed as text."""
        return Text(f"{task.speed or 0:,.0f} msg/s", style="progress.data.speed")


@contextlib.contextmanager
def sending_progress() -> Iterator[Callable[[int, int], None]]:
    """Yield a progress callback: a rich bar on a terminal, a plain line every few seconds otherwise."""
    console = Console(stderr=True)
    if console.is_terminal:
        bar = Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                       TextColumn("ETA"), TimeRemainingColumn(), console=console)
        task_id = None

        def update(done: int, total: int) -> None:
            """Move the bar to done of total."""
            nonlocal task_id
            if task_id is None:
                task_id = bar.add_task("send", total=total or None)
            bar.update(task_id, completed=done)

        with bar:
            yield update
        return
    started = time.monotonic()
    last = [started]

    def plain(done: int, total: int) -> None:
        """Print a progress line when PLAIN_EVERY seconds have passed, and at the end."""
        now = time.monotonic()
        if not total or (now - last[0] < PLAIN_EVERY and done < total) or last[0] < 0:
            return
        last[0] = -1.0 if done >= total else now       # the 100% line is printed once
        rate = done / (now - started) if now > started else 0.0
        eta = f", ETA {int((total - done) / rate)}s" if rate > 0 and done < total else ""
        pct = f" ({100 * done // total}%)" if total else ""
        click.echo(f"sent {done}/{total}{pct}, {rate:,.0f} msg/s{eta}", err=True)

    yield plain


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """Treat SIGTERM (a service manager stopping us) like Ctrl-C: finish and record what is on the wire."""

    def interrupt(_signum: int, _frame: object) -> None:
        """Raise KeyboardInterrupt in the main thread."""
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def print_summary(report: SendReport) -> None:
    """Print what the run did and what is left to do."""
    if report.recovered_unknown:
        warn(f"{report.recovered_unknown} messages were in flight when an earlier run stopped: they may "
             f"or may not have arrived (`newsletter status {report.issue_id}` lists them; "
             "`--retry-unknown` resends them)")
    if report.to_send == 0:
        say(f"nothing to send: issue {report.issue_id} went to everyone on list {report.list_name!r} "
            f"({report.counts.get('sent', 0)} sent)")
        return
    unknown = f", {report.unknown} unknown" if report.unknown else ""
    say(f"issue {report.issue_id} to {report.list_name!r}: {report.sent} sent, {report.bounced} bounced, "
        f"{report.deferred} deferred, {report.failed} failed, {report.skipped} skipped{unknown} "
        f"in {report.elapsed:.1f}s ({report.rate:,.0f} msg/s); issue is {report.state}")
    if report.unknown:
        warn(f"{report.unknown} messages got no reply after they were handed over: they may or may not "
             f"have arrived, so they are not resent (`newsletter status {report.issue_id}` lists them)")
    if report.deferred:
        warn(f"{report.deferred} messages were deferred after repeated temporary failures: "
             f"run `newsletter send {report.issue_id}` again later")
    if report.paused:
        raise DeliveryError(f"send paused: {report.paused}; fix the cause and run "
                            f"`newsletter send {report.issue_id}` again to resume")


@cli.command()
@click.argument("issue_id")
@click.option("--list", "list_name", default=None, help="The subscriber list (default: delivery.default_list).")
@click.option("--dry-run", is_flag=True, help="Build every message but send nothing and change nothing.")
@click.option("--to", "to_address", default=None, metavar="ADDRESS",
              help="Send one test copy ([TEST] in the subject) to ADDRESS, outside the ledger.")
@click.option("--retry-unknown", is_flag=True,
              help="Also resend messages whose fate is unknown after a crash (may duplicate them).")
@pass_app
def send(app: AppContext, issue_id: str, list_name: str | None, dry_run: bool, to_address: str | None,
         retry_unknown: bool) -> None:
    """Send the built issue ISSUE_ID to everyone on the list who has not had it yet."""
    config = app.config
    if to_address is not None:
        if dry_run or retry_unknown:
            raise click.UsageError("--to sends one test copy: it cannot be combined with --dry-run or --retry-unknown")
        delivery = send_test(config, issue_id, to_address, list_name=list_name)
        say(f"test copy of {issue_id} sent to {delivery.recipient} {delivery.message_id}")
        return
    if dry_run:
        report = send_issue(config, issue_id, list_name=list_name, retry_unknown=retry_unknown, dry_run=True)
        say(f"dry run: {report.would_send} messages ({report.would_send_bytes / 1e6:.1f} MB) would go to "
            f"list {report.list_name!r}; nothing was sent")
        return
    with sending_progress() as progress, _sigterm_stops():
        report = send_issue(config, issue_id, list_name=list_name, retry_unknown=retry_unknown,
                            progress=progress)
    print_summary(report)


@cli.command()
@click.argument("issue_id")
@click.option("--list", "list_name", default=None, help="Only this list (default: every list of the issue).")
@pass_app
def status(app: AppContext, issue_id: str, list_name: str | None) -> None:
    """Show how many messages of ISSUE_ID are in each delivery state."""
    ledger = Ledger(get_engine(app.config))
    state = ledger.issue_state(issue_id)
    if state is None:
        say(f"issue {issue_id}: not sent yet")
        return
    lists = ", ".join(ledger.lists_of(issue_id))
    say(f"issue {issue_id}: {state} (lists: {lists})")
    counts = ledger.counts(issue_id, list_name)
    for name in STATES:
        say(f"{name:<10}{counts[name]:>9}")
    say(f"{'total':<10}{sum(counts.values()):>9}")
    if counts["unknown"]:
        # The Message-ID is deterministic, so the mail server's log can tell whether it went out.
        domain = sender_domain(app.config.newsletter.sender)
        say(f"unknown (in flight when a run stopped; resend with `newsletter send {issue_id} --retry-unknown`):")
        shown = 0
        for name in ([list_name] if list_name else ledger.lists_of(issue_id)):
            for email, mid, _reply in ledger.rows(issue_id, "unknown", UNKNOWN_SHOWN - shown, name):
                say(f"  {email}\t{mid or message_id(issue_id, name, email, domain)}")
                shown += 1
        if counts["unknown"] > shown:
            say(f"  ... and {counts['unknown'] - shown} more")
