"""The editors' workspace under /admin/: log in, dashboard, issue editor with preview, inbox, subscribers.

init_admin(app) registers the blueprint and what it needs from the app (larger bodies on its
forms, its own Content-Security-Policy); every page but the login form and the static files
needs a logged-in session.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, redirect, request, send_from_directory, url_for

from ..auth import current_user

bp = Blueprint("admin", __name__, url_prefix="/admin")
STATIC = Path(__file__).resolve().parent.parent / "static" / "admin"
MAX_BODY = 4 * 1024 * 1024          # a CSV upload or a long issue; the sign-up forms keep 16 KiB
OPEN_ENDPOINTS = {"admin.login", "admin.static"}
# Our own scripts (htmx), the preview frames from this origin, article images from anywhere.
ADMIN_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
             "frame-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
             "base-uri 'none'")


def _larger_bodies() -> None:
    """Allow the admin's larger forms and uploads (runs before the CSRF check parses the form)."""
    if request.path.startswith("/admin/") or request.path.startswith("/api/"):
        request.max_content_length = MAX_BODY
        request.max_form_memory_size = MAX_BODY
        request.max_form_parts = 5000


@bp.before_request
def _require_login() -> Response | None:
    """Send a visitor without a session to the login form (the page they wanted comes after)."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if current_user() is None:
        target = request.full_path if request.method == "GET" else url_for("admin.dashboard")
        return redirect(url_for("admin.login", next=target.rstrip("?")))
    return None


@bp.after_request
def _admin_headers(response: Response) -> Response:
    """Let admin pages run our scripts and frame our previews (views may set stricter ones)."""
    response.headers.setdefault("Content-Security-Policy", ADMIN_CSP)
    return response


@bp.get("/static/<path:name>")
def static(name: str) -> Response:
    """Return a static file of the admin (htmx, stylesheet, scripts), cacheable."""
    resp = send_from_directory(STATIC, name, max_age=3600)
    return resp


@bp.get("/")
def index() -> Response:
    """Send the editor to the dashboard."""
    return redirect(url_for("admin.dashboard"))


def init_admin(app: Flask) -> None:
    """Register the admin blueprint on app, with its body limits running before the CSRF check."""
    from . import dashboard, editor, inbox, login, people, sending  # noqa: F401 - register the views

    app.before_request_funcs.setdefault(None, []).insert(0, _larger_bodies)
    app.register_blueprint(bp)
    app.jinja_env.globals["admin_user"] = current_user
    sending.init_sending(app)
