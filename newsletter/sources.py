"""Where articles come from: URLs, local files, stdin and RSS/Atom feeds; raises SourceError."""

from __future__ import annotations

import codecs
import io
import logging
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin

import charset_normalizer
import feedparser
from lxml import etree
from lxml import html as lxml_html

from .config import FetchSection
from .errors import SourceError
from .http_fetch import download
from .models import RawDocument

log = logging.getLogger(__name__)

HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".text"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_HTML_START = re.compile(r"<(?:!doctype\s+html|html|head|body|meta|title|article|main|div|p|h[1-6])\b",
                         re.I)
# Browsers read these labels as windows-1252 (WHATWG Encoding); so must we, or curly quotes break.
_AS_CP1252 = frozenset({"latin_1", "iso8859-1", "ascii", "cp1252"})


def is_url(source: str) -> bool:
    """Return True when source names an http(s) URL."""
    return source.lower().startswith(("http://", "https://"))


def fetch(source: str, cfg: FetchSection, stdin: BinaryIO | None = None) -> RawDocument:
    """Return the raw document named by source (URL, .html/.htm/.txt/.md file, or "-" for stdin).

    Raises SourceError naming the source when it cannot be read, is not HTML or text, is
    binary, or is larger than cfg.max_bytes.
    """
    if source == "-":
        return read_stdin(cfg, stdin)
    if is_url(source):
        return _fetch_url(source, cfg)
    return read_file(Path(source), cfg)


def _fetch_url(url: str, cfg: FetchSection) -> RawDocument:
    """Return the page at url as a RawDocument; raises SourceError for non-HTML/text content."""
    got = download(url, cfg, accept="text/html,application/xhtml+xml;q=0.9,text/plain;q=0.5")
    if got.content_type in _HTML_TYPES:
        kind = "html"
    elif got.content_type in _TEXT_TYPES:
        kind = "text"
    elif not got.content_type:
        kind = ""                                   # no header: look at the bytes instead
    else:
        raise SourceError(f"{url}: not an HTML page (content type {got.content_type})")
    body = decode(got.data, url, declared=got.charset, html=kind != "text")
    return RawDocument(source=url, body=body, kind=kind or sniff_kind(body), url=got.url)


def read_file(path: Path, cfg: FetchSection) -> RawDocument:
    """Return a local .html/.htm/.txt/.md file as a RawDocument; raises SourceError."""
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        kind = "html"
    elif suffix in TEXT_SUFFIXES:
        kind = "text"
    elif not path.exists():
        raise SourceError(f"{path}: file not found")
    else:
        raise SourceError(f"{path}: unknown file type {suffix or '(no extension)'!r} "
                          "(expected .html, .htm, .txt or .md, or an http(s) URL)")
    data = _read_bytes(path, cfg)
    return RawDocument(source=str(path), body=decode(data, str(path), html=kind == "html"), kind=kind)


def read_stdin(cfg: FetchSection, stream: BinaryIO | None = None) -> RawDocument:
    """Return standard input (or stream) as a RawDocument, sniffing HTML from text; raises SourceError."""
    stream = stream if stream is not None else sys.stdin.buffer
    data = stream.read(cfg.max_bytes + 1)
    if len(data) > cfg.max_bytes:
        raise SourceError(f"stdin: input larger than {cfg.max_bytes} bytes (limit fetch.max_bytes)")
    body = decode(data, "stdin", html=True)
    return RawDocument(source="-", body=body, kind=sniff_kind(body))


def _read_bytes(path: Path, cfg: FetchSection) -> bytes:
    """Return the bytes of path, at most cfg.max_bytes; raises SourceError."""
    try:
        with path.open("rb") as f:
            data = f.read(cfg.max_bytes + 1)
    except FileNotFoundError as err:
        raise SourceError(f"{path}: file not found") from err
    except IsADirectoryError as err:
        raise SourceError(f"{path}: is a directory, not a file") from err
    except OSError as err:
        raise SourceError(f"{path}: cannot read: {err.strerror or err}") from err
    if len(data) > cfg.max_bytes:
        raise SourceError(f"{path}: file larger than {cfg.max_bytes} bytes (limit fetch.max_bytes)")
    return data


