"""The inbox: candidate links from the feeds, the bookmarklet and pasting; move into an issue or dismiss."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, abort, redirect, request, url_for

from ...errors import NewsletterError, SourceError
from ...workspace.inbox import Inbox
from ...issues import list_issue_ids
from ..context import flash, page, services
from ..editing import move_candidate
from ..inbox_fetch import inbox_fetcher
from ..validate import page_number
from . import bp
from .forms import left_out_message, pasted_links
from .status import issue_rows

PAGE = 50


def inbox_store() -> Inbox:
    """Return the Inbox of this app's database."""
    return Inbox(services().engine)


def collect_feeds() -> tuple[int, list[str]]:
    """Read every configured feed into the inbox and fetch the new links in the background;
    return (entries offered, one line per failed feed)."""
    from ...schedule.inbox_feeds import collect_feeds as collect

    found = collect(services().config, services().engine)
    inbox_fetcher().kick()
    return found


def issue_marks(urls: set[str]) -> dict[str, str]:
    """Return {url: "in issue ID" or "sent in issue ID"} for the urls some issue file already holds.

    A story is known by its identity (articles.duplicates.url_key): the item's own link (often
    the page's canonical one) and every address `add` fetched it from (articles.curation)."""
    from ...articles.curation import load_appended
    from ...articles.duplicates import url_key
    from ...issues import load_issue
    from ...ledger import Ledger

    config, marks = services().config, {}
    ledger = Ledger(services().engine)
    by_key = {url_key(url): url for url in urls}
    for issue_id in list_issue_ids(config.paths.issues):
        try:
            known = {url_key(item.url) for item in load_issue(config.paths.issues, issue_id).items if item.url}
            for appended in load_appended(config, issue_id):
                if url_key(appended.link) in known:
                    known.update(url_key(source) for source in appended.sources)
        except NewsletterError:
            continue
        held = {by_key[key] for key in known & by_key.keys()}
        if held:
            word = "sent in issue" if ledger.issue_state(issue_id) else "in issue"
            for url in held:
                if not marks.get(url, "").startswith("sent"):
                    marks[url] = f"{word} {issue_id}"
    return marks


