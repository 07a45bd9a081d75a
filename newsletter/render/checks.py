"""Pre-send checks on a render or a personalised message: return warning lines, never raise."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from ..models import Issue, Item, Rendered
from .html import iri_to_uri
from .placeholders import ANY_TOKEN, token

MAX_HTML_BYTES = 100 * 1024         # Gmail clips a message body above about 102 KB
# Jinja and mail-merge syntax that must never reach a reader (also percent-encoded by an inliner).
MARKERS = ("{{", "{%", "{#", "%%", "%7B%7B", "%7B%25")
_MARKER = re.compile("|".join(re.escape(m) for m in MARKERS), re.I)
_TOKEN_START = re.compile(r"NLT[0-9a-f]{16}")       # how every token begins, complete or not
_STYLE = re.compile(r"<style\b.*?</style\s*>", re.S | re.I)
_CONTEXT = 30


def check_rendered(rendered: Rendered, issue: Issue) -> list[str]:
    """Return the pre-send warnings for an issue's render (tokens of rendered.nonce are expected)."""
    warnings = _size(rendered.html)
    for number, item in enumerate(issue.items, start=1):
        warnings += _item(number, item)
    doc = _parse(rendered.html)
    if doc is None:
        return warnings + ["HTML: cannot be parsed"]
    # Item links and images were reported per item above; don't report them again.
    # (render_issue writes them in ASCII form, so compare that form)
    reported = {iri_to_uri(url) for item in issue.items for url in (item.url, item.image) if url}
    warnings += _links(doc, rendered.nonce, reported)
    warnings += _images(doc)
    warnings += _stylesheets(doc)
    unsubscribe = token(rendered.nonce, "unsubscribe_url")
    needed = "{{ subscriber.unsubscribe_url }}"
    if not any(href.strip().startswith(unsubscribe) for href in doc.xpath("//a/@href")):
        warnings.append(f"HTML: no unsubscribe link (the template must link {needed})")
    if unsubscribe not in rendered.text:
        warnings.append(f"text: no unsubscribe URL (the template must show {needed})")
    for part, body in (("HTML", _STYLE.sub("", rendered.html)), ("text", rendered.text)):
        warnings += _markers(part, body)
        warnings += _tokens(part, body, rendered.nonce)
    return warnings


def check_personalised(html: str, text: str) -> list[str]:
    """Return warnings for a filled message: over 100 KB, or any token or marker left in a part."""
    warnings = _size(html)
    for part, body in (("HTML", _STYLE.sub("", html)), ("text", text)):
        warnings += _markers(part, body)
        warnings += [f"{part}: unfilled token {m.group(0)!r} near {_near(body, m.start())!r}"
                     for m in ANY_TOKEN.finditer(body)]
        whole = {m.start() for m in ANY_TOKEN.finditer(body)}
        warnings += [f"{part}: broken token near {_near(body, m.start())!r}"
                     for m in _TOKEN_START.finditer(body) if m.start() not in whole]
    return warnings


def _size(html: str) -> list[str]:
    """Return a warning when the HTML is over the size Gmail shows without clipping."""
    size = len(html.encode("utf-8"))
    if size <= MAX_HTML_BYTES:
        return []
    return [f"HTML is {size / 1024:.0f} KB, over {MAX_HTML_BYTES // 1024} KB: Gmail clips messages "
            "above 102 KB (fewer items or shorter summaries)"]


def _item(number: int, item: Item) -> list[str]:
    """Return the warnings for one issue item: summary, link, image and its alt text."""
    label = f"item {number} {item.title.strip() or '(untitled)'!r}"
    found = []
    if not item.summary.strip():
        found.append(f"{label}: no summary")
    if not item.url.strip():
        found.append(f"{label}: no link")
    elif not _absolute(item.url):
        found.append(f"{label}: link {item.url!r} is not an absolute http(s) URL")
    if item.image:
        if not _absolute(item.image):
            found.append(f"{label}: image {item.image!r} is not an absolute http(s) URL")
        if not item.image_alt.strip():
            found.append(f"{label}: image {item.image!r} has no alt text")
    return found


def _links(doc: etree._Element, nonce: str, reported: set[str]) -> list[str]:
    """Return a warning per distinct link or image source in the HTML that is not absolute."""
    bad: dict[str, int] = {}
    for url in doc.xpath("//a/@href | //img/@src"):
        url = url.strip()
        if url in reported or _absolute(url) or url.startswith(("mailto:", "tel:")):
            continue
        # A per-subscriber value (unsubscribe_url, view_url …) is filled in at send time.
        match = ANY_TOKEN.match(url)
        if match and match.group(0)[3:19] == nonce:
            continue
        bad[url] = bad.get(url, 0) + 1
    return [f"HTML: link {url!r} is not an absolute http(s) URL" + (f" ({n} times)" if n > 1 else "")
            for url, n in bad.items()]


def _images(doc: etree._Element) -> list[str]:
    """Return a warning per image that has no alt attribute at all (alt="" marks decoration)."""
    return [f"HTML: image {img.get('src', '')!r} has no alt attribute"
            for img in doc.iter("img") if img.get("alt") is None]


def _stylesheets(doc: etree._Element) -> list[str]:
    """Return a warning per linked stylesheet: mail clients drop them and they leak the open."""
    return [f"HTML: external stylesheet {link.get('href', '')!r} (inline the CSS instead)"
            for link in doc.iter("link") if "stylesheet" in (link.get("rel") or "").lower()]


def _markers(part: str, body: str) -> list[str]:
    """Return a warning per template marker left in body (part names "HTML" or "text")."""
    first: dict[str, int] = {}
    for match in _MARKER.finditer(body):
        first.setdefault(match.group(0).upper(), match.start())
    return [f"{part}: leftover template marker {marker!r} near {_near(body, at)!r}"
            for marker, at in first.items()]


def _tokens(part: str, body: str, nonce: str) -> list[str]:
    """Return warnings for tokens of another issue, malformed tokens and broken token fragments."""
    found = []
    whole = set()
    for match in ANY_TOKEN.finditer(body):
        whole.add(match.start())
        text = match.group(0)
        other, field = text[3:19], text[20:-4]
        if other != nonce:
            found.append(f"{part}: token of another issue {text!r} (this render's nonce is {nonce})")
            continue
        try:
            token(nonce, field)
        except ValueError:
            found.append(f"{part}: malformed token {text!r} near {_near(body, match.start())!r}")
    found += [f"{part}: broken token near {_near(body, m.start())!r}"
              for m in _TOKEN_START.finditer(body) if m.start() not in whole]
    return found


def _absolute(url: str) -> bool:
    """Return True when url is an absolute http(s) URL with a host."""
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _parse(html: str) -> etree._Element | None:
    """Return the parsed HTML document, or None when lxml cannot make anything of it."""
    try:
        return lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None


def _near(body: str, at: int) -> str:
    """Return the text around position at, on one line, for a warning message."""
    return " ".join(body[max(0, at - _CONTEXT):at + _CONTEXT].split())
