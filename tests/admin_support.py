"""Helpers of the web editor's tests: a config written to disk (jobs need a file), a local article
site with a feed, an editor account, and a logged-in Flask test client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from compose_support import ARTICLES, Site, rss_item
from config_support import NEWSLETTER, build_config
from newsletter.workspace.accounts import Accounts
from newsletter.config import Config
from newsletter.db import get_engine

SECRET = "web-tests-secret-key-0123456789abcdef"
EDITOR, PASSWORD = "editor", "correct horse battery"
PAGES = {"/a1": "cubesat-aurora.html", "/a2": "library-passkeys.html", "/a3": "street-trees-heat.html",
         "/a4": "walk-after-dinner.html"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def admin_config(root: Path, *, base_url: str, smtp_port: int = 25, feeds: list[str] = ()) -> Config:
    """Return a Config written to root/config.toml (scheduled jobs load it), SMTP to smtp_port."""
    return build_config(
        root, write=True,
        newsletter={**NEWSLETTER, "base_url": base_url, "language": "en-GB", "postal_address": "1 Test Street"},
        signing={"secret_env": "NEWSLETTER_SECRET_KEY"},
        delivery={"backend": "smtp", "smtp": {"host": "127.0.0.1", "port": smtp_port, "timeout": 10}},
        sources={"feeds": [{"url": f} for f in feeds]})


def add_editor(config: Config, name: str = EDITOR, password: str = PASSWORD) -> None:
    """Create an editor account."""
    Accounts(get_engine(config)).add_user(name, password)


def csrf_of(html: str) -> str:
    """Return the CSRF token of the first form in html."""
    found = _CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def logged_in(client, name: str = EDITOR, password: str = PASSWORD):
    """Log client in through the form; return it."""
    token = csrf_of(client.get("/admin/login").text)
    resp = client.post("/admin/login", data={"csrf_token": token, "username": name, "password": password})
    assert resp.status_code == 302, resp.text
    return client


@contextmanager
def article_site() -> Iterator[str]:
    """Serve the sample articles at /a1../a4 and an RSS feed of /a4 at /feed.xml; yield the base URL."""
    with Site() as site:
        for path, name in PAGES.items():
            site.file(path, ARTICLES / name)
        hours_ago = format_datetime(datetime.now(timezone.utc) - timedelta(hours=3))
        site.feed("/feed.xml", [rss_item(f"{site.base}/a4", "Feed story", hours_ago)])
        yield site.base
