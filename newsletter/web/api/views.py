"""The API's endpoints; each calls the same library functions as the admin pages and the CLI."""

from __future__ import annotations

from typing import Any

import jsonschema
from flask import Response, abort, jsonify, request, url_for

from ...errors import EditConflict, IssueError, NewsletterError, ScheduleError, SourceError, SubscriberError
from ...workspace.inbox import Inbox
from ...workspace.issue_edit import IssueEdit, ItemEdit, file_digest
from ...issues import create_issue, is_issue_id, load_issue
from ...models import Issue, Item
from ..admin.status import issue_rows, issue_status
from ..context import services
from ..editing import removed_items, save_issue_edit
from ..inbox_fetch import inbox_fetcher
from ..validate import MAX_PAGE
from . import bp, error, json_body
from .openapi import SCHEMAS, document

MAX_PER_PAGE = 200


def validated(schema: str) -> dict[str, Any]:
    """Return the JSON body after checking it against components.schemas[schema]; else a JSON 400."""
    body = json_body()
    resolver = {"components": {"schemas": SCHEMAS}, **SCHEMAS[schema]}
    try:
        jsonschema.validate(body, resolver)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "body"
        abort(400, description=f"{where}: {err.message}")
    return body


def paging() -> tuple[int, int]:
    """Return (page, per_page) from the query (1-based; per_page at most MAX_PER_PAGE); else a JSON 400."""
    values = []
    for name, default, top in (("page", 1, MAX_PAGE), ("per_page", 50, MAX_PER_PAGE)):
        raw = request.args.get(name)
        try:
            value = default if raw is None else int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= top or (raw is not None and not raw.isdigit()):
            abort(400, description=f"{name} must be a whole number from 1 to {top}")
        values.append(value)
    return values[0], values[1]


def _page(items: list[Any], total: int, page: int, per_page: int) -> Response:
    return jsonify({"items": items, "page": page, "per_page": per_page, "total": total})


def item_json(it: Item) -> dict[str, str]:
    return {k: getattr(it, k) for k in ("url", "title", "summary", "note", "section", "source", "author",
                                        "date", "image", "image_alt")}


def issue_json(issue: Issue) -> dict[str, Any]:
    config = services().config
    return {"id": issue.id, "title": issue.title, "date": issue.date, "intro": issue.intro,
            "preheader": issue.preheader, "items": [item_json(i) for i in issue.items],
            "digest": file_digest(config.paths.issues, issue.id), "state": issue_status(config, issue.id),
            "removed": removed_items(config, issue.id)}


def load_or_404(issue_id: str) -> Issue:
    """Return the issue; a JSON 404 when there is none, 409 when its file is invalid."""
    config = services().config
    if not is_issue_id(issue_id) or not (config.paths.issues / f"{issue_id}.toml").exists():
        abort(404, description=f"no issue {issue_id!r}")
    try:
        return load_issue(config.paths.issues, issue_id)
    except IssueError as err:
        abort(409, description=str(err))


@bp.get("/openapi.json")
def openapi() -> Response:
    """Return the OpenAPI document of this API."""
    return jsonify(document(request.host_url.rstrip("/") + url_for("api.openapi").rsplit("/", 1)[0]))


@bp.get("/issues")
def list_issues() -> Response:
    page, per_page = paging()
    rows = issue_rows(services().config)
    chunk = rows[(page - 1) * per_page: page * per_page]
    return _page([{"id": r.id, "title": r.title, "state": r.state, "items": r.items, "when": r.when}
                  for r in chunk], len(rows), page, per_page)


@bp.post("/issues")
def create() -> Response:
    body = validated("IssueCreate")
    config = services().config
    try:
        create_issue(config.paths.issues, body["id"], body.get("title", "").strip())
    except IssueError as err:
        return error(409 if "already exists" in str(err) else 400, "issue_exists"
                     if "already exists" in str(err) else "invalid_issue", str(err))
    resp = jsonify(issue_json(load_issue(config.paths.issues, body["id"])))
    resp.status_code = 201
    return resp


@bp.get("/issues/<issue_id>")
def get_issue(issue_id: str) -> Response:
    return jsonify(issue_json(load_or_404(issue_id)))


@bp.patch("/issues/<issue_id>")
def edit_issue(issue_id: str) -> Response:
    issue = load_or_404(issue_id)
    body = validated("IssueEdit")
    items = body.get("items")
    edit = IssueEdit(values={k: body[k] for k in ("title", "intro", "preheader") if k in body},
                     items=[ItemEdit(url=e["url"], values={k: v for k, v in e.items() if k != "url"})
                            for e in items] if items is not None
                     else [ItemEdit(url=i.url) for i in issue.items])
    try:
        save_issue_edit(services().config, issue_id, edit, body["digest"])
    except EditConflict as err:
        return error(409, "edit_conflict", str(err))
    except IssueError as err:
        return error(400, "invalid_edit", str(err))
    return jsonify(issue_json(load_or_404(issue_id)))


@bp.post("/issues/<issue_id>/items")
def add_items(issue_id: str) -> Response:
    from ...pipeline import add_sources

    load_or_404(issue_id)
    body = validated("Links")
    try:
        report = add_sources(services().config, issue_id, body["urls"], section=body.get("section", ""))
    except NewsletterError as err:
        return error(400, "add_failed", str(err))
    return jsonify({"added": [item_json(i) for i in report.added],
                    "skipped": [{"url": u, "reason": r} for u, r in report.skipped],
                    "failed": [{"url": u, "reason": r} for u, r in report.failed]})


