"""RSS/Atom feeds: their entries newest first, the --since cut-off, and the automatic digest's
candidates across several feeds; raises SourceError naming the feed."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import feedparser
from lxml import etree
from lxml import html as lxml_html

from ..config import FeedSource, FetchSection
from ..errors import SourceError
from ..timeutil import as_utc, parse_duration, parse_moment
from .download import download
from .feeddates import DateReader
from .sources import _read_bytes, is_url

if TYPE_CHECKING:
    from .feedmemory import FeedMemory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedEntry:
    """One entry of an RSS/Atom feed."""

    url: str
    title: str = ""
    published: datetime | None = None       # UTC aware
    summary: str = ""                       # plain text
    author: str = ""
    guid: str = ""                          # the entry's id (its link when it has none)


@dataclass
class FeedWindow:
    """A feed read with a cut-off: the entries kept and what was left out, for the report."""

    entries: list[FeedEntry] = field(default_factory=list)   # newest first, undated ones last
    older: int = 0              # dated before the cut-off
    beyond_limit: int = 0       # recent enough, but past the limit
    undated_new: int = 0        # without a usable date, offered for the first time: kept
    undated_seen: int = 0       # without a usable date and offered before: left out


def read_feed(url_or_path: str, cfg: FetchSection, since: datetime | timedelta | None = None,
              limit: int | None = None) -> list[FeedEntry]:
    """Return the feed's entries newest first, published at or after since, at most limit.

    since may be a datetime (naive = UTC) or a timedelta back from now; entries without a date
    are left out when since is given (read_feed_window can keep them once). Raises SourceError
    naming the feed when it cannot be read or is not an RSS/Atom feed.
    """
    return read_feed_window(url_or_path, cfg, since=since, limit=limit).entries


def read_feed_window(url_or_path: str, cfg: FetchSection, since: datetime | timedelta | None = None,
                     limit: int | None = None, is_new: Callable[[str], bool] | None = None) -> FeedWindow:
    """Return the feed's entries newest first, published at or after since, at most limit, with
    counts of what was left out.

    Entries without a usable date come after the dated ones; with since, they are kept only
    when is_new(entry.guid) says the feed never offered them before (the caller remembers them:
    see FeedMemory), else left out. Raises SourceError naming the feed.
    """
    parsed = _parse(url_or_path, cfg)
    base = parsed.get("base", "")
    reader = DateReader(parsed.feed.get("language", "") or "")
    entries = [e for e in (_entry(raw, base, reader) for raw in parsed.entries) if e is not None]
    window = FeedWindow()
    if since is not None:
        cutoff = datetime.now(timezone.utc) - since if isinstance(since, timedelta) else as_utc(since)
        kept = []
        for e in entries:
            if e.published is not None:
                if e.published >= cutoff:
                    kept.append(e)
                else:
                    window.older += 1
            elif is_new is not None and is_new(e.guid):
                kept.append(e)
                window.undated_new += 1
            else:
                window.undated_seen += 1
        entries = kept
    # Newest first; undated entries follow in feed order.
    dated = sorted((e for e in entries if e.published is not None), key=lambda e: e.published,
                   reverse=True)
    entries = dated + [e for e in entries if e.published is None]
    if limit is not None and len(entries) > limit:
        window.beyond_limit = len(entries) - limit
        entries = entries[:limit]
    window.entries = entries
    return window


def _parse(url_or_path: str, cfg: FetchSection) -> feedparser.FeedParserDict:
    """Return the feed parsed by feedparser, with "base" set for relative links; raises SourceError."""
    if is_url(url_or_path):
        got = download(url_or_path, cfg, accept="application/rss+xml,application/atom+xml,"
                                                "application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.5")
        data, base, ctype = got.data, got.url, got.content_type
        if ctype.startswith(("image/", "audio/", "video/", "application/pdf")):
            raise SourceError(f"{url_or_path}: not a feed (content type {ctype})", url_or_path)
    else:
        data, base, ctype = _read_bytes(Path(url_or_path), cfg), "", ""
    headers = {"content-location": base} if base else {}
    if ctype:
        headers["content-type"] = ctype
    # Bytes wrapped in a stream: feedparser must never do its own network or file I/O.
    parsed = feedparser.parse(io.BytesIO(data), response_headers=headers)
    if not parsed.entries:
        if parsed.bozo:
            reason = (str(parsed.get("bozo_exception", "")) or "malformed").splitlines()[0]
            raise SourceError(f"{url_or_path}: not a valid RSS/Atom feed ({reason})", url_or_path)
        if not parsed.version:
            raise SourceError(f"{url_or_path}: not an RSS/Atom feed", url_or_path)
    elif parsed.bozo:
        log.debug("%s: feed is not well-formed (%s); read leniently", url_or_path,
                  parsed.get("bozo_exception"))
    # A saved feed's relative links point into its web site, not into the local folder.
    parsed["base"] = base or parsed.feed.get("link", "")
    return parsed


def _entry(raw: dict, base: str, reader: DateReader) -> FeedEntry | None:
    """Return a FeedEntry for one feedparser entry, or None when it has no http(s) link."""
    link = raw.get("link") or ""
    if not link and str(raw.get("id", "")).startswith(("http://", "https://")):
        link = raw["id"]
    if not link:
        log.debug("feed entry %r has no link; skipped", raw.get("title", ""))
        return None
    published = None
    present = set(raw.keys())      # raw.get("updated") would fall back to "published", with a warning
    for key in ("published", "updated", "created"):
        if key in present or f"{key}_parsed" in present:
            published = reader.read(str(raw.get(key) or "") if key in present else "",
                                    raw.get(f"{key}_parsed") if f"{key}_parsed" in present else None)
            if published is not None:
                break
    url = urljoin(base, link.strip())
    if not is_url(url):
        # Only web links become items: a relative link in a saved feed without a site link, or a
        # file:, data: or javascript: one, would otherwise be read as a local file or worse.
        log.warning("feed entry %r: link %r is not an http(s) URL; skipped", raw.get("title", ""), link)
        return None
    return FeedEntry(url=url, title=_plain(raw.get("title", "")), published=published,
                     summary=_plain(raw.get("summary", "")), author=_plain(raw.get("author", "")),
                     guid=str(raw.get("id") or "").strip() or url)


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
    """A feed entry that may go into an automatic issue (undated entries are published "now")."""

    published: datetime
    order: int              # the feed's place in [sources] feeds, for stable section order
    url: str
    section: str
    feed: str = ""          # the feed's URL, and the entry's GUID when it had no usable date:
    guid: str = ""          # remembered once the entry was taken (FeedMemory)


def feed_candidates(feeds: tuple[FeedSource, ...], cfg: FetchSection, since: datetime | None,
                    memory: "FeedMemory | None" = None) -> tuple[list[FeedCandidate], list[str]]:
    """Return every feed's entries since the cut-off, newest first, and the URLs of feeds that failed.

    Entries without a usable date are candidates once (when memory does not know their GUID yet).
    A feed that cannot be read is logged and listed; it never stops the others.
    """
    found: list[FeedCandidate] = []
    failed: list[str] = []
    now = datetime.now(timezone.utc)
    for order, feed in enumerate(feeds):
        try:
            seen = memory.seen(feed.url) if memory is not None else set()
            is_new = (lambda guid, seen=seen: memory.is_new(seen, guid)) if memory is not None else None
            entries = read_feed_window(feed.url, cfg, since=since, is_new=is_new).entries
        except SourceError as err:
            log.warning("automatic digest: %s", err)
            failed.append(feed.url)
            continue
        found += [FeedCandidate(e.published or now, order, e.url, feed.section, feed.url,
                                "" if e.published else e.guid) for e in entries if e.url]
    found.sort(key=lambda c: c.published, reverse=True)
    return found, failed
