"""Helpers for the storage, ledger and send tests: database URLs (SQLite, PostgreSQL), configs, issues."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from newsletter.render import placeholders as tokens
from newsletter.config import Config, config_from_dict
from newsletter.render.saved import save_rendered
from newsletter.models import Rendered
from newsletter.db import dispose_engines

PG_ENV = "NEWSLETTER_TEST_POSTGRES_URL"


def _pg_schema_url(base: str, schema: str) -> str:
    """Return base with a search_path option that points every connection at schema."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _pg_admin(base: str):
    """Return an autocommit psycopg connection to the database of the SQLAlchemy URL base."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    return psycopg.connect(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username,
                           password=url.password, dbname=url.database, autocommit=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Yield a fresh database URL: a SQLite file in tmp_path, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'newsletter.db'}"
        dispose_engines()
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    schema = f"nl_test_{secrets.token_hex(6)}"
    with _pg_admin(base) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _pg_schema_url(base, schema)
    finally:
        dispose_engines()
        with _pg_admin(base) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def make_config(root: Path, url: str | None = None, **delivery: Any) -> Config:
    """Return a Config rooted at root on database url (default: SQLite under root/state)."""
    data: dict[str, Any] = {
        "newsletter": {"name": "Test Weekly", "sender": "Test Weekly <news@example.org>",
                       "base_url": "http://newsletter.test"},
        "database": {"url": url or f"sqlite:///{root / 'state' / 'newsletter.db'}"},
        # No secret in the environment: the signing key is generated once in state/secret.key.
        "signing": {"secret_env": ""},
        "delivery": {"backend": "file", **delivery},
    }
    return config_from_dict(data, root)


def smtp_delivery(port: int, **more: Any) -> dict[str, Any]:
    """Return delivery settings that send over SMTP to 127.0.0.1:port, fast retries."""
    return {"backend": "smtp", "smtp": {"host": "127.0.0.1", "port": port, "timeout": 10},
            "backoff_seconds": 0.01, **more}


def write_issue(config: Config, issue_id: str = "w1", subject: str = "Weekly digest") -> Rendered:
    """Save a built issue (HTML and text with personalisation tokens) as `newsletter build` would."""
    nonce = tokens.new_nonce()

    def t(field: str) -> str:
        return tokens.token(nonce, field)

    html = (f"<html><body><p>Hello {t('name')} from {t('city')}</p>"
            f"<p><a href=\"{t('unsubscribe_url')}\">Unsubscribe</a> "
            f"<a href=\"{t('view_url')}\">View online</a></p></body></html>")
    text = f"Hello {t('name')} from {t('city')}\n\nUnsubscribe: {t('unsubscribe_url')}\n"
    rendered = Rendered(issue_id=issue_id, subject=subject, preheader="This week", html=html,
                        text=text, nonce=nonce)
    save_rendered(config.paths.state, rendered)
    return rendered


def write_csv(path: Path, n: int, *, start: int = 0, domain: str = "example.org") -> Path:
    """Write a CSV of n subscribers (email, name, city) to path; returns path."""
    lines = ["email,name,city"]
    lines += [f"user{i}@{domain},User {i},Town {i % 7}" for i in range(start, start + n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
