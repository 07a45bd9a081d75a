"""Logging in and out of the admin."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, redirect, request, url_for

from ..auth import accounts, current_user, log_in, log_out, login_allowed, login_failed
from ..context import page
from . import bp

_WRONG = "Wrong user name or password."
_SLOW_DOWN = "Too many attempts. Wait a few minutes and try again."


def _safe_next(target: str | None) -> str:
    """Return target when it is a path inside the admin, else the dashboard (no open redirect)."""
    if target and target.startswith("/admin/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """Show the login form; on POST check the name and password and start a session."""
    nxt = request.values.get("next", "")
    if request.method == "GET":
        if current_user():
            return redirect(_safe_next(nxt))
        return page("admin/login.html", next=nxt, name="", error="")
    name = request.form.get("username", "").strip()[:100]
    password = request.form.get("password", "")
    if not login_allowed(name):
        return page("admin/login.html", 429, next=nxt, name=name, error=_SLOW_DOWN)
    if not name or not password or not accounts().check_password(name, password[:1000]):
        login_failed(name)
        return page("admin/login.html", 401, next=nxt, name=name, error=_WRONG)
    log_in(name)
    return redirect(_safe_next(nxt))


@bp.post("/logout")
def logout() -> Response:
    """End the session and show the login form."""
    log_out()
    return redirect(url_for("admin.login"))
