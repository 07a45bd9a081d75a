"""The API's subscriber endpoints beyond search, add and erase: unsubscribe or reactivate one
address, import a CSV upload (errors per line), export a list as CSV. The same library calls as
the subscribers page (web/admin/people.py) and `newsletter subscribers ...`."""

from __future__ import annotations

import shutil
from typing import Any

from flask import Response, jsonify, request

from ...errors import InputError, NewsletterError
from ...inputs import check_list_name
from ...models import Subscriber, SubscriberStatus
from ..context import services
from ..people import export_download, import_upload
from . import bp, error
from .views import validated

MAX_ERRORS = 1000       # rejected rows listed in an import's answer; `rejected` counts them all
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
RAW_UPLOAD_NAME = "the uploaded CSV"


def _subscriber(sub: Subscriber) -> dict[str, str]:
    return {"email": sub.email, "name": sub.name, "list": sub.list, "status": str(sub.status)}


def _list_name(raw: str | None) -> str:
    """Return the list named by raw (None or "": delivery.default_list); raises InputError."""
    return check_list_name(raw) if raw else services().config.delivery.default_list


@bp.post("/subscribers/status")
def set_status() -> Response:
    """Unsubscribe or reactivate one address and return the subscriber.

    Reactivating undoes a bounce or complaint made by mistake, never an unsubscribe (the
    subscriber's own choice: 409 unsubscribed_by_choice), the rule of the subscribers page and of
    `newsletter subscribers reactivate` (feedback.undo.reactivate). 404 when not on the list."""
    from ...feedback.undo import reactivate

    body = validated("SubscriberStatusChange")
    svc = services()
    try:
        list_name = _list_name(body.get("list"))
    except InputError as err:
        return error(400, "invalid_list", str(err))
    email, status = body["email"], body["status"]
    found = svc.subscribers.get(email, list_name)       # SubscriberError (a bad address): JSON 400
    if found is None:
        return error(404, "not_found", f"{email} is not on {list_name!r}")
    if status == SubscriberStatus.ACTIVE and found.status != SubscriberStatus.ACTIVE:
        report = reactivate(svc.engine, list_name, [email])
        if report.refused:
            code = ("unsubscribed_by_choice" if found.status == SubscriberStatus.UNSUBSCRIBED
                    else "not_reactivated")
            return error(409, code, f"{email} not reactivated: {report.refused[0][1]}")
    elif status == SubscriberStatus.UNSUBSCRIBED and not svc.subscribers.set_status(email, list_name, status):
        return error(404, "not_found", f"{email} is not on {list_name!r}")      # erased meanwhile
    now = svc.subscribers.get(email, list_name)
    if now is None:
        return error(404, "not_found", f"{email} is not on {list_name!r}")
    return jsonify(_subscriber(now))


def _import_report(report: Any) -> dict[str, Any]:
    return {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
            "kept_suppressed": report.kept_suppressed, "duplicates": report.duplicates,
            "rejected": len(report.errors),
            "errors": [{"line": line, "reason": reason} for line, reason in report.errors[:MAX_ERRORS]],
            "encoding": report.format.encoding if report.format else "",
            "delimiter": report.format.delimiter if report.format else ""}


@bp.post("/subscribers/import")
def import_subscribers() -> Response:
    """Import a CSV file (the text/csv body, or the multipart field "file") into ?list=; return
    the counts and the rejected rows by line number. The body is bounded by web.max_body_bytes (413)."""
    svc = services()
    request.max_content_length = svc.config.web.max_body_bytes
    try:
        list_name = _list_name(request.args.get("list", "")[:201])
    except InputError as err:
        return error(400, "invalid_list", str(err))
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            return error(400, "no_file", "send the CSV file in the multipart field 'file'")
        save, name = upload.save, (upload.filename or RAW_UPLOAD_NAME)
    elif request.mimetype in CSV_TYPES:
        save, name = (lambda handle: shutil.copyfileobj(request.stream, handle)), RAW_UPLOAD_NAME
    else:
        return error(415, "unsupported_media_type",
                     "send the CSV file as the body (Content-Type: text/csv) or as the multipart field 'file'")
    try:
        report = import_upload(svc.subscribers, save, name, list_name)
    except NewsletterError as err:
        return error(400, "invalid_csv", str(err))
    return jsonify(_import_report(report))


@bp.get("/subscribers/export.csv")
def export_subscribers() -> Response:
    """Return ?list= as CSV (email, name, status, custom fields), as the subscribers page does;
    404 for a list without subscribers."""
    store = services().subscribers
    try:
        list_name = _list_name(request.args.get("list", "")[:201])
    except InputError as err:
        return error(400, "invalid_list", str(err))
    try:
        store.require_list(list_name)
    except NewsletterError as err:
        return error(404, "unknown_list", str(err))
    return export_download(store, list_name)
