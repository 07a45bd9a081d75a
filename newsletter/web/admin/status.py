"""Where each issue stands (draft, scheduled, sending, sent) for the dashboard and the editor."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import Config
from ...errors import NewsletterError
from ...ledger import Ledger
from ..context import services
from ..send_status import outcomes


@dataclass(frozen=True)
class IssueRow:
    """One issue as the dashboard lists it."""

    id: str
    title: str
    state: str            # draft | scheduled | sending | sent | invalid
    items: int
    when: str             # the scheduled time, or when it was sent
    counts: dict[str, int]    # sent: delivered, bounced, unsubscribed; sending: rows per ledger state
    done: int = 0         # sending: rows dealt with, of total
    total: int = 0


def jobs_by_issue(config: Config) -> dict[str, object]:
    """Return {issue id: its scheduled send job} (empty when the job store cannot be read)."""
    from ...schedule.scheduler import list_jobs

    try:
        jobs = list_jobs(config)
    except NewsletterError:
        return {}
    return {j.issue_id: j for j in jobs if j.kind == "send" and j.issue_id}


def send_job(config: Config, issue_id: str) -> object | None:
    """Return the scheduled send job of issue_id, or None."""
    return jobs_by_issue(config).get(issue_id)


def issue_status(config: Config, issue_id: str, jobs: dict[str, object] | None = None) -> str:
    """Return draft, scheduled, sending or sent for issue_id."""
    state = Ledger(services().engine).issue_state(issue_id)
    if state:
        return str(state)
    jobs = jobs_by_issue(config) if jobs is None else jobs
    return "scheduled" if issue_id in jobs else "draft"


def issue_rows(config: Config) -> list[IssueRow]:
    """Return every issue file as an IssueRow, newest id first."""
    from ...issues import list_issue_ids, load_issue

    jobs = jobs_by_issue(config)
    ledger = Ledger(services().engine)
    sent = dict(ledger.sent_issues())
    rows = []
    for issue_id in reversed(list_issue_ids(config.paths.issues)):
        try:
            issue = load_issue(config.paths.issues, issue_id)
            title, items = issue.title, len(issue.items)
        except NewsletterError:
            rows.append(IssueRow(issue_id, "(cannot be read)", "invalid", 0, "", {}))
            continue
        state = issue_status(config, issue_id, jobs)
        when, counts = "", {}
        if state == "scheduled" and getattr(jobs[issue_id], "next_run", None):
            when = f"{jobs[issue_id].next_run:%Y-%m-%d %H:%M %Z}"   # type: ignore[attr-defined]
        done = total = 0
        if state == "sending":
            counts = {k: v for k, v in ledger.counts(issue_id).items() if v}
            total = sum(counts.values())
            done = total - counts.get("pending", 0) - counts.get("sending", 0)
        elif state == "sent":
            counts = outcomes(ledger.engine, issue_id)
            if issue_id in sent:
                when = f"{sent[issue_id]:%Y-%m-%d %H:%M}"
        rows.append(IssueRow(issue_id, title, state, items, when, counts, done, total))
    return rows


