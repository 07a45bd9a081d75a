"""Pre-send checks on a render, a personalised message or the sender's identity: return warning
lines, never raise."""

from __future__ import annotations

import re
from datetime import date
from collections.abc import Iterable
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from ..config import NewsletterSection
from ..models import Issue, Item, Rendered
from .html import iri_to_uri
from .merge import MERGE_PREFIX
from .merge_eval import snippet_fields
from .placeholders import ANY_TOKEN, STANDARD_FIELDS, Template, token

MAX_HTML_BYTES = 100 * 1024         # Gmail clips a message body above about 102 KB
# Jinja and mail-merge syntax that must never reach a reader (also percent-encoded by an inliner).
MARKERS = ("{{", "{%", "{#", "%%", "%7B%7B", "%7B%25")
_MARKER = re.compile("|".join(re.escape(m) for m in MARKERS), re.I)
_TOKEN_START = re.compile(r"NLT[0-9a-f]{16}")       # how every token begins, complete or not
_STYLE = re.compile(r"<style\b.*?</style\s*>", re.S | re.I)
_CONTEXT = 30


def check_rendered(rendered: Rendered, issue: Issue) -> list[str]:
    """Return the pre-send warnings for an issue's render (tokens of rendered.nonce are expected),
    including what the render itself dropped or could not evaluate (rendered.warnings)."""
    warnings = list(rendered.warnings) + _size(rendered.html) + _issue_date(issue.date)
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


def _issue_date(value: str) -> list[str]:
    """Warn about an issue date that is not ISO 8601 (YYYY-MM-DD): the render shows it as written."""
    if not value:
        return []
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        return [f"issue: date {value!r} is not a date (YYYY-MM-DD); it is shown as written"]
    return []


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
    # render_issue drops a link or image that is not http(s): say so.
    if not item.url.strip():
        found.append(f"{label}: no link")
    elif not _absolute(item.url):
        found.append(f"{label}: link {item.url!r} is not an absolute http(s) URL: dropped")
    if item.image:
        if not _absolute(item.image):
            found.append(f"{label}: image {item.image!r} is not an absolute http(s) URL: dropped")
        elif not item.image_alt.strip():
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


def fields_used(rendered: Rendered) -> dict[str, str]:
    """Return {subscriber field: where it is used} for the render's tokens and merge-field snippets."""
    used: dict[str, str] = {}
    for part, body in (("subject", rendered.subject), ("text", rendered.text), ("HTML", rendered.html)):
        try:
            fields = Template(body, rendered.nonce).fields
        except ValueError:      # tokens of another issue: reported by check_rendered
            continue
        for field in sorted(fields):
            if not field.startswith(MERGE_PREFIX):
                used.setdefault(field, f"the {part}")
    for _field, source in rendered.merge_fields:
        for field in snippet_fields(source):
            used.setdefault(field, f"merge field {source!r}")
    return used


def check_fields(rendered: Rendered, known: Iterable[str]) -> list[str]:
    """Return a warning per subscriber field the render uses that is neither standard nor in known
    (the custom fields the subscriber lists have); such a field is empty in every message."""
    known = set(STANDARD_FIELDS) | set(known)
    custom = ", ".join(sorted(set(known) - set(STANDARD_FIELDS))) or "none"
    return [f"unknown merge field subscriber.{field} in {where}: no subscriber has it (standard fields: "
            f"{', '.join(STANDARD_FIELDS)}; fields of the imported lists: {custom})"
            for field, where in fields_used(rendered).items() if field not in known]


# RFC 2606 / RFC 6761 names that can never be a real sender or web address.
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_TLDS = ("example", "invalid", "test", "localhost")


def _placeholder_domain(host: str) -> bool:
    """Return True when host is (under) a reserved example domain or TLD."""
    host = host.lower().rstrip(".")
    return (any(host == d or host.endswith("." + d) for d in _RESERVED_DOMAINS)
            or host.rpartition(".")[2] in _RESERVED_TLDS)


def check_identity(newsletter: NewsletterSection, where: str = "config.toml") -> list[str]:
    """Return warnings for an identity that is not the sender's own: From, Reply-To or base_url on
    an example domain (RFC 2606), no postal address (CAN-SPAM and bulk-sender rules want one in
    every message), or a base_url that is not https (mail providers want the one-click
    unsubscribe URL of RFC 8058 on https)."""
    found = []
    for key, value in (("sender", newsletter.sender), ("reply_to", newsletter.reply_to)):
        domain = value.rpartition("@")[2].strip(" >")
        if value and _placeholder_domain(domain):
            found.append(f"{where}: newsletter.{key} {value!r} is a placeholder address ({domain}): "
                         "set your own (`newsletter init` asks for it)")
    base = urlsplit(newsletter.base_url.strip())
    if base.hostname and _placeholder_domain(base.hostname):
        found.append(f"{where}: newsletter.base_url {newsletter.base_url!r} is a placeholder "
                     f"({base.hostname}): set the https address where `newsletter serve` answers")
    if base.scheme.lower() != "https":
        found.append(f"{where}: newsletter.base_url {newsletter.base_url!r} is not https: "
                     "one-click unsubscribe links (RFC 8058) need an https address")
    if not newsletter.postal_address.strip():
        found.append(f"{where}: newsletter.postal_address is empty: bulk-mail rules (CAN-SPAM, "
                     "Gmail and Yahoo sender rules) want a postal address in every message")
    return found
