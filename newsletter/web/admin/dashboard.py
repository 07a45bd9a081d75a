"""The dashboard: issues by state, subscribers per list, the next scheduled job."""

from __future__ import annotations

from flask import Response

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
        jobs = [j for j in list_jobs(config) if j.next_run is not None]
    except NewsletterError:
        jobs = []
    totals = {state: sum(1 for r in rows if r.state == state) for state in ("draft", "scheduled", "sent")}
    return page("admin/dashboard.html", rows=rows, lists=lists, next_job=jobs[0] if jobs else None,
                totals=totals)
