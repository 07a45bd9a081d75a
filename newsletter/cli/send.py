"""`newsletter send` and `newsletter status`: deliver a built issue through the ledger, and report on it."""

from __future__ import annotations

import contextlib
import dataclasses
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

from .. import issues
from ..db import get_engine
from ..delivery.send import SendReport
from ..errors import DeliveryError, IssueError
from ..ledger import STATES, Ledger
from ..models import IssueState
from ..pipeline import rebuild_for_send, send_issue, send_test
from ..queue.enqueue import QueuedSend
from ..queue.progress import SendProgress
from ..render.saved import is_built
from ..schedule.scheduler import drop_sent_jobs
from .common import AppContext, emit_json, json_option, pass_app, say, warn
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
    started = 0.0
    last = [0.0]

    def plain(done: int, total: int) -> None:
        """Print a progress line when PLAIN_EVERY seconds have passed, and at the end.

        The clock starts at the first call (the send loop's 0 of N), so the rate and ETA are the
        sending's, not those of composing (the demo), loading the render or connecting."""
        nonlocal started
        now = time.monotonic()
        if not started:
            started = last[0] = now
        if not total or (now - last[0] < PLAIN_EVERY and done < total) or last[0] < 0:
            return
        last[0] = -1.0 if done >= total else now       # the 100% line is printed once
        rate = done / (now - started) if now > started else 0.0
        eta = f", ETA {int((total - done) / rate)}s" if rate > 0 and done < total else ""
        pct = f" ({100 * done // total}%)" if total else ""
        # At 100 % the summary line that follows gives the run's rate; a second figure would differ.
        speed = f", {rate:,.0f} msg/s{eta}" if done < total else ""
        click.echo(f"sent {done}/{total}{pct}{speed}", err=True)

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
        unknown = report.counts.get("unknown", 0)
        if unknown:
            # Not "went to everyone": these may never have left (a run killed while they were claimed).
            say(f"nothing to send without --retry-unknown: issue {report.issue_id} to list "
                f"{report.list_name!r}: {report.counts.get('sent', 0)} sent, {unknown} unknown "
                f"(`newsletter send {report.issue_id} --retry-unknown` resends the unknown ones)")
            return
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


def _report_json(report: SendReport) -> dict:
    """Return a SendReport as JSON-ready data."""
    return {**dataclasses.asdict(report), "rate": report.rate}


def print_queued(report: QueuedSend, wait: bool) -> None:
    """Print what handing a send to the workers did."""
    if not report.enqueued and not report.open_chunks:
        say(f"nothing to send: issue {report.issue_id} went to everyone on list {report.list_name!r} "
            f"({report.counts.get('sent', 0)} sent)")
        return
    more = f"; {report.open_chunks} chunks were queued or running already" if report.open_chunks else ""
    say(f"issue {report.issue_id} to {report.list_name!r}: queued {report.enqueued} of {report.chunks} chunks "
        f"({report.enqueued_rows} messages) for the workers{more}")
    if not wait:
        # Not `send --wait` again: that is a send, which would also resume a send the workers halted.
        say(f"`newsletter worker` sends them; `newsletter status {report.issue_id}` shows how far it got")


def _chunk_line(progress: SendProgress) -> str:
    """Return "chunks: 2 running, 1 queued, 5 done" for a send."""
    return "chunks: " + ", ".join(f"{n} {state}" for state, n in sorted(progress.chunks.items()))


def follow(config, issue_id: str, list_name: str | None) -> None:  # noqa: ANN001 - Config
    """Follow a queued send until no chunk waits or runs; raise DeliveryError when it halted."""
    started = time.monotonic()
    first: list[int] = []
    last = [0.0]
    warned: list[bool] = []

    def show(progress: SendProgress, counts: dict[str, int]) -> None:
        """Print a progress line every PLAIN_EVERY seconds."""
        done = sum(counts.values()) - counts["pending"] - counts["sending"]
        if not first:
            first.append(done)
        now = time.monotonic()
        if now - last[0] < PLAIN_EVERY and not progress.finished:
            return
        last[0] = now
        total = sum(counts.values())
        rate = (done - first[0]) / (now - started) if now > started else 0.0
        running = sum(len(w.running) for w in progress.workers)
        if not warned and not progress.finished:
            warned.append(True)
            if not live_workers(get_engine(config), config.queue.stalled_seconds):
                warn("no live worker: the chunks wait until `newsletter worker` runs on some host")
        click.echo(f"done {done}/{total} ({100 * done // max(total, 1)}%), {rate:,.0f} msg/s; "
                   f"{_chunk_line(progress)}; {running} chunks on workers now", err=True)

    from ..queue.progress import follow as follow_queue, live_workers

    progress = follow_queue(get_engine(config), issue_id, list_name or config.delivery.default_list,
                            on_progress=show)
    if progress is None:
        return
    counts = Ledger(get_engine(config)).counts(issue_id, progress.list_name)
    state = Ledger(get_engine(config)).issue_state(issue_id)
    say(f"issue {issue_id} to {progress.list_name!r}: " + ", ".join(f"{counts[k]} {k}" for k in STATES if counts[k])
        + f" in {time.monotonic() - started:.1f}s; issue is {state}")
    for problem in progress.problems:
        warn(problem)
    if progress.halted:
        raise DeliveryError(f"the workers stopped this send: {progress.halted}; fix the cause and run "
                            f"`newsletter send {issue_id}` again to resume")


