"""Helpers for the scheduler tests: config files, built issues, the daemon as a real subprocess, a feed server."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any


from newsletter.render import placeholders as tokens
from newsletter.config import Config
from newsletter.render.saved import save_rendered
from newsletter.models import Rendered
from newsletter.db import get_engine
import compose_support
from config_support import build_config, smtp_delivery
from newsletter.subscribers.store import SubscriberStore

SCAFFOLD_ARTICLES = Path(__file__).resolve().parent.parent / "newsletter" / "scaffold" / "articles"


def write_config(root: Path, smtp_port: int | None = None, **sections: dict[str, Any]) -> Config:
    """Write root/config.toml (SQLite under root/state, SMTP to smtp_port) and return it loaded."""
    if smtp_port is not None:
        sections = {"delivery": {**smtp_delivery(smtp_port), **sections.get("delivery", {})},
                    **{k: v for k, v in sections.items() if k != "delivery"}}
    return build_config(root, write=True, **sections)


def add_subscribers(config: Config, n: int, list_name: str = "default") -> list[str]:
    """Import n active subscribers into list_name; return their addresses."""
    addresses = [f"reader{i}@example.org" for i in range(n)]
    csv = config.root / f"{list_name}.csv"
    csv.write_text("email,name\n" + "".join(f"{a},Reader {i}\n" for i, a in enumerate(addresses)),
                   encoding="utf-8")
    report = SubscriberStore(get_engine(config)).import_csv(csv, list_name)
    assert report.added == n
    return addresses


def write_built_issue(config: Config, issue_id: str, subject: str = "Scheduled digest") -> Rendered:
    """Save a built issue (with personalisation tokens) as `newsletter build` would, plus its file."""
    nonce = tokens.new_nonce()
    unsub = tokens.token(nonce, "unsubscribe_url")
    html = (f"<html><body><p>Hello {tokens.token(nonce, 'name')}</p>"
            f"<p><a href=\"{unsub}\">Unsubscribe</a></p></body></html>")
    text = f"Hello {tokens.token(nonce, 'name')}\n\nUnsubscribe: {unsub}\n"
    rendered = Rendered(issue_id=issue_id, subject=subject, preheader="This week", html=html,
                        text=text, nonce=nonce)
    save_rendered(config.paths.state, rendered)
    config.paths.issues.mkdir(parents=True, exist_ok=True)
    (config.paths.issues / f"{issue_id}.toml").write_text(
        f'id = "{issue_id}"\ntitle = "{subject}"\n', encoding="utf-8")
    return rendered


def per_address(server) -> collections.Counter:  # noqa: ANN001 - an SMTPTestServer
    """Return how many messages each address received."""
    return collections.Counter(rcpt for m in server.messages for rcpt in m.rcpt_tos)


def wait_for(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    """Return predicate()'s first true value within timeout seconds, or its last (false) value."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            return value
        time.sleep(step)


class Daemon:
    """`newsletter run` as a real subprocess, its log (stderr) in a file."""

    def __init__(self, config: Config, name: str = "daemon", poll: float = 0.3):
        self.log_path = config.root / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        code = "import sys; from newsletter.cli import main; main(sys.argv[1:])"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", code, "--config", str(config.path), "run",
                                      "--poll", str(poll)], cwd=config.root, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        """Return what the daemon logged so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 15.0) -> bool:
        """Return True once text appears in the log (False after timeout or when the process died)."""
        return bool(wait_for(lambda: text in self.log() or self.proc.poll() is not None, timeout)) \
            and text in self.log()

    def kill(self) -> None:
        """SIGKILL the daemon and reap it (a zombie would still look alive)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM the daemon; return its exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Make sure the process is gone and the log closed."""
        if self.proc.poll() is None:
            self.kill()
        self._log.close()


# -- a local site with a feed ------------------------------------------------------------------

class Site(compose_support.Site):
    """A local HTTP server with an RSS feed (/feed.xml) of the entries published and the scaffold's
    article pages (/a/<name>.html)."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[str, str, datetime]] = []     # (page name, title, published)
        for file in SCAFFOLD_ARTICLES.glob("*.html"):
            self.file(f"/a/{file.name}", file)
        self._write_feed()

    def publish(self, name: str, title: str, published: datetime) -> str:
        """Add an entry for the scaffold article name (e.g. cubesat-aurora); return its URL."""
        self.entries.append((name, title, published))
        self._write_feed()
        return f"{self.base}/a/{name}.html"

    def _write_feed(self) -> None:
        """Serve the feed of the entries so far at /feed.xml."""
        items = []
        for name, title, when in self.entries:
            link = f"{self.base}/a/{name}.html"
            items.append(compose_support.rss_item(link, title, format_datetime(when), guid=link))
        self.feed("/feed.xml", items)