@bp.get("/inbox")
def inbox() -> Response:
    """Show the waiting candidates, newest first, with the issues they can go into."""
    page_no = page_number(request.args.get("page"))
    candidates, total = inbox_store().list(waiting_only=True, offset=(page_no - 1) * PAGE, limit=PAGE)
    config = services().config
    drafts = [r.id for r in issue_rows(config) if r.state in ("draft", "scheduled")]
    base = request.host_url.rstrip("/")
    bookmarklet = ("javascript:location.href='" + base + url_for("admin.clip")
                   + "?url='+encodeURIComponent(location.href)+'&title='+encodeURIComponent(document.title)")
    if any(c.fetch_state == "" for c in candidates):
        inbox_fetcher().kick()          # links that arrived while no fetcher ran (another process)
    return page("admin/inbox.html", candidates=candidates, total=total, page_no=page_no,
                marks=issue_marks({c.url for c in candidates}),
                pages=max(1, -(-total // PAGE)), drafts=drafts, bookmarklet=bookmarklet,
                feeds=len(config.sources.feeds), fetching_on=config.inbox.prefetch)


@bp.get("/inbox/<int:candidate_id>/card")
def candidate_card(candidate_id: int) -> Response:
    """Return one candidate's card (htmx polls it while the article is fetched; 286 stops polling
    when the candidate is gone)."""
    candidate = inbox_store().get(candidate_id)
    if candidate is None or candidate.added_to:
        return Response("", 286)
    config = services().config
    drafts = [r.id for r in issue_rows(config) if r.state in ("draft", "scheduled")]
    return page("admin/_candidate.html", c=candidate, marks=issue_marks({candidate.url}), drafts=drafts,
                fetching_on=config.inbox.prefetch)


@bp.post("/inbox/links")
def paste() -> Response:
    """Put the pasted links into the inbox."""
    links, more = pasted_links(request.form.get("links", ""))
    inbox, added, dismissed, moved = inbox_store(), 0, 0, []
    for url in links:
        try:
            candidate = inbox.add(url, "paste", site=urlsplit(url).hostname or "")
        except SourceError as err:
            flash(str(err), "error")
            continue
        if candidate is None:
            dismissed += 1
        elif candidate.added_to:
            moved.append(candidate.added_to)
        else:
            added += 1
    inbox_fetcher().kick()
    if not links:
        flash("No http:// or https:// link found in what you pasted.", "error")
        return redirect(url_for("admin.inbox"))
    notes = ([f"{dismissed} dismissed before (not offered again)"] if dismissed else []) + (
        [f"{len(moved)} already moved into issue {', '.join(sorted(set(moved)))}"] if moved else [])
    flash(f"{added} link(s) put in the inbox" + (f"; {'; '.join(notes)}." if notes else "."))
    if more:
        flash(left_out_message(more), "error")
    return redirect(url_for("admin.inbox"))


@bp.post("/inbox/fetch")
def fetch_feeds() -> Response:
    """Read the configured feeds now."""
    offered, failed = collect_feeds()
    for line in failed:
        flash(f"Feed not read: {line}", "error")
    flash(f"{offered} link(s) from the feeds are in the inbox.")
    return redirect(url_for("admin.inbox"))


@bp.post("/inbox/<int:candidate_id>/dismiss")
def dismiss(candidate_id: int) -> Response:
    """Dismiss a candidate for good (htmx swaps the row out; without JS the page reloads)."""
    if not inbox_store().dismiss(candidate_id):
        abort(404, description="That link is no longer in the inbox.")
    if request.headers.get("HX-Request"):
        return Response("", 200)
    flash("Dismissed.")
    return redirect(url_for("admin.inbox"))


@bp.post("/inbox/<int:candidate_id>/retry")
def retry(candidate_id: int) -> Response:
    """Fetch a candidate whose fetch failed again (in the background)."""
    if inbox_store().get(candidate_id) is None:
        abort(404, description="That link is no longer in the inbox.")
    inbox_store().retry_fetch(candidate_id)
    inbox_fetcher().kick()
    flash("Fetching it again: reload the page in a moment.")
    return redirect(url_for("admin.inbox") + f"#cand-{candidate_id}")


@bp.post("/inbox/<int:candidate_id>/move")
def move(candidate_id: int) -> Response:
    """Append the candidate to the chosen issue (its fetched article, else fetched now)."""
    store = inbox_store()
    candidate = store.get(candidate_id)
    if candidate is None:
        abort(404, description="That link is no longer in the inbox.")
    issue_id = request.form.get("issue", "")
    if issue_id not in list_issue_ids(services().config.paths.issues):
        flash("Choose an issue to add the link to (create one first).", "error")
        return redirect(url_for("admin.inbox"))
    try:
        report = move_candidate(services().config, services().engine, candidate, issue_id)
    except NewsletterError as err:
        flash(f"{candidate.url}: {err}", "error")
        return redirect(url_for("admin.inbox"))
    for url, why in report.failed:
        flash(f"Not added: {url}: {why}", "error")
    for url, why in report.skipped:
        flash(f"Skipped: {url}: {why}", "error")
    if report.added:
        flash(f"Added to issue {issue_id}: {report.added[0].title}")
    return redirect(url_for("admin.inbox"))


@bp.route("/inbox/clip", methods=["GET", "POST"])
def clip() -> Response:
    """The bookmarklet's page: GET shows the link to confirm, POST (with CSRF) puts it in the inbox."""
    url = request.values.get("url", "").strip()[:2000]
    title = request.values.get("title", "").strip()[:1000]
    if request.method == "GET":
        return page("admin/clip.html", url=url, title=title, error="")
    try:
        candidate = inbox_store().add(url, "bookmarklet", title, urlsplit(url).hostname or "")
    except SourceError as err:
        return page("admin/clip.html", 400, url=url, title=title, error=str(err))
    inbox_fetcher().kick()
    if candidate is None:
        flash(f"Not put in the inbox: {title or url} was dismissed before; it is not offered again.", "error")
    elif candidate.added_to:
        flash(f"Already in issue {candidate.added_to}: {title or url}")
    else:
        flash(f"Put in the inbox: {title or url}")
    return redirect(url_for("admin.inbox"))