def sniff_kind(body: str) -> str:
    """Return "html" when body starts like an HTML document or fragment, else "text"."""
    head = body[:2048].lstrip()
    return "html" if head.startswith("<") and _HTML_START.search(head) else "text"


def decode(data: bytes, where: str, declared: str = "", html: bool = True) -> str:
    """Return data decoded by BOM, declared charset, <meta charset>, UTF-8 or detection.

    Raises SourceError naming `where` when the bytes are binary (NUL bytes) or undecodable.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data:
        raise SourceError(f"{where}: binary content (NUL bytes), not an article")
    candidates = [declared]
    if html:
        found = _META_CHARSET.search(data[:8192])
        candidates.append(found.group(1).decode("ascii") if found else "")
    for label in candidates:
        encoding = _codec(label)
        if encoding:
            # A declared charset is authoritative (as in browsers): stray bad bytes become U+FFFD.
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")     # most undeclared pages; much faster than detection
    except UnicodeDecodeError:
        pass
    matches = charset_normalizer.from_bytes(data[:200_000])
    best = matches.best()
    if best is None or best.encoding is None:
        raise SourceError(f"{where}: binary or undecodable content, not an article")
    encoding = best.encoding
    # Western text fits several code pages equally well; on a tie take windows-1252, the web's
    # most common legacy encoding (and browsers' default), not whichever sorted first.
    if any(m.encoding == "cp1252" and (m.chaos, m.coherence) == (best.chaos, best.coherence)
           for m in matches):
        encoding = "cp1252"
    return data.decode(encoding, errors="replace")


def _codec(label: str) -> str:
    """Return the Python codec for a charset label ("" when unknown), latin-1 read as windows-1252."""
    if not label:
        return ""
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return ""
    return "cp1252" if name in _AS_CP1252 else name


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
        cutoff = datetime.now(timezone.utc) - since if isinstance(since, timedelta) else _utc(since)
        entries = [e for e in entries if e.published is not None and e.published >= cutoff]
    # Newest first; undated entries follow in feed order.
    dated = sorted((e for e in entries if e.published is not None), key=lambda e: e.published,
                   reverse=True)
    entries = dated + [e for e in entries if e.published is None]
    return entries[:limit] if limit is not None else entries


def _entry(raw: dict, base: str) -> FeedEntry | None:
    """Return a FeedEntry for one feedparser entry, or None when it has no link."""
    link = raw.get("link") or ""
    if not link and str(raw.get("id", "")).startswith(("http://", "https://")):
        link = raw["id"]
    if not link:
        log.debug("feed entry %r has no link; skipped", raw.get("title", ""))
        return None
    stamp = raw.get("published_parsed") or raw.get("updated_parsed") or raw.get("created_parsed")
    published = datetime(*stamp[:6], tzinfo=timezone.utc) if stamp else None
    return FeedEntry(url=urljoin(base, link), title=_plain(raw.get("title", "")), published=published,
                     summary=_plain(raw.get("summary", "")), author=_plain(raw.get("author", "")))


def _plain(markup: str) -> str:
    """Return markup (HTML or text) as one line of plain text."""
    if "<" in markup:
        try:
            markup = lxml_html.fragment_fromstring(markup, create_parent="div").text_content()
        except (ValueError, etree.ParserError):
            markup = re.sub(r"<[^>]*>", " ", markup)
    return " ".join(markup.split())


def _utc(moment: datetime) -> datetime:
    """Return moment as an aware UTC datetime (naive values are taken as UTC)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


_DURATION = re.compile(r"\s*(\d+)\s*([hdw])\s*\Z", re.I)
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str) -> timedelta | datetime:
    """Return a timedelta for "12h"/"7d"/"2w", or a UTC datetime for an ISO date or date-time.

    Raises SourceError saying what was expected when value is neither.
    """
    found = _DURATION.match(value)
    if found:
        return timedelta(**{_UNITS[found.group(2).lower()]: int(found.group(1))})
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return _utc(datetime.fromisoformat(text))
    except ValueError as err:
        raise SourceError(f"since {value!r}: expected a duration such as 12h, 7d or 2w, or an ISO "
                          "date such as 2025-07-01") from err
