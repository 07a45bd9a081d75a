"""Helpers for the storage, ledger and send tests: database URLs (SQLite, PostgreSQL), configs, issues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from newsletter.render import placeholders as tokens
from newsletter.config import Config
from newsletter.render.saved import save_rendered
from newsletter.models import Rendered
from config_support import build_config, smtp_delivery  # noqa: F401 - smtp_delivery is re-exported

def make_config(root: Path, url: str | None = None, **delivery: Any) -> Config:
    """Return a Config rooted at root on database url (default: SQLite under root/state)."""
    sections: dict[str, Any] = {"delivery": {"backend": "file", **delivery}}
    if url:
        sections["database"] = {"url": url}
    return build_config(root, **sections)


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
