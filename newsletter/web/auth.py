"""Who is asking: the editor's login session for /admin/, bearer API tokens for /api/.

The login session's token travels in Flask's signed cookie (HttpOnly, SameSite=Lax, Secure under
https: see app.py) and lives in the database (workspace.accounts), so logging out ends it even for
a copy of the cookie; logging in starts a fresh session so a token planted before login is
worthless. Failed logins are limited per client address and, more loosely, per user name (so a
stranger cannot lock an editor out for long), in memory (ratelimit.py).
"""

from __future__ import annotations

from flask import current_app, request, session

from ..workspace.accounts import Accounts
from .context import services
from .ratelimit import SlidingWindowLimit

LOGIN_ATTEMPTS = 10             # failed logins per client address ...
NAME_ATTEMPTS = 100             # ... and per user name from anywhere (guessing from many addresses)
LOGIN_WINDOW = 15 * 60.0        # ... within this many seconds (OWASP: slow guessing, not lock-out)
_LIMITS = "newsletter.login_limits"
_SESSION = "admin_session"


def accounts() -> Accounts:
    """Return the Accounts store of this app's database."""
    return Accounts(services().engine)


def _limits() -> tuple[SlidingWindowLimit, SlidingWindowLimit]:
    """Return this app's (per address, per user name) login limits, made on first use."""
    limits = current_app.extensions.get(_LIMITS)
    if limits is None:
        limits = current_app.extensions.setdefault(
            _LIMITS, (SlidingWindowLimit(LOGIN_ATTEMPTS, LOGIN_WINDOW),
                      SlidingWindowLimit(NAME_ATTEMPTS, LOGIN_WINDOW)))
    return limits


def login_allowed(name: str) -> bool:
    """Return False when this client, or this user name, failed too often of late."""
    per_ip, per_name = _limits()
    return per_ip.remaining(request.remote_addr or "?") > 0 and per_name.remaining(name.lower()[:100]) > 0


def login_failed(name: str) -> None:
    """Count one failed login for this client and this user name."""
    per_ip, per_name = _limits()
    per_ip.hit(request.remote_addr or "?")
    per_name.hit(name.lower()[:100])


def log_in(name: str) -> None:
    """Start a fresh session for user name (a new CSRF token comes with it)."""
    log_out()
    session[_SESSION] = accounts().start_session(name)


def log_out() -> None:
    """End the session, in the database too (a copy of the cookie stops working)."""
    token = session.get(_SESSION)
    if isinstance(token, str):
        accounts().end_session(token)
    session.clear()


def current_user() -> str | None:
    """Return the logged-in user's name, or None (no session, logged out, expired, user removed)."""
    token = session.get(_SESSION)
    if not isinstance(token, str) or not token:
        return None
    name = accounts().session_user(token)
    if name is None:
        session.clear()
    return name


def bearer_token_name() -> str | None:
    """Return the name of the API token in the Authorization: Bearer header (RFC 6750), or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return accounts().token_name(value.strip())
