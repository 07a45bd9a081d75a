"""Send now from the editor: a confirmation step naming the list and the recipients, the send in
the background, its progress (a panel that polls, or reload), and the failures after it.

POST-redirect-GET: the form posts once and the browser lands on a page that only reads, so a
reload or the back button never sends again; a second post while it runs is refused, and the
ledger sends each subscriber the issue at most once in any case.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, redirect, request, url_for

from ...errors import NewsletterError, SendRefused, StaleRender
from ...issues import load_issue
from ..context import flash, page, services
from ..send_status import SendStatus, send_status
from ..sending import SENDS, SendRunner, plan_send, start_send
from ..validate import page_number
from . import bp
from .editor import issue_or_404

PER_PAGE = 50          # failures shown per page of the report


def runner() -> SendRunner:
    """Return the app's SendRunner."""
    return current_app.extensions[SENDS]


def status_of(issue_id: str) -> SendStatus:
    """Return the send status of issue_id with the first page of failures (for the editor's panel)."""
    return send_status(services().config, runner(), issue_id, per_page=10)


@bp.get("/issues/<issue_id>/send")
def send_page(issue_id: str) -> Response:
    """Show the confirmation step (list, recipients, a stale render) and the send's progress and failures."""
    issue_or_404(issue_id)
    config = services().config
    try:
        title = load_issue(config.paths.issues, issue_id).title
    except NewsletterError:
        title = issue_id
    status = send_status(config, runner(), issue_id, page=page_number(request.args.get("page")), per_page=PER_PAGE)
    plan = plan_send(config, runner(), issue_id)
    return page("admin/send.html", issue_id=issue_id, title=title or issue_id, plan=plan, send=status)


@bp.post("/issues/<issue_id>/send")
def send_now(issue_id: str) -> Response:
    """Start the send the editor confirmed (typing the issue id), then show its progress."""
    issue_or_404(issue_id)
    target = url_for("admin.send_page", issue_id=issue_id)
    try:
        plan = start_send(services().config, runner(), issue_id, confirm=request.form.get("confirm", "")[:100],
                          build=request.form.get("build") == "1")
    except StaleRender as err:
        flash(f"Not sent: {err}. Use “Build and send” to send what the issue file holds now.", "error")
    except SendRefused as err:
        flash(f"Not sent: {err}.", "ok" if err.reason == "running" else "error")
    except NewsletterError as err:
        flash(f"Not sent: {err}", "error")
    else:
        count = f"{plan.recipients} recipient{'s' if plan.recipients != 1 else ''}"
        flash(f"Sending issue {issue_id} to {count} on list {plan.list_name}.")
    return redirect(target, code=303)


@bp.get("/issues/<issue_id>/send/status.json")
def send_status_json(issue_id: str) -> Response:
    """Return the send's progress as JSON for the status panel's script (no failures listed)."""
    issue_or_404(issue_id)
    resp = jsonify(send_status(services().config, runner(), issue_id, per_page=1).as_json())
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_sending(app: Flask) -> None:
    """Give the app its SendRunner and the editor's template the send status of an issue."""
    app.extensions.setdefault(SENDS, SendRunner())
    app.jinja_env.globals["send_status_of"] = status_of
