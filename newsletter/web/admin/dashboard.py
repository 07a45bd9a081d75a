"""The dashboard: issues by state, subscribers per list, the next scheduled job."""

from __future__ import annotations

from flask import Response
from sqlalchemy import select

from ...db import subscribers as subscribers_table
from ...models import SubscriberStatus

from ...schedule.inbox_feeds import JOB_ID as FEEDS_JOB_ID
from ...schedule.scheduler import list_jobs
from ...errors import NewsletterError
from ..context import page, services
from . import bp
from .status import issue_rows


@bp.get("/dashboard")
def dashboard() -> Response:
    """Show the issues (draft, scheduled, sent with counts), the lists and the next job."""
    svc = services()
    config = svc.config
    rows = issue_rows(config)
    lists = []
    for name in sorted(set(svc.subscribers.lists()) | {config.delivery.default_list}):
        counts = svc.subscribers.counts(name)
        lists.append((name, counts.get("active", 0), sum(counts.values())))
    try:
        # The inbox's feed reading recurs all day: the editor wants the next send or digest.
        jobs = [j for j in list_jobs(config) if j.next_run is not None and j.id != FEEDS_JOB_ID]
    except NewsletterError:
        jobs = []
    totals = {state: sum(1 for r in rows if r.state == state) for state in ("draft", "scheduled", "sent")}
    return page("admin/dashboard.html", rows=rows, lists=lists, next_job=jobs[0] if jobs else None,
                totals=totals, recent=recent_suppressions(), runner=_scheduler_running())


def _scheduler_running() -> bool:
    """Return True when a `newsletter run` holds the scheduler's lease on this database (the only
    process that fires jobs; `serve` alone does not), as `newsletter jobs` checks."""
    import time

    from ...schedule.lease import Lease

    holder = Lease(services().engine).holder()
    return holder is not None and holder.expires_at >= time.time()


def recent_suppressions(limit: int = 10) -> list[tuple[str, str, str, str]]:
    """Return the latest bounced and complained subscribers as (email, list, state, when), newest first."""
    t = subscribers_table
    query = (select(t.c.email, t.c.list, t.c.status, t.c.updated_at)
             .where(t.c.status.in_([SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED]))
             .order_by(t.c.updated_at.desc()).limit(limit))
    with services().engine.connect() as conn:
        return [(r.email, r.list, r.status, f"{r.updated_at:%Y-%m-%d %H:%M}") for r in conn.execute(query)]
