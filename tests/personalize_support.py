"""Helpers for message tests: a rendered issue holding per-subscriber tokens, and configs."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from newsletter.config import Config
from newsletter.models import Rendered
from config_support import NEWSLETTER, build_config
from newsletter.render.placeholders import new_nonce, token

SECRET = "personalize-tests-key-0123456789abcdef"
BASE_URL = "https://news.example.org"


def rendered_issue(issue_id: str = "2026-w48", *, items: int = 3, subject: str = "Weekly: the news",
                   nonce: str | None = None) -> Rendered:
    """Return a Rendered like render.py makes: email-style HTML and text with tokens of one nonce."""
    nonce = nonce or new_nonce()
    t = lambda field: token(nonce, field)   # noqa: E731
    rows, lines = [], []
    for i in range(items):
        title = f"Story {i}: caf\u00e9s, \u201cquotes\u201d & <angles>"
        summary = ("A summary sentence that is long enough to wrap in a quoted-printable line. " * 3).strip()
        rows.append(
            f'<tr><td style="padding:16px 24px;font-family:Helvetica,Arial,sans-serif;font-size:16px;'
            f'line-height:1.5;color:#1f2937"><a href="https://example.com/story-{i}?a=1&amp;b=2" '
            f'style="color:#1a56db;text-decoration:none;font-weight:bold">{html.escape(title)}</a>'
            f'<p style="margin:8px 0 0">{html.escape(summary)}</p></td></tr>')
        lines += [title, summary, f"https://example.com/story-{i}?a=1&b=2", ""]
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><title>Weekly</title></head>'
        '<body style="margin:0;padding:0;background:#f3f4f6">'
        f'<p style="font-size:12px"><a href="{t("view_url")}">View this issue online</a></p>'
        f'<table role="presentation" width="100%"><tr><td><p>Hello {t("name")},</p></td></tr>'
        + "\n".join(rows) +
        f'<tr><td><p>Your company: {t("company")}</p>'
        f'<p style="font-size:12px;color:#6b7280">You receive this because {t("email")} subscribed. '
        f'<a href="{t("unsubscribe_url")}" style="color:#6b7280">Unsubscribe</a></p></td></tr>'
        '</table></body></html>\n')
    text = (f"Hello {t('name')},\n\n" + "\n".join(lines) + f"Your company: {t('company')}\n" +
            f"\nView online: {t('view_url')}\n\n-- \nYou receive this because {t('email')} subscribed.\n"
            f"Unsubscribe: {t('unsubscribe_url')}\n")
    return Rendered(issue_id=issue_id, subject=subject, preheader="The news this week",
                    html=body, text=text, nonce=nonce)


def make_config(root: Path, **sections: Any) -> Config:
    """Return a Config for tests under root; sections are merged over a sensible newsletter table."""
    newsletter = {"base_url": BASE_URL, "reply_to": "Editor <editor@example.org>", **sections.pop("newsletter", {})}
    signing = {"secret_env": "NEWSLETTER_SECRET_KEY", **sections.pop("signing", {})}
    return build_config(root, newsletter={**NEWSLETTER, **newsletter}, signing=signing, **sections)