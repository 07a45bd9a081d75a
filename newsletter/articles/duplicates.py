"""URL identity, and which links an issue may not take again: those already in it, those the editor
removed from it, and those in issues already sent."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import issues
from ..config import Config
from ..db import get_engine
from ..errors import IssueError
from ..ledger import Ledger


def url_key(url: str) -> str:
    """Return the identity of a link: two links with the same key are the same story.

    courlan normalises it (lower-case host, default port and fragment dropped, query sorted) and
    removes tracking parameters (utm_*, fbclid, gclid, mc_cid, ...); a trailing slash and the
    http/https difference do not count. A page's own canonical link is found before this (see
    articles.links): the key of a link without tracking parameters is the link itself.
    Returns "" for an empty url; anything that is not an http(s) URL is its own key.
    """
    from courlan.clean import normalize_url     # 60 ms to import: only when links are compared

    url = url.strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            return url.split("#", 1)[0]
        key = normalize_url(urlunsplit(parts._replace(path=parts.path or "/", fragment="")),
                            trailing_slash=False)
    except ValueError:                      # a malformed port or host: compare it as written
        return url.split("#", 1)[0]
    key = key.split("#", 1)[0]
    if key.endswith("/") and "?" not in key and key.count("/") > 3:
        key = key[:-1]
    return "https" + key[key.index(":"):]


def without_tracking(url: str) -> str:
    """Return url without its tracking parameters (utm_*, fbclid, gclid, mc_cid... as courlan
    knows them), otherwise as written; the link an item keeps when its page names none."""
    from courlan.clean import clean_query

    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query or parts.scheme.lower() not in ("http", "https"):
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if clean_query(urlencode({k: "x"}))]   # "" = a tracker's name
    if len(kept) == len(pairs):
        return url                          # nothing to remove: keep it as written
    return urlunsplit(parts._replace(query=urlencode(kept)))


def sent_urls(config: Config, exclude: str) -> set[str]:
    """Return the url_keys of every item in issues that were already sent (besides exclude)."""
    keys: set[str] = set()
    for issue_id, _when in Ledger(get_engine(config)).sent_issues():
        if issue_id == exclude:
            continue
        try:
            sent = issues.load_issue(config.paths.issues, issue_id)
        except IssueError:
            continue        # a sent issue whose file was removed blocks nothing
        keys.update(url_key(i.url) for i in sent.items if i.url)
    return keys


class DuplicateGuard:
    """Knows the links already in this issue, those the editor removed from it and those in sent
    issues; says why a link must be skipped. force lets everything through."""

    def __init__(self, config: Config, issue_id: str, force: bool, *, removed: Iterable[str] = (),
                 aliases: Iterable[str] = ()):
        """removed: the issue's tombstones; aliases: other addresses of links in the issue (the
        sources they were added from), so a feed's variant is known before it is fetched."""
        current = issues.load_issue(config.paths.issues, issue_id)
        self.in_issue = {url_key(i.url) for i in current.items if i.url}
        self.in_issue.update(url_key(a) for a in aliases if a)
        self.removed = {url_key(u) for u in removed if u}
        self.in_sent = set() if force else sent_urls(config, issue_id)
        self.force = force

    def reason(self, *urls: str | None) -> str | None:
        """Return why any of urls (the addresses of one story) is a duplicate, or None."""
        if self.force:
            return None
        keys = {url_key(u) for u in urls if u}
        keys.discard("")
        if keys & self.in_issue:
            return "already in this issue"
        if keys & self.removed:
            return "removed from this issue by you"
        if keys & self.in_sent:
            return "already in an issue that was sent"
        return None

    def remember(self, *urls: str | None) -> None:
        """Count urls (the addresses of one story) as part of the issue from now on."""
        self.in_issue.update(url_key(u) for u in urls if u)
        self.in_issue.discard("")
