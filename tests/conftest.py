"""Shared pytest setup and fixtures: every test runs in its own folder, off the user's config and
the network; `db_url` gives a fresh SQLite file or a private PostgreSQL schema; `smtp` a real SMTP
server, `client` the web app of a module's `config`, `browser` Debian's chromium.

Markers: `postgres` (the PostgreSQL half of `db_url`, and `pg_url`: a private schema; skipped
unless NEWSLETTER_TEST_POSTGRES_URL names a server) and `browser` (drives Debian's chromium through Playwright).
"""

from __future__ import annotations

import os
import secrets

import pytest

from newsletter.db import dispose_engines


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Run every test in its own folder with no inherited NEWSLETTER_* settings."""
    for key in list(os.environ):
        if key.startswith("NEWSLETTER_") and key != "NEWSLETTER_TEST_POSTGRES_URL":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


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


def _private_pg_schema():
    """Yield the URL of a new PostgreSQL schema, dropped afterwards (skip without the server)."""
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """Yield a fresh database URL: a SQLite file in tmp_path, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'newsletter.db'}"
        dispose_engines()
        return
    yield from _private_pg_schema()


@pytest.fixture
def web_site():
    """Yield a running compose_support.Site: a local web site whose pages and feeds a test sets."""
    from compose_support import Site

    with Site() as site:
        yield site


@pytest.fixture
def project(tmp_path):
    """Yield a compose_support.Project: a newsletter made by `newsletter init` under tmp_path."""
    from compose_support import Project

    made = Project(tmp_path / "news")
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def browser():
    """Yield a Playwright Browser: Debian's chromium (browser_support.CHROMIUM), closed after the test."""
    from playwright.sync_api import sync_playwright

    from browser_support import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def smtp():
    """Yield a real SMTP server (mail_servers.SMTPTestServer, aiosmtpd) on a free local port."""
    from mail_servers import SMTPTestServer

    with SMTPTestServer() as server:
        yield server


@pytest.fixture
def client(config):
    """Return a Flask test client of the web app made from the test module's own `config` fixture."""
    from newsletter.web import create_app

    return create_app(config).test_client()


@pytest.fixture
def pg_url():
    """Yield the URL of a private PostgreSQL schema (skipped without NEWSLETTER_TEST_POSTGRES_URL)."""
    yield from _private_pg_schema()
