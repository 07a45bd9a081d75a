"""Editor accounts and API tokens: add, check, list and remove them in the database.

Passwords are hashed with argon2id (argon2-cffi, RFC 9106 parameters of its default profile);
API tokens are 256 random bits shown once and stored as their SHA-256 (a token is already
high-entropy, so a slow hash would add nothing but latency to every API call).
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from ..db import admin_sessions, api_tokens, as_utc, users, utcnow, write_transaction
from ..errors import AccountError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}\Z")
MIN_PASSWORD = 10
TOKEN_PREFIX = "nlt_"
SESSION_IDLE = timedelta(days=7)       # a session unused this long ends ...
SESSION_MAX = timedelta(days=30)       # ... and every session ends this long after its login
_TOUCH_EVERY = timedelta(minutes=5)    # last_seen_at is written at most this often per session
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Return a hash to verify against when the user does not exist: the answer then takes the
    same time, so a login form does not tell which user names exist. Made on first use, not at
    import: Argon2 takes 64 MiB to hash, which every command (send, worker) would carry in its
    peak RSS."""
    return _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class Account:
    """A user or token as listed: its name and when it was made (UTC)."""

    name: str
    created_at: datetime
    last_used_at: datetime | None = None


def check_name(name: str) -> str:
    """Return name when it is a valid user or token name; raise AccountError otherwise."""
    if not _NAME.match(name or ""):
        raise AccountError(f"invalid name {name!r}: use letters, digits, '.', '_', '@' or '-' "
                           "(at most 100, starting with a letter or digit)", name)
    return name


class Accounts:
    """The users and API tokens stored in one database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    # -- users -------------------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add user name with password; raise AccountError for a bad name, short password or duplicate."""
        check_name(name)
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password must have at least {MIN_PASSWORD} characters", name)
        digest = _hasher.hash(password)
        with write_transaction(self.engine) as conn:
            if conn.execute(select(users.c.id).where(users.c.name == name)).first():
                raise AccountError(f"user {name!r} already exists", name)
            conn.execute(insert(users).values(name=name, password_hash=digest, created_at=utcnow()))

    def check_password(self, name: str, password: str) -> bool:
        """Return True when name exists and password is theirs (rehashing an outdated hash)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users.c.password_hash).where(users.c.name == name)).first()
        stored = row[0] if row else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
        if row is None:
            return False
        if _hasher.check_needs_rehash(stored):
            with write_transaction(self.engine) as conn:
                conn.execute(update(users).where(users.c.name == name)
                             .values(password_hash=_hasher.hash(password)))
        return True

    def user_exists(self, name: str) -> bool:
        """Return True when user name exists (a session of a removed user stops working)."""
        with self.engine.connect() as conn:
            return conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None

    def list_users(self) -> list[Account]:
        """Return every user, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(users.c.name, users.c.created_at).order_by(users.c.name)).all()
        return [Account(r.name, r.created_at) for r in rows]

    def remove_user(self, name: str) -> None:
        """Remove user name and end their sessions; raise AccountError when there is no such user."""
        with write_transaction(self.engine) as conn:
            if conn.execute(delete(users).where(users.c.name == name)).rowcount == 0:
                raise AccountError(f"no user {name!r} (see `newsletter users list`)", name)
            conn.execute(delete(admin_sessions).where(admin_sessions.c.user_name == name))

    # -- login sessions ----------------------------------------------------------------------------

    def start_session(self, name: str) -> str:
        """Start a login session for user name and return its token (256 random bits) for the
        cookie; only its SHA-256 is stored. Sessions past their age are cleared on the way."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with write_transaction(self.engine) as conn:
            conn.execute(delete(admin_sessions).where(
                (admin_sessions.c.last_seen_at < now - SESSION_IDLE) | (admin_sessions.c.created_at < now - SESSION_MAX)))
            conn.execute(insert(admin_sessions).values(token_hash=_token_hash(token), user_name=name,
                                                       created_at=now, last_seen_at=now))
        return token

    def session_user(self, token: str) -> str | None:
        """Return the user of the live session token, or None (unknown, ended, idle longer than
        SESSION_IDLE, older than SESSION_MAX, or its user removed)."""
        if not token or len(token) > 200:
            return None
        digest, now = _token_hash(token), utcnow()
        with self.engine.connect() as conn:
            # Outer join: a session whose user was removed is found, and ended, in the same look-up.
            row = conn.execute(select(admin_sessions.c.id, admin_sessions.c.user_name,
                                      admin_sessions.c.created_at, admin_sessions.c.last_seen_at,
                                      users.c.id.label("user_id"))
                               .select_from(admin_sessions.outerjoin(users, users.c.name == admin_sessions.c.user_name))
                               .where(admin_sessions.c.token_hash == digest)).first()
        if row is None:
            return None
        created, seen = as_utc(row.created_at), as_utc(row.last_seen_at)
        if now - seen > SESSION_IDLE or now - created > SESSION_MAX or row.user_id is None:
            self.end_session(token)
            return None
        if now - seen > _TOUCH_EVERY:
            with write_transaction(self.engine) as conn:
                conn.execute(update(admin_sessions).where(admin_sessions.c.id == row.id).values(last_seen_at=now))
        return row.user_name

    def end_session(self, token: str) -> None:
        """End the session token (logging out); nothing happens when it is not a live session."""
        if token and len(token) <= 200:
            with write_transaction(self.engine) as conn:
                conn.execute(delete(admin_sessions).where(admin_sessions.c.token_hash == _token_hash(token)))

    # -- API tokens --------------------------------------------------------------------------------

    def create_token(self, name: str) -> str:
        """Create API token name and return its secret value (shown once, only its hash is kept)."""
        check_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with write_transaction(self.engine) as conn:
            if conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == name)).first():
                raise AccountError(f"token {name!r} already exists (revoke it first)", name)
            conn.execute(insert(api_tokens).values(name=name, token_hash=_token_hash(token),
                                                   created_at=utcnow()))
        return token

    def token_name(self, token: str) -> str | None:
        """Return the name of the token whose value is token (noting its use), or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = _token_hash(token)
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(api_tokens.c.id, api_tokens.c.name)
                               .where(api_tokens.c.token_hash == digest)).first()
            if row is None:
                return None
            conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=utcnow()))
        return row.name

    def list_tokens(self) -> list[Account]:
        """Return every API token (names and dates, never values), by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.last_used_at)
                                .order_by(api_tokens.c.name)).all()
        return [Account(r.name, r.created_at, r.last_used_at) for r in rows]

    def revoke_token(self, name: str) -> None:
        """Delete API token name; raise AccountError when there is none."""
        with write_transaction(self.engine) as conn:
            if conn.execute(delete(api_tokens).where(api_tokens.c.name == name)).rowcount == 0:
                raise AccountError(f"no API token {name!r} (see `newsletter tokens list`)", name)


def _token_hash(token: str) -> str:
    """Return the hex SHA-256 of a token's value."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
