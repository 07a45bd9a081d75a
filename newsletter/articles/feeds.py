"""RSS/Atom feeds: their entries newest first, the --since cut-off, and the automatic digest's
candidates across several feeds; raises SourceError naming the feed."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urljoin

import feedparser
from lxml import etree
from lxml import html as lxml_html

from ..config import FeedSource, FetchSection
from ..errors import SourceError
from ..timeutil import as_utc, parse_duration, parse_moment
from .download import download
from .sources import _read_bytes, is_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedEntry:
    """One entry of an RSS/Atom feed."""

    url: str
    title: str = ""
    published: datetime | None = None       # UTC aware
    summary: str = ""                       # plain text
    author: str = ""


def read_feed(url_or_path: str, cfg: FetchSection, since: datetime | timedelta | None = None,
              limit: int | None = None) -> list[FeedEntry]:
    """Return the feed's entries newest first, published at or after since, at most limit.

    since may be a datetime (naive = UTC) or a timedelta back from now; entries without a date
    are left out when since is given. Raises SourceError naming the feed when it cannot be read
    or is not an RSS/Atom feed.
    """
    if is_url(url_or_path):
        got = download(url_or_path, cfg, accept="application/rss+xml,application/atom+xml,"
                                                "application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.5")
        data, base, ctype = got.data, got.url, got.content_type
        if ctype.startswith(("image/", "audio/", "video/", "application/pdf")):
            raise SourceError(f"{url_or_path}: not a feed (content type {ctype})")
    else:
        data, base, ctype = _read_bytes(Path(url_or_path), cfg), "", ""
    headers = {"content-location": base} if base else {}
    if ctype:
        headers["content-type"] = ctype
    # Bytes wrapped in a stream: feedparser must never do its own network or file I/O.
    parsed = feedparser.parse(io.BytesIO(data), response_headers=headers)
    # A saved feed's relative links point into its web site, not into the local folder.
    base = base or parsed.feed.get("link", "")
    if not parsed.entries:
        if parsed.bozo:
            reason = (str(parsed.get("bozo_exception", "")) or "malformed").splitlines()[0]
            raise SourceError(f"{url_or_path}: not a valid RSS/Atom feed ({reason})")
        if not parsed.version:
            raise SourceError(f"{url_or_path}: not an RSS/Atom feed")
    elif parsed.bozo:
        log.debug("%s: feed is not well-formed (%s); read leniently", url_or_path,
                  parsed.get("bozo_exception"))
    entries = [e for e in (_entry(raw, base) for raw in parsed.entries) if e is not None]
    if since is not None:
        cutoff = datetime.now(timezone.utc) - since if isinstance(since, timedelta) else as_utc(since)
        entries = [e for e in entries if e.published is not None and e.published >= cutoff]
    # Newest first; undated entries follow in feed order.
    dated = sorted((e for e in entries if e.published is not None), key=lambda e: e.published,
                   reverse=True)
    entries = dated + [e for e in entries if e.published is None]
    return entries[:limit] if limit is not None else entries


def _entry(raw: dict, base: str) -> FeedEntry | None:
    """Return a FeedEntry for one feedparser entry, or None when it has no http(s) link."""
    link = raw.get("link") or ""
    if not link and str(raw.get("id", "")).startswith(("http://", "https://")):
        link = raw["id"]
    if not link:
        log.debug("feed entry %r has no link; skipped", raw.get("title", ""))
        return None
    url = urljoin(base, link.strip())
    if not is_url(url):
        # Only web links become items: a relative link in a saved feed without a site link, or a
        # file:, data: or javascript: one, would otherwise be read as a local file or worse.
        log.warning("feed entry %r: link %r is not an http(s) URL; skipped", raw.get("title", ""), link)
        return None
    stamp = raw.get("published_parsed") or raw.get("updated_parsed") or raw.get("created_parsed")
    published = datetime(*stamp[:6], tzinfo=timezone.utc) if stamp else None
    return FeedEntry(url=url, title=_plain(raw.get("title", "")), published=published,
                     summary=_plain(raw.get("summary", "")), author=_plain(raw.get("author", "")))


def _plain(markup: str) -> str:
    """Return markup (HTML or text) as one line of plain text."""
    if "<" in markup:
        try:
            markup = lxml_html.fragment_fromstring(markup, create_parent="div").text_content()
        except (ValueError, etree.ParserError):
            markup = re.sub(r"<[^>]*>", " ", markup)
    return " ".join(markup.split())


def parse_since(value: str) -> timedelta | datetime:
    """Return a timedelta for "12h"/"7d"/"2w", or a UTC datetime for an ISO date or date-time.

    Raises SourceError saying what was expected when value is neither.
    """
    try:
        return parse_duration(value)
    except ValueError:
        pass
    try:
        return parse_moment(value)
    except ValueError as err:
        raise SourceError(f"since {value!r}: expected a duration such as 12h, 7d or 2w, or an ISO "
                          "date such as 2025-07-01") from err


@dataclass(frozen=True)
class FeedCandidate:
    """A feed entry that may go into an automatic issue."""

    published: datetime
    order: int              # the feed's place in [sources] feeds, for stable section order
    url: str
    section: str


def feed_candidates(feeds: tuple[FeedSource, ...], cfg: FetchSection,
                    since: datetime | None) -> tuple[list[FeedCandidate], list[str]]:
    """Return every feed's entries since the cut-off, newest first, and the URLs of feeds that failed.

    A feed that cannot be read is logged and listed; it never stops the others.
    """
    found: list[FeedCandidate] = []
    failed: list[str] = []
    for order, feed in enumerate(feeds):
        try:
            entries = read_feed(feed.url, cfg, since=since)
        except SourceError as err:
            log.warning("automatic digest: %s", err)
            failed.append(feed.url)
            continue
        found += [FeedCandidate(e.published or datetime.min.replace(tzinfo=timezone.utc), order, e.url,
                                feed.section) for e in entries if e.url]
    found.sort(key=lambda c: c.published, reverse=True)
    return found, failed
