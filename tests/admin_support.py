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


def admin_config(root: Path, *, base_url: str, smtp_port: int = 25, feeds: list[str] = (),
                 **delivery: object) -> Config:
    """Return a Config written to root/config.toml (scheduled jobs load it), SMTP to smtp_port;
    delivery: more [delivery] keys (rate_per_second=2 makes a send last long enough to watch)."""
    return build_config(
        root, write=True,
        newsletter={**NEWSLETTER, "base_url": base_url, "language": "en-GB", "postal_address": "1 Test Street"},
        signing={"secret_env": "NEWSLETTER_SECRET_KEY"},
        delivery={"backend": "smtp", "smtp": {"host": "127.0.0.1", "port": smtp_port, "timeout": 10}, **delivery},
        sources={"feeds": [{"url": f} for f in feeds]})


def served_config(root: Path, monkeypatch, **settings: object) -> tuple[Config, int]:  # noqa: ANN001
    """Return (an admin_config for an app about to be served on a free loopback port, that port),
    with the editor's account made and the signing key in the environment; settings go to admin_config."""
    from mail_servers import free_port

    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    port = free_port()
    config = admin_config(root, base_url=f"http://127.0.0.1:{port}", **settings)
    add_editor(config)
    return config, port


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


READERS = ("ann@example.org", "bob@example.org", "cy@example.org")
REFUSED = "nobody@example.org"          # the SMTP server refuses it: 550 5.1.1
GONE = "gone@example.org"               # unsubscribed before the send: never planned


def refuse_one(address: str) -> int | str:
    """SMTP reply_for: a 550 5.1.1 with markup in its text for REFUSED (pages must escape it), 250 otherwise."""
    return "550 5.1.1 <b>No such user</b> here" if address == REFUSED else 250


def readers(config: Config) -> None:
    """Subscribe READERS and REFUSED to the default list, and GONE as unsubscribed."""
    from newsletter.subscribers.store import SubscriberStore

    store = SubscriberStore(get_engine(config))
    for address in (*READERS, REFUSED):
        store.add(address, name=address.split("@")[0].title())
    store.add(GONE, status="unsubscribed")


def built_issue(config: Config, site: str, issue_id: str = "w1", title: str = "Week one") -> None:
    """Create issue_id with the article at site/a1 and build it, as `newsletter build` does."""
    from newsletter.issues import create_issue
    from newsletter.pipeline import add_sources, build_issue

    create_issue(config.paths.issues, issue_id, title)
    report = add_sources(config, issue_id, [f"{site}/a1"])
    assert not report.failed, report.failed
    build_issue(config, issue_id)