@bp.post("/issues/<issue_id>/preview")
def build_preview(issue_id: str) -> Response:
    from ..admin import preview

    load_or_404(issue_id)
    shown = preview.rebuild(services().config, issue_id)
    if shown.error:
        return error(409, "build_failed", shown.error)
    return jsonify({"subject": shown.subject, "html": shown.html, "text": shown.text, "warnings": shown.warnings})


@bp.post("/issues/<issue_id>/test")
def send_test(issue_id: str) -> Response:
    from ...pipeline import send_test as send

    load_or_404(issue_id)
    body = validated("TestSend")
    try:
        result = send(services().config, issue_id, body["address"])
    except SubscriberError as err:
        return error(400, "invalid_address", str(err))
    except NewsletterError as err:
        return error(409, "not_sent", str(err))
    return jsonify({"address": body["address"], "message_id": str(getattr(result, "message_id", "") or "")})


@bp.put("/issues/<issue_id>/schedule")
def schedule(issue_id: str) -> Response:
    from ...schedule.scheduler import schedule_send

    load_or_404(issue_id)
    body = validated("ScheduleRequest")
    try:
        job = schedule_send(services().config, issue_id, body["at"].replace("T", " "))
    except ScheduleError as err:
        return error(400, "invalid_schedule", str(err))
    except NewsletterError as err:
        return error(409, "not_schedulable", str(err))
    return jsonify({"id": job.id, "what": job.what,
                    "next_run": job.next_run.isoformat() if job.next_run else None})


@bp.delete("/issues/<issue_id>/schedule")
def unschedule(issue_id: str) -> Response:
    from ...schedule.scheduler import send_job_id
    from ...schedule.scheduler import unschedule as cancel

    load_or_404(issue_id)
    try:
        cancel(services().config, send_job_id(issue_id))
    except ScheduleError as err:
        return error(404, "not_scheduled", str(err))
    return Response(status=204)


def _candidate(c: Any) -> dict[str, Any]:
    return {"id": c.id, "url": c.url, "title": c.title, "site": c.site, "origin": c.origin,
            "published": c.published, "added_to": c.added_to, "image": c.image, "blurb": c.blurb,
            "fetch_state": c.fetch_state or "waiting", "fetch_error": c.fetch_error}


@bp.get("/inbox")
def list_inbox() -> Response:
    page, per_page = paging()
    found, total = Inbox(services().engine).list(waiting_only=True, offset=(page - 1) * per_page, limit=per_page)
    return _page([_candidate(c) for c in found], total, page, per_page)


@bp.post("/inbox")
def add_candidate() -> Response:
    from urllib.parse import urlsplit

    body = validated("CandidateAdd")
    try:
        found = Inbox(services().engine).add(body["url"], "api", body.get("title", ""),
                                             urlsplit(body["url"]).hostname or "")
    except (SourceError, ValueError) as err:
        return error(400, "invalid_url", str(err))
    if found is None:
        return error(409, "dismissed", "that link was dismissed before; it is not offered again")
    inbox_fetcher().kick()
    resp = jsonify(_candidate(found))
    resp.status_code = 201
    return resp


@bp.delete("/inbox/<int:candidate_id>")
def dismiss(candidate_id: int) -> Response:
    if not Inbox(services().engine).dismiss(candidate_id):
        return error(404, "not_found", f"no inbox candidate {candidate_id}")
    return Response(status=204)


@bp.get("/lists")
def lists() -> Response:
    svc = services()
    names = sorted(set(svc.subscribers.lists()) | {svc.config.delivery.default_list})
    return jsonify({"items": [{"name": n, "counts": {str(k): v for k, v in svc.subscribers.counts(n).items()}}
                              for n in names]})


@bp.get("/subscribers")
def list_subscribers() -> Response:
    page, per_page = paging()
    svc = services()
    list_name = request.args.get("list", "") or svc.config.delivery.default_list
    query = request.args.get("q", "").lower()
    found, total = [], 0
    start = (page - 1) * per_page
    for sub in svc.subscribers.iter_subscribers(list_name[:200]):
        if query and query not in sub.email.lower() and query not in sub.name.lower():
            continue
        if start <= total < start + per_page:
            found.append({"email": sub.email, "name": sub.name, "list": sub.list, "status": str(sub.status)})
        total += 1
    return _page(found, total, page, per_page)


@bp.post("/subscribers")
def add_subscriber() -> Response:
    body = validated("SubscriberAdd")
    svc = services()
    try:
        sub = svc.subscribers.add(body["email"], body.get("name", ""),
                                  body.get("list") or svc.config.delivery.default_list)
    except SubscriberError as err:
        return error(400, "invalid_subscriber", str(err))
    resp = jsonify({"email": sub.email, "name": sub.name, "list": sub.list, "status": str(sub.status)})
    resp.status_code = 201
    return resp


@bp.post("/subscribers/erase")
def erase_subscriber() -> Response:
    body = validated("SubscriberErase")
    svc = services()
    list_name = body.get("list") or svc.config.delivery.default_list
    try:
        done = svc.subscribers.erase(body["email"], list_name)
    except SubscriberError as err:
        return error(400, "invalid_subscriber", str(err))
    if not done:
        return error(404, "not_found", f"{body['email']} is not on {list_name!r}")
    return Response(status=204)
