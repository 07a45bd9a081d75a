"""The API's curation endpoints: restore a removed item, regenerate a blurb, list the summarisers."""

from __future__ import annotations

from flask import Response, jsonify

from ...errors import ConfigError, IssueError, NewsletterError, SourceError
from ..context import services
from ..editing import regenerate_blurb, restore_item, summarizer_names
from . import bp, error
from .views import issue_json, load_or_404, validated


@bp.post("/issues/<issue_id>/restore")
def restore(issue_id: str) -> Response:
    """Put a removed item back at the end of the issue and clear its tombstone; return the issue."""
    load_or_404(issue_id)
    body = validated("Restore")
    try:
        restore_item(services().config, issue_id, body["url"])
    except IssueError as err:
        return error(404 if "is not among" in str(err) else 409, "not_removed"
                     if "is not among" in str(err) else "invalid_issue", str(err))
    except NewsletterError as err:
        return error(409, "not_restored", str(err))
    return jsonify(issue_json(load_or_404(issue_id)))


@bp.post("/issues/<issue_id>/blurb")
def blurb(issue_id: str) -> Response:
    """Return a new blurb for the article at url by the chosen summariser (nothing is saved)."""
    load_or_404(issue_id)
    config = services().config
    body = validated("BlurbRequest")
    name = body.get("summarizer") or config.summarize.summarizer
    try:
        summary = regenerate_blurb(config, issue_id, body["url"], name)
    except ConfigError as err:
        return error(400, "invalid_summarizer", str(err))
    except SourceError as err:
        return error(409, "not_summarized", str(err))
    return jsonify({"url": body["url"], "summarizer": name, "summary": summary})


@bp.get("/summarizers")
def summarizers() -> Response:
    """Return the installed summariser plugins and the configured default."""
    return jsonify({"items": summarizer_names(), "default": services().config.summarize.summarizer})


@bp.post("/inbox/feeds")
def fetch_feeds() -> Response:
    """Read the configured feeds into the inbox now; their new links are fetched in the background."""
    from ...schedule.inbox_feeds import collect_feeds
    from ..inbox_fetch import inbox_fetcher

    offered, failed = collect_feeds(services().config, services().engine)
    inbox_fetcher().kick()
    return jsonify({"offered": offered, "failed": failed})


@bp.post("/inbox/<int:candidate_id>/move")
def move(candidate_id: int) -> Response:
    """Append a candidate to an issue (its already fetched article when there is one)."""
    from ...workspace.inbox import Inbox
    from ..editing import move_candidate
    from .views import item_json

    candidate = Inbox(services().engine).get(candidate_id)
    if candidate is None:
        return error(404, "not_found", f"no inbox candidate {candidate_id}")
    body = validated("Move")
    load_or_404(body["issue"])
    try:
        report = move_candidate(services().config, services().engine, candidate, body["issue"])
    except NewsletterError as err:
        return error(409, "not_added", str(err))
    return jsonify({"added": [item_json(i) for i in report.added],
                    "skipped": [{"url": u, "reason": r} for u, r in report.skipped],
                    "failed": [{"url": u, "reason": r} for u, r in report.failed]})
