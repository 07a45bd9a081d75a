"""The subscribers page: search, add, import a CSV upload, export, unsubscribe and reactivate."""

from __future__ import annotations

from flask import Response, abort, redirect, request, url_for

from ...db import STATUSES
from ...errors import InputError, NewsletterError
from ...inputs import check_list_name, printable
from ...models import SubscriberStatus
from ..context import flash, page, services
from ..people import export_download, import_upload
from . import bp

SHOWN = 200
MAX_ERRORS_SHOWN = 50


def _list_name() -> str:
    """Return the list the page works on (?list=, else the default list); aborts 400 for a name
    no list can have (it would fail deep in the store otherwise)."""
    name = request.values.get("list", "").strip()[:200]
    try:
        return check_list_name(name) if name else services().config.delivery.default_list
    except InputError as err:
        abort(400, description=printable(str(err)))


@bp.get("/subscribers")
def subscribers() -> Response:
    """Show the list's subscribers whose address or name contains the search text (first 200)."""
    list_name, query = _list_name(), request.args.get("q", "").strip()[:320].lower()
    status = request.args.get("status", "")
    return _page(list_name, query, status if status in [s.value for s in STATUSES] else None)


def _page(list_name: str, query: str = "", status: str | None = None,
          import_errors: list = (), import_summary: str = "") -> Response:
    """Render the page: the first SHOWN subscribers of list_name in status (None = any) whose
    address or name contains query, and an import's report when there is one."""
    svc = services()
    found, more = [], False
    for sub in svc.subscribers.iter_subscribers(list_name, status):
        if query and query not in sub.email.lower() and query not in sub.name.lower():
            continue
        if len(found) == SHOWN:
            more = True
            break
        found.append(sub)
    lists = sorted(set(svc.subscribers.lists()) | {svc.config.delivery.default_list})
    return page("admin/subscribers.html", found=found, more=more, list_name=list_name, q=query,
                state_filter=status or "", lists=lists, counts=svc.subscribers.counts(list_name),
                statuses=[s.value for s in STATUSES], import_errors=list(import_errors),
                import_summary=import_summary)


@bp.post("/subscribers")
def add_subscriber() -> Response:
    """Add one subscriber (an existing address keeps its state)."""
    list_name = _list_name()
    email = request.form.get("email", "").strip()[:320]
    try:
        sub = services().subscribers.add(email, request.form.get("name", "")[:500], list_name)
    except NewsletterError as err:
        flash(f"Not added: {err}", "error")
    else:
        flash(f"{sub.email} is on {list_name} ({sub.status}).")
    return redirect(url_for("admin.subscribers", list=list_name))


@bp.post("/subscribers/status")
def set_status() -> Response:
    """Unsubscribe or reactivate one address: reactivating undoes a bounce or complaint made by
    mistake, never an unsubscribe (the subscriber's own choice), as `subscribers reactivate` does."""
    from ...feedback.undo import reactivate

    list_name, email = _list_name(), request.form.get("email", "")[:320]
    status = request.form.get("status", "")
    if status not in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.ACTIVE):
        flash("Choose unsubscribe or reactivate.", "error")
    elif status == SubscriberStatus.ACTIVE:
        report = reactivate(services().engine, list_name, [email])
        for address, why in report.refused:
            flash(f"{address} not reactivated: {why}.", "error")
        if report.reactivated:
            flash(f"{email} is now active.")
    else:
        try:
            changed = services().subscribers.set_status(email, list_name, status)
        except NewsletterError as err:
            flash(str(err), "error")
        else:
            flash(f"{email} is now {status}." if changed else f"{email} is not on {list_name}.",
                  "info" if changed else "error")
    return redirect(url_for("admin.subscribers", list=list_name, q=request.form.get("q", "")))


@bp.post("/subscribers/erase")
def erase() -> Response:
    """Erase one address: deleted with its personal data, a hashed suppression kept."""
    list_name, email = _list_name(), request.form.get("email", "")[:320]
    try:
        done = services().subscribers.erase(email, list_name)
    except NewsletterError as err:
        flash(str(err), "error")
    else:
        flash(f"{email} was erased from {list_name}; it cannot be imported again." if done
              else f"{email} is not on {list_name}.", "info" if done else "error")
    return redirect(url_for("admin.subscribers", list=list_name))


@bp.post("/subscribers/import")
def import_csv() -> Response:
    """Import an uploaded CSV file into the list; show the errors per line."""
    svc, list_name = services(), _list_name()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose a CSV file to import.", "error")
        return redirect(url_for("admin.subscribers", list=list_name))
    try:
        report = import_upload(svc.subscribers, upload.save, upload.filename, list_name)
    except NewsletterError as err:
        flash(f"Not imported: {err}", "error")
        return redirect(url_for("admin.subscribers", list=list_name))
    summary = (f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
               f"{report.kept_suppressed} kept unsubscribed/bounced/complained, "
               f"{report.duplicates} duplicates merged, {len(report.errors)} rows rejected")
    return _page(list_name, import_errors=report.errors[:MAX_ERRORS_SHOWN], import_summary=summary)


@bp.get("/subscribers/export.csv")
def export_csv() -> Response:
    """Return the list as a CSV download."""
    list_name = _list_name()
    try:
        return export_download(services().subscribers, list_name)
    except NewsletterError as err:
        flash(f"Not exported: {err}", "error")
        return redirect(url_for("admin.subscribers", list=list_name))
