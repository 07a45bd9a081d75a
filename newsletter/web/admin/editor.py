"""The issue editor: create an issue, add links, edit and reorder items, preview, test, schedule."""

from __future__ import annotations

from flask import Response, abort, jsonify, redirect, request, url_for

from ...errors import EditConflict, NewsletterError, StaleRender
from ...workspace.issue_edit import IssueEdit, ItemEdit, file_digest
from ...issues import create_issue, is_issue_id, load_issue
from ..context import flash, page, services
from ..editing import regenerate_blurb, removed_items, restore_item, save_issue_edit, summarizer_names
from . import bp, preview
from .forms import apply_action, editor_action, issue_edit, left_out_message, pasted_links
from .status import issue_status, send_job

FRAME_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
             "form-action 'none'; frame-ancestors 'self'; base-uri 'none'; sandbox")


def issue_or_404(issue_id: str) -> None:
    """Abort 404 unless issue_id names an existing issue file."""
    if not is_issue_id(issue_id) or not (services().config.paths.issues / f"{issue_id}.toml").exists():
        abort(404, description=f"There is no issue {issue_id!r}.")


@bp.get("/issues/new")
def new_issue() -> Response:
    """Show the form that creates an issue."""
    return page("admin/new_issue.html", issue_id="", title="", error="")


@bp.post("/issues")
def create() -> Response:
    """Create the issue file and open it in the editor."""
    issue_id = request.form.get("issue_id", "").strip()[:64]
    title = request.form.get("title", "").strip()[:500]
    try:
        create_issue(services().config.paths.issues, issue_id, title)
    except NewsletterError as err:
        return page("admin/new_issue.html", 400, issue_id=issue_id, title=title, error=str(err))
    flash(f"Issue {issue_id} created. Paste links below to add articles.")
    return redirect(url_for("admin.editor", issue_id=issue_id))


def _editor_page(issue_id: str, status: int = 200, *, edit: IssueEdit | None = None,
                 digest: str | None = None, conflict: str = "", results: object = None) -> Response:
    """Return the editor for issue_id: the stored issue, or the editor's unsaved edit after a conflict."""
    config = services().config
    try:
        issue = load_issue(config.paths.issues, issue_id)
        stored_digest = file_digest(config.paths.issues, issue_id)
        removed = removed_items(config, issue_id)
    except NewsletterError as err:
        return page("admin/broken_issue.html", 409, issue_id=issue_id, error=str(err))
    shown = preview.current(config, issue_id)
    items = [{"url": it.url, "title": it.title, "summary": it.summary, "note": it.note, "section": it.section,
              "image_alt": it.image_alt, "image": it.image, "source": it.source} for it in issue.items]
    fields = {"title": issue.title, "intro": issue.intro, "preheader": issue.preheader}
    if edit is not None:        # show the editor's own text back, so nothing typed is lost
        fields.update(edit.values)
        stored = {it["url"]: it for it in items}
        items = [{**stored.get(e.url, {"url": e.url, "image": "", "source": ""}), **e.values} for e in edit.items]
    return page("admin/editor.html", status, issue_id=issue_id, fields=fields, items=items,
                digest=digest or stored_digest, current_digest=stored_digest, preview=shown, conflict=conflict, results=results or [],
                state=issue_status(config, issue_id), job=send_job(config, issue_id),
                default_list=config.delivery.default_list, removed=removed,
                summarizers=summarizer_names(), default_summarizer=config.summarize.summarizer)


@bp.get("/issues/<issue_id>")
def editor(issue_id: str) -> Response:
    """Show the editor with the preview beside it."""
    issue_or_404(issue_id)
    return _editor_page(issue_id)