@cli.command()
@click.argument("issue_id")
@click.option("--list", "list_name", default=None, help="The subscriber list (default: delivery.default_list).")
@click.option("--dry-run", is_flag=True, help="Build every message but send nothing and change nothing.")
@click.option("--to", "to_address", default=None, metavar="ADDRESS",
              help="Send one test copy ([TEST] in the subject) to ADDRESS, outside the ledger.")
@click.option("--retry-unknown", is_flag=True,
              help="Also resend messages whose fate is unknown after a crash (may duplicate them).")
@click.option("--build", "rebuild", is_flag=True,
              help="Build the issue again first (a render older than its issue file is refused).")
@click.option("--wait", is_flag=True,
              help="With [queue] enabled: follow the workers until the send is done.")
@json_option
@pass_app
def send(app: AppContext, issue_id: str, list_name: str | None, dry_run: bool, to_address: str | None,
         retry_unknown: bool, rebuild: bool, wait: bool, as_json: bool) -> None:
    """Send the built issue ISSUE_ID to everyone on the list who has not had it yet.

    Refuses a render that is older than its issue file, templates or [newsletter] settings
    (unless its send already started: then the frozen render goes out); --build rebuilds first.
    With [queue] enabled the send is handed to the workers (--wait follows them).
    """
    config = app.config
    if to_address is not None and (dry_run or retry_unknown):
        raise click.UsageError("--to sends one test copy: it cannot be combined with --dry-run or --retry-unknown")
    path = issues.issue_path(config.paths.issues, issues.check_issue_id(issue_id))
    if not (path.exists() or is_built(config.paths.state, issue_id)):
        # A typo, not an unbuilt issue: "run `newsletter build`" would only lead to a second error.
        raise IssueError(f"unknown issue {issue_id!r}: no {path} (see `newsletter issue list`)")
    if rebuild:
        built = rebuild_for_send(config, issue_id)
        for problem in built.warnings if built else ():
            warn(problem)
        if not as_json:
            say(f"built {issue_id}: {built.folder}" if built else
                f"issue {issue_id}: its send started already, so its frozen render goes out (not rebuilt)")
    if to_address is not None:
        delivery = send_test(config, issue_id, to_address, list_name=list_name)
        if as_json:
            emit_json({"test": True, "issue_id": issue_id, "recipient": delivery.recipient,
                       "message_id": delivery.message_id})
        elif config.delivery.backend == "file":     # its provider id is the file it wrote
            say(f"test copy of {issue_id} for {delivery.recipient} written to {delivery.provider_id} "
                "(delivery.backend is \"file\": nothing was mailed; open the .eml in a mail client)")
        else:
            say(f"test copy of {issue_id} sent to {delivery.recipient} {delivery.message_id}")
        return
    if dry_run:
        report = send_issue(config, issue_id, list_name=list_name, retry_unknown=retry_unknown, dry_run=True)
        if as_json:
            emit_json(_report_json(report))
        else:
            say(f"dry run: {report.would_send} messages ({report.would_send_bytes / 1e6:.1f} MB) would go to "
                f"list {report.list_name!r}; nothing was sent")
        return
    from ..feedback.pause import open_pauses

    for held in open_pauses(get_engine(config), list_name or config.delivery.default_list):
        warn(f"scheduled sends of list {held.list!r} are paused by the complaints about issue {held.issue_id}; "
             "this send goes ahead because you asked for it (`newsletter bounces resume` lifts the pause)")
    if config.queue.enabled:
        queued = send_issue(config, issue_id, list_name=list_name, retry_unknown=retry_unknown)
        assert isinstance(queued, QueuedSend)
        print_queued(queued, wait)
        if wait and (queued.enqueued or queued.open_chunks):
            with _sigterm_stops():
                follow(config, issue_id, queued.list_name)
        return
    with sending_progress() as progress, _sigterm_stops():
        report = send_issue(config, issue_id, list_name=list_name, retry_unknown=retry_unknown,
                            progress=progress)
    if report.state == IssueState.SENT:
        # Sent by hand: a send still scheduled for it would find nothing to do; drop it from `jobs`.
        for job in drop_sent_jobs(config, issue_id, report.list_name):
            if not as_json:
                say(f"removed scheduled job {job.id} ({job.what}): the issue was sent by hand")
    if as_json:
        emit_json(_report_json(report))
        if report.paused:
            raise click.exceptions.Exit(1)
        return
    print_summary(report)
