"""Helpers for the compose tests: a local web site whose pages and feeds a test sets, a project made
with `newsletter init`, and the CLI run against it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from click.testing import CliRunner, Result

from newsletter.cli import cli
from newsletter.db import dispose_engines

ARTICLES = Path(__file__).resolve().parent.parent / "articles"    # the project's sample pages


def article_page(title: str, body: str, head: str = "") -> str:
    """Return a small but real article page: a headline and a few paragraphs of body text."""
    paragraphs = "".join(f"<p>{body} Paragraph {i} adds detail that readers of the story need, "
                         f"with numbers such as {i * 17} and names.</p>" for i in range(1, 6))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
            f"<body><article><h1>{title}</h1>{paragraphs}</article></body></html>")


@dataclass
class Site:
    """A local HTTP server: routes[path without query] = (body, content type); requests are logged."""

    routes: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    delay: float = 0.0          # seconds every response waits (slow sources)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True      # else every response waits ~40 ms for delayed ACKs

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner.requests.append(self.path)
                if owner.delay:
                    time.sleep(owner.delay)
                body, ctype = owner.routes.get(self.path.split("?", 1)[0], (None, "text/plain"))
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", ctype)
                data = body if body is not None else b"not found"
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def page(self, path: str, html: str) -> str:
        """Serve html at path; return its URL."""
        self.routes[path] = (html.encode("utf-8"), "text/html; charset=utf-8")
        return self.base + path

    def file(self, path: str, file: Path) -> str:
        """Serve the HTML file at path; return its URL."""
        self.routes[path] = (file.read_bytes(), "text/html; charset=utf-8")
        return self.base + path

    def feed(self, path: str, items: list[str], language: str = "") -> str:
        """Serve an RSS 2.0 feed of the given <item> elements at path; return its URL."""
        lang = f"<language>{language}</language>" if language else ""
        rss = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Site</title>'
               f"<link>{self.base}/</link><description>news</description>{lang}{''.join(items)}"
               "</channel></rss>")
        self.routes[path] = (rss.encode("utf-8"), "application/rss+xml")
        return self.base + path

    def __enter__(self) -> "Site":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def rss_item(link: str, title: str, date: str | None = None, guid: str | None = None) -> str:
    """Return one RSS <item> (date written as given: any form a real feed might use)."""
    when = f"<pubDate>{date}</pubDate>" if date is not None else ""
    ident = f"<guid>{guid}</guid>" if guid else ""
    return f"<item><title>{title}</title><link>{link}</link>{ident}{when}</item>"


class Project:
    """A newsletter made by `newsletter init` in a folder, and the CLI run on its config."""

    def __init__(self, root: Path):
        self.root = root
        self.runner = CliRunner()
        self._saved = [(log, log.handlers[:], log.level, log.propagate)
                       for log in map(logging.getLogger, ("newsletter", "apscheduler"))]
        result = self.runner.invoke(cli, ["init", str(root)], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    def run(self, *args: str, code: int | None = 0) -> Result:
        """Run `newsletter --config CONFIG ARGS...`; check the exit code unless code is None."""
        result = self.runner.invoke(cli, ["--config", str(self.config_file), *args])
        if code is not None:
            assert result.exit_code == code, (result.output, result.exception)
        # Our errors are one line; anything else escaping the command would be a traceback.
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    def issue_file(self, issue_id: str) -> Path:
        return self.root / "issues" / f"{issue_id}.toml"

    def close(self) -> None:
        """Close database connections; give the loggers the CLI rerouted back."""
        dispose_engines()
        for log, handlers, level, propagate in self._saved:
            log.handlers[:], log.level, log.propagate = handlers, level, propagate