@bp.post("/issues/<issue_id>")
def save(issue_id: str) -> Response:
    """Save the editor's form (and move, remove or add as the pressed button says).

    Refused with 409 and the editor's text shown back when the file changed since the page loaded.
    """
    from ...pipeline import add_sources

    issue_or_404(issue_id)
    config = services().config
    action = editor_action(request.form)
    edit = issue_edit(request.form)
    sent_digest = request.form.get("digest", "")
    if action.kind == "overwrite":
        # "Save anyway" after a conflict: replaces the version the editor was shown, no later one.
        sent_digest = request.form.get("current_digest", "")
    try:
        if "count" not in request.form:
            # Not the editor's whole form (it always sends its item count): a missing item list
            # keeps the items, as in the API, instead of removing every one of them.
            edit = IssueEdit(edit.values, [ItemEdit(url=i.url) for i in load_issue(config.paths.issues, issue_id).items])
        edit = apply_action(edit, action)
        saved = save_issue_edit(config, issue_id, edit, sent_digest)
    except EditConflict as err:
        return _editor_page(issue_id, 409, edit=edit, digest=sent_digest, conflict=str(err))
    except NewsletterError as err:
        flash(f"Not saved: {err}", "error")
        return _editor_page(issue_id, 400, edit=edit, digest=sent_digest)
    results = []
    if action.kind == "restore":
        try:
            title = restore_item(config, issue_id, request.form.get(f"removed-{action.index}-url", ""))
        except NewsletterError as err:
            flash(f"Not restored: {err}", "error")
        else:
            flash(f"Restored: {title}")
    elif action.kind == "blurb":
        return _with_new_blurb(issue_id, edit, saved.digest, action.index)
    if action.kind == "add":
        links, more = pasted_links(request.form.get("links", ""))
        if more:
            flash(left_out_message(more), "error")
        if not links:
            flash("Paste one or more links (starting with http:// or https://) first.", "error")
        else:
            try:
                report = add_sources(config, issue_id, links, section=request.form.get("section", "")[:200])
            except NewsletterError as err:
                flash(f"Could not add the links: {err}", "error")
            else:
                results = _outcomes(links, report)
                _mark_inbox(links, issue_id, {url for kind, url, _why in results if kind == "added"})
    preview.rebuild(config, issue_id)
    if action.kind != "add":
        if action.kind != "restore":
            flash("Saved.")
        return redirect(url_for("admin.editor", issue_id=issue_id) + _moved_to(action, len(edit.items)))
    return _editor_page(issue_id, results=results)


def _moved_to(action, count: int) -> str:
    """Return the fragment of the item an Up or Down moved ("#item-N", its new place, so the
    page opens on it and admin.js puts focus back on its button), else ""."""
    if action.kind not in ("up", "down") or not 0 <= action.index < count:
        return ""
    step = -1 if action.kind == "up" else 1
    return f"#item-{min(max(action.index + step, 0), count - 1)}"


def _with_new_blurb(issue_id: str, edit: IssueEdit, digest: str, index: int) -> Response:
    """Show the editor (after its save) with item index's summary rewritten by the chosen
    summariser; the editor reads it and saves it like any other change."""
    config = services().config
    preview.rebuild(config, issue_id)
    if not 0 <= index < len(edit.items):
        return redirect(url_for("admin.editor", issue_id=issue_id))
    item = edit.items[index]
    name = request.form.get(f"item-{index}-summarizer", "") or config.summarize.summarizer
    try:
        item.values["summary"] = regenerate_blurb(config, issue_id, item.url, name[:100])
    except NewsletterError as err:
        flash(f"No new summary: {err}", "error")
        return redirect(url_for("admin.editor", issue_id=issue_id) + f"#item-{index}")
    flash(f"Item {index + 1} has a new summary from the {name} summariser: read it, then Save.")
    return _editor_page(issue_id, edit=edit, digest=digest)


@bp.post("/issues/<issue_id>/blurb")
def blurb(issue_id: str) -> Response:
    """Return {"summary"} for the item url by the chosen summariser, or {"error": one line} (422);
    the editor's script puts it in the item's Summary field, unsaved."""
    issue_or_404(issue_id)
    config = services().config
    name = request.form.get("summarizer", "")[:100] or config.summarize.summarizer
    try:
        return jsonify({"summary": regenerate_blurb(config, issue_id, request.form.get("url", "")[:2000], name),
                        "summarizer": name})
    except NewsletterError as err:
        resp = jsonify({"error": str(err)})
        resp.status_code = 422
        return resp


def _outcomes(links: list[str], report: object) -> list[tuple[str, str, str]]:
    """Return (added|skipped|failed, url, why) per pasted link of an AddReport, in the order given.

    A link that was neither skipped nor failed became an item (whose url may be the page's
    canonical link rather than the address pasted).
    """
    failed = dict(report.failed)                                    # type: ignore[attr-defined]
    skipped = dict(report.skipped)                                  # type: ignore[attr-defined]
    # A source's error names its address first ("URL: HTTP 404 …"); the page shows the address already.
    return [("failed", url, failed[url].removeprefix(f"{url}: ")) if url in failed else
            ("skipped", url, skipped[url]) if url in skipped else ("added", url, "added")
            for url in links]


