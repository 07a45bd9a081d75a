"""Raw documents → Article: trafilatura for HTML, general rules for plain text; raises SourceError."""

from __future__ import annotations

import dataclasses

import re
from urllib.parse import urljoin

import trafilatura
from lxml.html import HtmlElement

from .boilerplate import drop_noise, ends_sentence, strip_trailing, words
from ..errors import SourceError
from .frontmatter import split_front_matter
from ..models import Article, RawDocument
from .plaintext import parse_text

# favor_precision scores best on the dev set (token F1 0.973 vs 0.962 by default); tables come out
# as Markdown pipes that no blurb can use; the fast date search keeps a page near 20 ms.
_TRAFILATURA = dict(include_comments=False, favor_precision=True, include_tables=False,
                    with_metadata=True,
                    date_extraction_params={"extensive_search": False, "original_date": True})
_DOCUMENT = re.compile(r"<(?:html|body)\b", re.I)
_NEVER_PRUNED = frozenset({"html", "body", "main", "article"})
_BOILERPLATE_NAMES = re.compile(
    r"(?:^|[\s_-])(?:share|sharing|social|newsletter|promo|related|recommend|subscri|sign-?up"
    r"|advert|ads?(?=$|[\s_-])|sponsor|outbrain|taboola|more-?from|most-?read|popular|trending"
    r"|comments?(?=$|[\s_-])|author-?(?:card|bio)|tags?(?=$|[\s_-])|topics(?=$|[\s_-])|breadcrumb"
    r"|caption|credit)",
    re.I)
_GRAVE_APOSTROPHE = re.compile(r"(?<=\w)`(?=\w)")
_SPACES = re.compile(r"[ \t\u00a0\u2009\u202f]+")


def extract(doc: RawDocument) -> Article:
    """Return the article in doc; raises SourceError when it holds no article text."""
    article = _from_html(doc) if doc.kind == "html" else _from_text(doc)
    if not article.text.strip():
        raise SourceError(f"no article text found in {doc.source}")
    return article


def html_to_text(html: str, url: str | None = None) -> str:
    """Return the article text of an HTML page, paragraphs separated by blank lines ("" if none)."""
    doc = RawDocument(source=url or "<html>", body=html, kind="html", url=url)
    return _from_html(doc).text


def fix_typography(text: str) -> str:
    """Return text with grave accents used as apostrophes made real ones and odd spaces unified."""
    return _SPACES.sub(" ", _GRAVE_APOSTROPHE.sub("’", text))


def _from_text(doc: RawDocument) -> Article:
    """Return the Article of a plain-text or Markdown document."""
    meta, body = split_front_matter(doc.body.replace("\r\n", "\n").replace("\r", "\n"))
    parsed = parse_text(fix_typography(body))
    found = Article(text="\n\n".join(parsed.paragraphs), title=parsed.title, url=doc.url,
                    author=parsed.author, date=parsed.date)
    return dataclasses.replace(found, **meta)


def _from_html(doc: RawDocument) -> Article:
    """Return the Article of an HTML page (text empty when trafilatura finds none)."""
    html = doc.body
    if not _DOCUMENT.search(html[:4096]):
        html = f"<html><body>{html}</body></html>"     # trafilatura rejects bare fragments
    try:
        tree = trafilatura.load_html(html)
        if tree is None:
            return Article(text="", url=doc.url)
        prune_boilerplate(tree)
        found = trafilatura.bare_extraction(tree, url=doc.url, **_TRAFILATURA)
    except (ValueError, TypeError, AttributeError, LookupError) as err:
        # trafilatura and lxml raise assorted errors on damaged markup; all mean "unreadable".
        raise SourceError(f"{doc.source}: cannot parse the HTML ({err})") from err
    if found is None:
        return Article(text="", url=doc.url)
    title = _clean_title(found.title or "", found.sitename or "")
    base = doc.url or found.url or ""
    return Article(
        text="\n\n".join(_html_paragraphs(found.text or "", title)),
        title=title,
        url=base or None,
        author=(found.author or "").replace("; ", ", "),
        date=found.date or "",
        site_name=found.sitename or "",
        image=urljoin(base, found.image) if base and found.image else (found.image or ""),
        description=" ".join((found.description or "").split()),
    )


def prune_boilerplate(tree: HtmlElement) -> None:
    """Remove share bars, promos, related links, tag lists and the like from tree, in place.

    trafilatura spots these by lower-case class names; CSS-module and camel-case names
    ("ShareBar_bar__w4", "Newsletter_inline") slip past it, so they are matched here without
    regard to case. A container holding the headline or half the page's paragraphs is kept,
    whatever its class says ("post has-share-buttons").
    """
    paragraphs = max(1, len(tree.findall(".//p")))
    doomed = []
    for element in tree.iter("*"):
        if not isinstance(element.tag, str) or element.tag in _NEVER_PRUNED:
            continue
        if element.tag == "figcaption":
            doomed.append(element)
            continue
        names = f"{element.get('class') or ''} {element.get('id') or ''}"
        if names != " " and _BOILERPLATE_NAMES.search(names) and element.find(".//h1") is None \
                and len(element.findall(".//p")) * 2 < paragraphs:
            doomed.append(element)
    for element in doomed:
        element.drop_tree()


def _html_paragraphs(text: str, title: str) -> list[str]:
    """Return the paragraphs of trafilatura's text without the headline and boilerplate lines."""
    paragraphs = [line.strip() for line in fix_typography(text).split("\n")]
    paragraphs = [p for p in paragraphs if p]
    # The <h1> inside the article repeats the title (after a kicker or a dek at most).
    paragraphs = [p for i, p in enumerate(paragraphs) if i > 2 or p.casefold() != title.casefold()]
    paragraphs = strip_trailing(drop_noise(paragraphs))
    # A few words and no sentence (a lone menu item, "Home") is what is left of a page with no story.
    if sum(words(p) for p in paragraphs) < 25 and not any(ends_sentence(p) for p in paragraphs):
        return []
    return paragraphs


def _clean_title(title: str, site: str) -> str:
    """Return the headline without a trailing " - Site Name" / " | Site Name"."""
    title = " ".join(title.split())
    if site:
        for sep in (" - ", " | ", " – ", " — ", " :: "):
            if title.endswith(sep + site):
                return title[: -len(sep + site)].rstrip()
    return title
