"""An article's own address: the page's canonical link, its og:url, or the "saved from" note a
browser writes into a saved page; returns (link, where it came from)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html

from ..models import Article, RawDocument
from .duplicates import without_tracking

# Chrome, Edge and Internet Explorer ("Save as… Webpage") write <!-- saved from url=(0042)URL -->
# at the top of the file; the SingleFile extension writes "url: URL" in its opening comment.
_SAVED_FROM = re.compile(r"<!--\s*saved from url=\(\d+\)\s*(\S+?)\s*-->", re.I)
_SINGLEFILE = re.compile(r"<!--[^>]{0,200}?Page saved with SingleFile\s+url:\s*(\S+)", re.I | re.S)
_HEAD_END = re.compile(r"</head\s*>", re.I)
_HEAD_CHARS = 200_000          # where to stop looking when a page has no </head>


@dataclass(frozen=True)
class PageLinks:
    """The addresses an HTML page gives for itself, as written (possibly relative)."""

    canonical: str = ""
    og_url: str = ""
    saved_from: str = ""


def page_links(html: str) -> PageLinks:
    """Return the canonical link, og:url and "saved from" address declared in html's head."""
    head = html[:_HEAD_CHARS]
    end = _HEAD_END.search(head)
    if end:
        head = head[:end.start()] + "</head><body></body></html>"
    saved = _SAVED_FROM.search(head) or _SINGLEFILE.search(head)
    canonical = og_url = ""
    try:
        tree = lxml_html.document_fromstring(head) if head.strip() else None
    except (etree.ParserError, ValueError):
        tree = None
    if tree is not None:
        for link in tree.iter("link"):
            if "canonical" in (link.get("rel") or "").lower().split() and link.get("href", "").strip():
                canonical = link.get("href").strip()
                break
        for meta in tree.iter("meta"):
            if (meta.get("property") or meta.get("name") or "").strip().lower() == "og:url":
                og_url = (meta.get("content") or "").strip()
                if og_url:
                    break
    return PageLinks(canonical=canonical, og_url=og_url, saved_from=saved.group(1) if saved else "")


def _usable(candidate: str, base: str) -> str:
    """Return candidate made absolute against base when it is an http(s) address of this page.

    A canonical link or og:url that points at the site's home page from an article (a common
    template mistake) is not the article's address: "" then.
    """
    if not candidate:
        return ""
    url = urljoin(base, candidate) if base else candidate
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        return ""
    if base and parts.path in ("", "/") and not parts.query and urlsplit(base).path not in ("", "/"):
        return ""
    return url


def article_link(doc: RawDocument, article: Article) -> tuple[str, str]:
    """Return (the article's link, where it came from) for an extracted document.

    HTML: the canonical link, else og:url, else the browser's "saved from" note, else the address
    it was fetched from (without tracking parameters). Text: its front matter's url, else the
    address it was fetched from.
    Returns ("", "") when nothing names one (a saved file without any of these).
    """
    if doc.kind == "html":
        found = page_links(doc.body)
        base = doc.url or ""
        for value, where in ((found.canonical, "canonical link"), (found.og_url, "og:url"),
                             (found.saved_from, '"saved from" note')):
            link = _usable(value, base)
            if link:
                return link, where
    if article.url and article.url != doc.url:
        return article.url, "front matter" if doc.kind == "text" else "page metadata"
    if doc.url:
        return without_tracking(doc.url), "address"
    return "", ""


def web_image(address: str) -> str:
    """Return the image address unless it names another scheme than http(s) (javascript:, data:,
    file:): mail clients and the editor's pages show web images only. A relative one stays, for
    the pre-send check to name."""
    scheme = urlsplit(address).scheme.lower()
    return "" if scheme and scheme not in ("http", "https") else address