@bp.post("/issues/<issue_id>/link")
def add_link(issue_id: str) -> Response:
    """Add one link (the editor's script calls this once per pasted link to show progress).

    Returns {"results": [{"kind", "url", "why"}]}; the script shows them again after reloading.
    Appending needs no digest: like `newsletter add`, it never changes what is in the file.
    """
    from ...pipeline import add_sources

    issue_or_404(issue_id)
    links = pasted_links(request.form.get("links", ""))[0][:1]
    if not links:
        return jsonify({"results": [{"kind": "failed", "url": request.form.get("links", "")[:200],
                                     "why": "not a web address (http:// or https://)"}]})
    try:
        report = add_sources(services().config, issue_id, links, section=request.form.get("section", "")[:200])
    except NewsletterError as err:
        results = [("failed", links[0], str(err))]
    else:
        results = _outcomes(links, report)
        _mark_inbox(links, issue_id, {url for kind, url, _why in results if kind == "added"})
    return jsonify({"results": [{"kind": k, "url": u, "why": w} for k, u, w in results]})


def _mark_inbox(links: list[str], issue_id: str, added: set[str]) -> None:
    """Mark the inbox candidates of the added links as moved into issue_id."""
    from ...workspace.inbox import Inbox, url_key

    inbox = Inbox(services().engine)
    keys = {url_key(u) for u in links if u in added}
    for candidate in inbox.list(waiting_only=True, limit=1000)[0]:
        if url_key(candidate.url) in keys:
            inbox.mark_added(candidate.id, issue_id)


@bp.get("/issues/<issue_id>/preview.html")
def preview_frame(issue_id: str) -> Response:
    """Return the built sample message's HTML for the preview frames (sandboxed, framed by us only)."""
    issue_or_404(issue_id)
    shown = preview.read(services().config, issue_id)
    body = shown.html or f"<p>{'No preview yet.'}</p>"
    resp = Response(body, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = FRAME_CSP
    resp.headers["X-Frame-Options"] = "SAMEORIGIN"
    return resp


@bp.post("/issues/<issue_id>/test")
def test_send(issue_id: str) -> Response:
    """Send a test copy of the built issue to the address given."""
    from ...pipeline import send_test

    issue_or_404(issue_id)
    address = request.form.get("address", "").strip()[:320]
    try:
        send_test(services().config, issue_id, address)
    except NewsletterError as err:
        flash(f"Test not sent: {err}", "error")
    else:
        flash(f"Test copy sent to {address}.")
    return redirect(url_for("admin.editor", issue_id=issue_id) + "#send")


@bp.post("/issues/<issue_id>/schedule")
def schedule(issue_id: str) -> Response:
    """Schedule the send of the issue at the date and time given (in the newsletter's time zone)."""
    from ...schedule.scheduler import schedule_send

    issue_or_404(issue_id)
    at = request.form.get("at", "").strip()[:40].replace("T", " ")
    try:
        job = schedule_send(services().config, issue_id, at)
    except StaleRender as err:
        # The editor page rebuilds a stale preview when it loads (preview.current): say so,
        # instead of the CLI's advice to run `newsletter build`.
        flash(f"Not scheduled: {' and '.join(err.changed) or 'the issue'} changed since the preview was "
              "built; it is rebuilt below: check the preview, then schedule again.", "error")
    except NewsletterError as err:
        flash(f"Not scheduled: {err}", "error")
    else:
        flash(f"Scheduled: {job.what} at {job.next_run:%Y-%m-%d %H:%M %Z}.")
    return redirect(url_for("admin.editor", issue_id=issue_id) + "#send")


@bp.post("/issues/<issue_id>/unschedule")
def unschedule(issue_id: str) -> Response:
    """Cancel the scheduled send of the issue."""
    from ...schedule.scheduler import send_job_id
    from ...schedule.scheduler import unschedule as cancel

    issue_or_404(issue_id)
    try:
        cancel(services().config, send_job_id(issue_id))
    except NewsletterError as err:
        flash(f"Not cancelled: {err}", "error")
    else:
        flash("The scheduled send was cancelled.")
    return redirect(url_for("admin.editor", issue_id=issue_id) + "#send")
