"""CSRF tokens for the forms and security headers on every response."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, request, session

CSRF_FIELD = "csrf_token"
_SESSION_KEY = "csrf"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_EXPIRED = "This form has expired or was not sent from this site. Reload the page and try again."

# Our own pages load nothing but their stylesheet: no script at all, no framing, no foreign forms.
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
# An archived issue is the email as sent: inline styles (premailer) and remote article images,
# still no script, no forms and no framing.
ARCHIVE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
               "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")

V = TypeVar("V", bound=Callable[..., object])


def csrf_exempt(view: V) -> V:
    """Return view marked so that the global CSRF check skips it (it must check by itself)."""
    view._csrf_exempt = True  # type: ignore[attr-defined]
    return view


def csrf_token() -> str:
    """Return this browser session's CSRF token, creating it (and the session cookie) on first use."""
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def check_csrf() -> None:
    """Return when the request carries this session's CSRF token from an allowed origin; else abort 400."""
    if not _origin_allowed():
        abort(400, description=_EXPIRED)
    expected = session.get(_SESSION_KEY)
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(
            sent.encode("utf-8", "replace"), expected.encode("utf-8")):
        abort(400, description=_EXPIRED)


def _origin(url: str) -> str:
    """Return scheme://host[:port] of url, lower-cased."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _origin_allowed() -> bool:
    """Return False when the browser says the form was submitted from another site."""
    # Sec-Fetch-Site is set by the browser itself (no page can forge it) and does not depend on
    # how proxies rewrite the Host header: trust it when present.
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True     # older browsers and non-browser clients: the session token alone decides
    allowed = {_origin(request.host_url), _origin(current_app.config["NEWSLETTER_BASE_URL"])}
    return origin.lower() in allowed


def host_name(host: str) -> str:
    """Return the host name of a Host header value without its port, lower-cased ("[::1]" kept whole)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else ""
    return host.partition(":")[0]


def host_allowed(host: str, trusted: tuple[str, ...]) -> bool:
    """Return True when the Host value names one of trusted (".example.org" also allows subdomains)."""
    name = host_name(host)
    if not name:
        return False
    for ref in trusted:
        if ref.startswith("."):
            if name == ref[1:] or name.endswith(ref):
                return True
        elif name == ref:
            return True
    return False


def _check_host() -> None:
    """Refuse (400) a request for a host we do not serve, before anything builds a URL from it.

    Werkzeug builds redirects (/archive → /archive/) from the Host header: without this, a request
    with "Host: evil.example" would be sent on to that host.
    """
    trusted = current_app.config["NEWSLETTER_TRUSTED_HOSTS"]
    if not host_allowed(request.host, trusted):
        abort(400, description="This site is not served under this name.")


def _before_request() -> None:
    """Check the Host, then CSRF on every state-changing request unless its view is marked exempt."""
    _check_host()
    if request.method not in _UNSAFE or request.routing_exception is not None:
        return      # nothing to protect, or a 404/405 that routing reports by itself
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "_csrf_exempt", False):
        return
    check_csrf()


def _add_headers(response: Response) -> Response:
    """Set the security headers; a view may have set a stricter or looser CSP of its own first."""
    h = response.headers
    h.setdefault("Content-Security-Policy", PAGE_CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    # Tokens travel in URLs: never leak them to another site through Referer. ("no-referrer"
    # would also make browsers send "Origin: null" on our own forms, hiding where they came from.)
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    # Pages that show an address or carry a token must not sit in shared caches.
    h.setdefault("Cache-Control", "no-store")
    # HSTS (RFC 6797) on every https answer: behind a proxy, request.is_secure comes from its
    # X-Forwarded-Proto (web.proxy_hops). Browsers ignore the header on plain http.
    if request.is_secure or current_app.config["NEWSLETTER_BASE_URL"].startswith("https://"):
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def init_security(app: Flask) -> None:
    """Install the CSRF check, the security headers and the csrf_token() template helper on app."""
    app.before_request(_before_request)
    app.after_request(_add_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD
