"""The public archive: sent issues as they were mailed, with nobody's personal values, and a feed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, abort
from flask.typing import ResponseReturnValue

from ..db import as_utc
from ..errors import IssueError, NewsletterError
from ..issues import archive_url, is_issue_id
from ..render.merge_eval import MergeEvaluator
from ..render.placeholders import html_template
from ..render.saved import load_meta, load_rendered
from .context import Services, page, services
from .security import ARCHIVE_CSP
from .validate import language

log = logging.getLogger(__name__)

bp = Blueprint("archive", __name__)

FEED_ENTRIES = 50
ATOM = "http://www.w3.org/2005/Atom"
XML_NS = "http://www.w3.org/XML/1998/namespace"
_PUBLIC_CACHE = "public, max-age=300"   # the archive is the same for everyone; five minutes is fresh enough


@dataclass(frozen=True)
class SentIssue:
    """One archived issue: its id, when it was sent, and its subject and preheader."""

    id: str
    sent_at: datetime
    subject: str
    preheader: str


def _sent_dates(s: Services) -> dict[str, datetime]:
    """Return {issue id: first send date} for every issue the ledger records as sent."""
    dates: dict[str, datetime] = {}
    for issue_id, when in s.ledger.sent_issues():
        when = as_utc(when) or datetime.fromtimestamp(0, timezone.utc)
        # An issue sent to several lists appears once, dated by its first send.
        if issue_id not in dates or when < dates[issue_id]:
            dates[issue_id] = when
    return dates


def _meta(s: Services, issue_id: str) -> tuple[str, str]:
    """Return (subject, preheader) of a saved render without reading its bodies; falls back to the id."""
    try:
        meta = load_meta(s.config.paths.state, issue_id)
        return meta["subject"], str(meta.get("preheader", ""))
    except IssueError as err:
        log.warning("archive: no readable render metadata for issue %r: %s", issue_id, err)
        return issue_id, ""


def sent_issues(s: Services) -> list[SentIssue]:
    """Return the sent issues, newest first (those with unsafe ids are left out and logged)."""
    out = []
    for issue_id, when in _sent_dates(s).items():
        if not is_issue_id(issue_id):
            log.warning("archive: skipping issue with an unsafe id %r", issue_id)
            continue
        subject, preheader = _meta(s, issue_id)
        out.append(SentIssue(issue_id, when, subject, preheader))
    out.sort(key=lambda i: (i.sent_at, i.id), reverse=True)
    return out


@bp.get("/archive/")
def index() -> ResponseReturnValue:
    """Return the list of sent issues."""
    resp = page("archive.html", issues=sent_issues(services()))
    resp.headers["Cache-Control"] = _PUBLIC_CACHE
    return resp


@bp.get("/archive/<issue_id>")
def issue(issue_id: str) -> ResponseReturnValue:
    """Return one sent issue's HTML with neutral values in place of every personal token."""
    s = services()
    if not is_issue_id(issue_id) or issue_id not in _sent_dates(s):
        abort(404, description="There is no sent issue with this name in the archive.")
    try:
        rendered = load_rendered(s.config.paths.state, issue_id)
        neutral = {
            # Neutral values: nobody's name, address or token. Fields not listed (custom CSV
            # columns) become empty strings; merge fields show their fallbacks ("Hi there").
            "name": "", "email": "",
            "unsubscribe_url": f"{s.base_url}/subscribe",
            "view_url": archive_url(s.base_url, issue_id),
        }
        neutral.update(MergeEvaluator(rendered.merge_fields)({}))
        body = html_template(rendered.html, rendered.nonce).fill(neutral)
    except (NewsletterError, ValueError) as err:
        log.error("archive: cannot show issue %r: %s", issue_id, err)
        abort(404, description="This issue's archived copy is missing.")
    resp = Response(body, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = ARCHIVE_CSP
    resp.headers["Cache-Control"] = _PUBLIC_CACHE
    return resp


def _rfc3339(when: datetime) -> str:
    """Return when as an RFC 3339 UTC timestamp."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def atom_feed(s: Services, sent: list[SentIssue]) -> bytes:
    """Return an Atom feed (RFC 4287) of the given issues as UTF-8 XML."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    nl = s.config.newsletter
    feed = ET.Element(f"{{{ATOM}}}feed", {f"{{{XML_NS}}}lang": language(nl.language)})
    sub(feed, "title", nl.name)
    sub(feed, "id", f"{s.base_url}/archive/")
    newest = sent[0].sent_at if sent else datetime.fromtimestamp(0, timezone.utc)
    sub(feed, "updated", _rfc3339(newest))
    sub(feed, "link", href=f"{s.base_url}/archive/feed.xml", rel="self", type="application/atom+xml")
    sub(feed, "link", href=f"{s.base_url}/archive/", rel="alternate", type="text/html")
    author = sub(feed, "author")
    sub(author, "name", nl.name)
    for item in sent[:FEED_ENTRIES]:
        entry = sub(feed, "entry")
        url = archive_url(s.base_url, item.id)
        sub(entry, "title", item.subject)
        sub(entry, "id", url)
        sub(entry, "updated", _rfc3339(item.sent_at))
        sub(entry, "published", _rfc3339(item.sent_at))
        sub(entry, "link", href=url, rel="alternate", type="text/html")
        if item.preheader:
            sub(entry, "summary", item.preheader)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


@bp.get("/archive/feed.xml")
def feed() -> ResponseReturnValue:
    """Return the Atom feed of the newest sent issues."""
    s = services()
    resp = Response(atom_feed(s, sent_issues(s)), mimetype="application/atom+xml")
    resp.headers["Cache-Control"] = _PUBLIC_CACHE
    return resp
