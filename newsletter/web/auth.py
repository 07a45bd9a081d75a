"""Who is asking: the editor's login session for /admin/, bearer API tokens for /api/.

Sessions live in Flask's signed cookie (HttpOnly, SameSite=Lax, Secure under https: see
app.py); logging in starts a fresh session so a token planted before login is worthless.
Login attempts are rate-limited per client address and per user name, in memory (ratelimit.py).
"""

from __future__ import annotations

from flask import current_app, request, session

from ..workspace.accounts import Accounts
from .context import services
from .ratelimit import SlidingWindowLimit

LOGIN_ATTEMPTS = 10             # per address and per user name ...
LOGIN_WINDOW = 15 * 60.0        # ... within this many seconds (OWASP: slow guessing, not lock-out)
_LIMITS = "newsletter.login_limits"
_USER = "admin_user"


def accounts() -> Accounts:
    """Return the Accounts store of this app's database."""
    return Accounts(services().engine)


def _limits() -> tuple[SlidingWindowLimit, SlidingWindowLimit]:
    """Return this app's (per address, per user name) login limits, made on first use."""
    limits = current_app.extensions.get(_LIMITS)
    if limits is None:
        limits = current_app.extensions.setdefault(
            _LIMITS, (SlidingWindowLimit(LOGIN_ATTEMPTS, LOGIN_WINDOW),
                      SlidingWindowLimit(LOGIN_ATTEMPTS, LOGIN_WINDOW)))
    return limits


def login_allowed(name: str) -> bool:
    """Count one login attempt for this client and name; return False when either is over its limit."""
    per_ip, per_name = _limits()
    ip_ok = per_ip.hit(request.remote_addr or "?")
    name_ok = per_name.hit(name.lower()[:100])
    return ip_ok and name_ok


def log_in(name: str) -> None:
    """Start a fresh session for user name (a new CSRF token comes with it)."""
    session.clear()
    session[_USER] = name


def log_out() -> None:
    """End the session."""
    session.clear()


def current_user() -> str | None:
    """Return the logged-in user's name, or None (also when the user was removed meanwhile)."""
    name = session.get(_USER)
    if not isinstance(name, str) or not name:
        return None
    if not accounts().user_exists(name):
        session.clear()
        return None
    return name


def bearer_token_name() -> str | None:
    """Return the name of the API token in the Authorization: Bearer header (RFC 6750), or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return accounts().token_name(value.strip())
