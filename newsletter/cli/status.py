"""`newsletter status`: where an issue's delivery stands, its failures, and the queue's part."""

from __future__ import annotations

import click

from .. import issues
from ..config import Config
from ..db import get_engine
from ..errors import IssueError
from ..inputs import check_list_name
from ..ledger import STATES, Ledger, parse_reply
from ..personalize.message import message_id
from ..personalize.mime import sender_domain
from ..render.saved import is_built
from .common import AppContext, emit_json, json_option, pass_app, say
from .group import cli
from .send import UNKNOWN_SHOWN, _chunk_line

FAILURE_STATES = ("failed", "bounced", "unknown")


def print_failures(ledger: Ledger, issue_id: str, list_name: str | None) -> None:
    """Print every failed, bounced or unknown row with the server's reply, then the reports received."""
    from ..feedback.apply import issue_events

    lists = [list_name] if list_name else ledger.lists_of(issue_id)
    shown = 0
    for name in lists:
        for state in FAILURE_STATES:
            for email, _mid, reply in ledger.rows(issue_id, state, None, name):
                reply_class, text = parse_reply(reply or "")
                say(f"{state}\t{email}\t{name}\t{reply_class or '-'}\t{' '.join((text or '-').split())}")
                shown += 1
    if not shown:
        say(f"issue {issue_id}: no failed, bounced or unknown message")
    events = issue_events(ledger.engine, issue_id, list_name)
    if events:
        say(f"reports received after sending ({len(events)}):")
        for e in events:
            say(f"  {e.kind}\t{e.email}\t{e.list}\t{e.source}/{e.provider}\t{e.outcome}\t{e.detail}")


@cli.command()
@click.argument("issue_id")
@click.option("--list", "list_name", default=None, help="Only this list (default: every list of the issue).")
@click.option("--failures", is_flag=True,
              help="List each failed, bounced or unknown message with the server's reply, and the "
                   "bounce and complaint reports received for the issue.")
@json_option
@pass_app
def status(app: AppContext, issue_id: str, list_name: str | None, failures: bool, as_json: bool) -> None:
    """Show how many messages of ISSUE_ID are in each delivery state."""
    config = app.config
    if list_name is not None:
        check_list_name(list_name)
    ledger = Ledger(get_engine(config))
    state = ledger.issue_state(issues.check_issue_id(issue_id))
    if state is None and not (issues.issue_path(config.paths.issues, issue_id).exists()
                              or is_built(config.paths.state, issue_id)):
        raise IssueError(f"unknown issue {issue_id!r}: no {issues.issue_path(config.paths.issues, issue_id)}"
                         ", no render and no delivery (see `newsletter issue list`)")
    if failures:
        if state is None:
            say(f"issue {issue_id}: not sent yet")
            return
        print_failures(ledger, issue_id, list_name)
        return
    counts = ledger.counts(issue_id, list_name) if state is not None else dict.fromkeys(STATES, 0)
    unknown = _unknown_rows(config, ledger, issue_id, list_name) if counts["unknown"] else []
    if as_json:
        emit_json({"issue": issue_id, "state": state or "not sent", "lists": ledger.lists_of(issue_id),
                   "counts": counts, "total": sum(counts.values()),
                   "unknown": [{"email": e, "message_id": m} for e, m in unknown]})
        return
    if state is None:
        say(f"issue {issue_id}: not sent yet")
        return
    lists = ", ".join(ledger.lists_of(issue_id))
    say(f"issue {issue_id}: {state} (lists: {lists})")
    for name in STATES:
        say(f"{name:<10}{counts[name]:>9}")
    say(f"{'total':<10}{sum(counts.values()):>9}")
    if counts["unknown"]:
        say(f"unknown (in flight when a run stopped; resend with `newsletter send {issue_id} --retry-unknown`):")
        for email, mid in unknown:
            say(f"  {email}\t{mid}")
        if counts["unknown"] > len(unknown):
            say(f"  ... and {counts['unknown'] - len(unknown)} more")
    if config.queue.enabled:
        _queue_status(app, issue_id, list_name)


def _unknown_rows(config: Config, ledger: Ledger, issue_id: str, list_name: str | None) -> list[tuple[str, str]]:
    """Return up to UNKNOWN_SHOWN (address, Message-ID) of the issue's rows in state unknown."""
    # The Message-ID is deterministic, so the mail server's log can tell whether it went out.
    domain = sender_domain(config.newsletter.sender)
    shown: list[tuple[str, str]] = []
    for name in ([list_name] if list_name else ledger.lists_of(issue_id)):
        for email, mid, _reply in ledger.rows(issue_id, "unknown", UNKNOWN_SHOWN - len(shown), name):
            shown.append((email, mid or message_id(issue_id, name, email, domain)))
    return shown


def _queue_status(app: AppContext, issue_id: str, list_name: str | None) -> None:
    """Print the workers' part in the send: chunks per state and per-worker progress."""
    from ..queue.progress import queued_lists, send_progress

    engine = get_engine(app.config)
    for name in ([list_name] if list_name else queued_lists(engine, issue_id)):
        progress = send_progress(engine, issue_id, name)
        if progress is None:
            continue
        say(f"queue (list {name}): {_chunk_line(progress)}")
        for w in progress.workers:
            now = "; ".join(f"chunk {seq}: {done}/{rows}" for seq, done, rows in w.running) or "idle"
            say(f"  worker {w.worker}: {w.chunks_done} chunks done ({w.rows_done} rows); now {now}")
        if progress.halted:
            say(f"  halted: {progress.halted} (`newsletter send {issue_id}` resumes it)")
        for problem in progress.problems:
            say(f"  {problem}")
