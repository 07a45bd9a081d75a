"""Raw documents → Article: trafilatura for HTML, general rules for plain text; raises SourceError."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections import Counter
from urllib.parse import urljoin

import trafilatura
from lxml.html import HtmlElement

from .boilerplate import TABLE_ROW, drop_noise, ends_sentence, strip_trailing, words
from .links import web_image
from ..errors import SourceError
from .frontmatter import split_front_matter
from ..models import Article, RawDocument
from .plaintext import parse_text

# favor_precision scores best on the dev set (token F1 0.973 vs 0.962 by default). Tables are kept:
# the hand-made article bodies include them, and leaving them out cost 0.004 token F1 on eval-dev
# (0.151 on a page of snap counts); their Markdown pipes are flattened to "cell | cell" lines
# (_table_row). The fast date search keeps a page near 20 ms.
_TRAFILATURA = dict(include_comments=False, favor_precision=True, include_tables=True,
                    with_metadata=True,
                    date_extraction_params={"extensive_search": False, "original_date": True})
# trafilatura alone, the yardstick our pruning must not fall below (text only; metadata is ours).
_PLAIN = dict(_TRAFILATURA, with_metadata=False)
_LENIENT = dict(_TRAFILATURA, favor_precision=False)     # for pages where precision finds nothing
# Our pruned text is given up for trafilatura's own when it keeps less than this share of its words.
_KEEP_SHARE = 0.6
_DOCUMENT = re.compile(r"<(?:html|body)\b", re.I)
_NEVER_PRUNED = frozenset({"html", "body", "main", "article"})
_BOILERPLATE_NAMES = re.compile(
    r"(?:^|[\s_-])(?:share|sharing|social|newsletter|promo|related|recommend|subscri|sign-?up"
    r"|advert|ads?(?=$|[\s_-])|sponsor|outbrain|taboola|more-?from|most-?read|popular|trending"
    r"|comments?(?=$|[\s_-])|author-?(?:card|bio)|tags?(?=$|[\s_-])|topics(?=$|[\s_-])|breadcrumb"
    r"|caption|credit)",
    re.I)
# WordPress and similar CMSs label a post's container with its taxonomy: "post-42 type-post hentry
# tag-social-media category-comment". Such tokens name the story's topics, not a widget.
_TAXONOMY_TOKEN = re.compile(
    r"^(?:tag|category|post_tag|post-tag|format|status|type|postid|single-format)[-_]"
    r"(?!(?:links?|list|cloud|box|block|area|wrap\w*|container)$)", re.I)
_POST_CONTAINER = re.compile(
    r"^(?:hentry|type-post|status-publish|post-\d+|postid-\d+|h-entry|entry-content|post-content"
    r"|post-body|article-body|article-content|story-body|articlebody)$", re.I)
_COMMENTS_REGION = re.compile(r"comment|disqus|respond|replies|discussion", re.I)
_TABLE_PARTS = ("thead", "tbody", "tfoot", "tr", "td", "th", "caption")
_LAYOUT_ATTRIBUTES = ("colspan", "rowspan", "valign", "align", "width", "cellpadding",
                      "cellspacing", "border")
_TABLE_RULE = re.compile(r"^\|[\s|:-]*\|$")       # "|---|:--:|", under a table's header
_TOKEN = re.compile(r"\w+")
_CELL_BORDER = re.compile(r"(?<!\\)\|")      # trafilatura writes a "|" inside a cell as "\|"
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
        layouts = _layout_tables(tree)
        doomed = _boilerplate_elements(tree)
        # trafilatura alone reads an untouched copy: our changes may only ever take away noise.
        untouched = copy.deepcopy(tree) if layouts or doomed else None
        removed = _words_in(doomed)
        _unwrap(layouts)
        for element in doomed:
            element.drop_tree()
        found = trafilatura.bare_extraction(tree, url=doc.url, **_TRAFILATURA)
        plain = None
        if untouched is not None and (found is None or layouts or removed * _KEEP_SHARE
                                      > (1 - _KEEP_SHARE) * words(found.text or "")):
            # Skipped when the pruned elements held too few words to make up 40% of our text:
            # then ours keeps 60% of trafilatura's, barring a change of its container. The check
            # is a second extraction; run on 15 of the 54 eval-dev pages, it takes extraction
            # from 25 to 31 ms a page (CPU, median of 7 runs), where running it always took 40.
            plain = trafilatura.bare_extraction(untouched, url=doc.url,
                                                **(_PLAIN if found is not None else _TRAFILATURA))
            if found is None:
                found, plain = plain, None
        if found is None:
            # Precision mode found no story at all: trafilatura's default mode may still find one.
            found = trafilatura.bare_extraction(tree if untouched is None else untouched,
                                                url=doc.url, **_LENIENT)
    except (ValueError, TypeError, AttributeError, LookupError) as err:
        # trafilatura and lxml raise assorted errors on damaged markup; all mean "unreadable".
        raise SourceError(f"{doc.source}: cannot parse the HTML ({err})") from err
    if found is None:
        return Article(text="", url=doc.url)
    title = _clean_title(found.title or "", found.sitename or "")
    paragraphs = _html_paragraphs(found.text or "", title)
    if plain is not None:
        # On 127 pages not used in its making, the pruning once removed a whole story and left
        # 20-70% of several others (table layouts, "tag-…" post classes, comments longer than the
        # story; token F1 0.944 against trafilatura's 0.962). trafilatura's own text wins whenever
        # ours keeps less than 60% of its words.
        alone = _html_paragraphs(plain.text or "", title)
        if _share_kept(paragraphs, alone) < _KEEP_SHARE:
            paragraphs = alone
    base = doc.url or found.url or ""
    return Article(
        text="\n\n".join(paragraphs),
        title=title,
        url=base or None,
        author=(found.author or "").replace("; ", ", "),
        date=found.date or "",
        site_name=found.sitename or "",
        image=web_image(urljoin(base, found.image) if base and found.image else (found.image or "")),
        description=" ".join((found.description or "").split()),
    )


def _share_kept(ours: list[str], theirs: list[str]) -> float:
    """Return the share of the words of theirs that ours also has (1.0 when theirs has none).

    Counted as a bag of lower-case words, so that a pruned tree on which trafilatura picked another
    block of the same length (a footer in place of the story) counts as keeping nothing.
    """
    mine = Counter(_TOKEN.findall("\n".join(ours).lower()))
    wanted = Counter(_TOKEN.findall("\n".join(theirs).lower()))
    total = sum(wanted.values())
    return sum((mine & wanted).values()) / total if total else 1.0


def _words_in(elements: list[HtmlElement]) -> int:
    """Return the number of words in elements, each counted once even when they are nested."""
    chosen = set(elements)
    return sum(words(element.text_content()) for element in elements
               if not any(above in chosen for above in element.iterancestors()))


def unwrap_layout_tables(tree: HtmlElement) -> None:
    """Turn the tables that lay out a page (rather than hold data) into plain divs, in place.

    trafilatura reads a table cell as one table row, so a story laid out in a <td> comes out as a
    single "| … |" line, or not at all in precision mode with tables off. A table is a layout when
    it holds a headline, another table, or a cell of running prose (60+ words): no data table does.
    """
    _unwrap(_layout_tables(tree))


def _layout_tables(tree: HtmlElement) -> list[tuple[HtmlElement, list[HtmlElement]]]:
    """Return the layout tables of tree, each with its own rows and cells (not a nested table's)."""
    layouts = [table for table in tree.iter("table") if _is_layout(table)]
    return [(table, [part for part in table.iter(*_TABLE_PARTS) if _nearest_table(part) is table])
            for table in layouts]


def _unwrap(layouts: list[tuple[HtmlElement, list[HtmlElement]]]) -> None:
    """Rename layout tables, their rows and cells to divs and drop their layout attributes."""
    for table, parts in layouts:
        for element in [table, *parts]:
            element.tag = "div"
            for attribute in _LAYOUT_ATTRIBUTES:
                element.attrib.pop(attribute, None)


def _is_layout(table: HtmlElement) -> bool:
    """Return True for a table that frames a page or a story rather than tabulating data."""
    if next(table.iterdescendants("h1", "h2", "table", "article"), None) is not None:
        return True
    return any(_nearest_table(cell) is table and words(cell.text_content()) >= 60
               for cell in table.iterdescendants("td", "th"))


def _nearest_table(element: HtmlElement) -> HtmlElement | None:
    """Return the closest <table> above element, or None."""
    return next(element.iterancestors("table"), None)


def prune_boilerplate(tree: HtmlElement) -> None:
    """Remove share bars, promos, related links, tag lists and the like from tree, in place.

    trafilatura spots these by lower-case class names; CSS-module and camel-case names
    ("ShareBar_bar__w4", "Newsletter_inline") slip past it, so they are matched here without
    regard to case. See _boilerplate_elements for what is never removed.
    """
    for element in _boilerplate_elements(tree):
        element.drop_tree()


def _boilerplate_elements(tree: HtmlElement) -> list[HtmlElement]:
    """Return the elements of tree that prune_boilerplate removes, in document order.

    Never among them: a post container ("post-42 type-post hentry tag-sharing"), an element holding
    the headline, or one holding half the story, counted in paragraphs or in words outside the
    comments (a long discussion under a short post must not outweigh the post).
    """
    doomed, suspects, discussions = [], [], []
    for element in tree.iter("*"):
        if not isinstance(element.tag, str) or element.tag in _NEVER_PRUNED:
            continue
        if element.tag == "figcaption":
            doomed.append(element)
            continue
        names = f"{element.get('class') or ''} {element.get('id') or ''}"
        if names == " ":
            continue
        if _COMMENTS_REGION.search(names):
            discussions.append(element)
        tokens = names.split()
        if any(_POST_CONTAINER.match(token) for token in tokens):
            continue
        if _BOILERPLATE_NAMES.search(" ".join(t for t in tokens if not _TAXONOMY_TOKEN.match(t))):
            suspects.append(element)
    if not suspects:
        return doomed
    paragraph_words = {p: words(p.text_content()) for p in tree.iter("p")}
    paragraphs = max(1, len(paragraph_words))
    discussed = {p for region in discussions for p in region.iter("p")}
    story = max(1, sum(n for p, n in paragraph_words.items() if p not in discussed))
    headed = {above for heading in _headlines(tree) for above in heading.iterancestors()}
    for element in suspects:
        if element in headed:
            continue
        inside = [paragraph_words.get(p, 0) for p in element.iter("p")]
        if len(inside) * 2 < paragraphs and sum(inside) * 2 < story:
            doomed.append(element)
    return doomed


def _headlines(tree: HtmlElement) -> list[HtmlElement]:
    """Return the page's <h1>s and the <h2>s that repeat its <title> (some blogs' headline)."""
    found = list(tree.iter("h1"))
    title = " ".join(tree.findtext(".//title", default="").split()).casefold()
    if title:
        for heading in tree.iter("h2"):
            text = " ".join(heading.text_content().split()).casefold()
            if words(text) >= 3 and text in title:
                found.append(heading)
    return found


def _html_paragraphs(text: str, title: str) -> list[str]:
    """Return the paragraphs of trafilatura's text without the headline and boilerplate lines."""
    paragraphs = [line.strip() for line in fix_typography(text).split("\n")]
    paragraphs = [p for p in paragraphs if p and not _TABLE_RULE.match(p)]
    # The <h1> inside the article repeats the title (after a kicker or a dek at most).
    paragraphs = [p for i, p in enumerate(paragraphs) if i > 2 or p.casefold() != title.casefold()]
    # A few words and no sentence (a lone menu item, "Home") is what is left of a page with no
    # story. When only our clean-up makes a page look like that, trafilatura's lines are kept as
    # they are: an empty article is worse than a noisy one.
    for kept in (strip_trailing(drop_noise(paragraphs, keep_repeats=True)), paragraphs):
        if sum(words(p) for p in kept) >= 25 or any(ends_sentence(p) for p in kept):
            return [row for row in map(_table_row, kept) if row]
    return []


def _table_row(line: str) -> str:
    """Return a Markdown table row ("| a | b |") as "a | b" (else line as it is)."""
    if len(line) < 2 or not TABLE_ROW.match(line):
        return line
    cells = (cell.replace("\\|", "|").strip() for cell in _CELL_BORDER.split(line[1:-1]))
    return " | ".join(cell for cell in cells if cell)


def _clean_title(title: str, site: str) -> str:
    """Return the headline without a trailing " - Site Name" / " | Site Name"."""
    title = " ".join(title.split())
    if site:
        for sep in (" - ", " | ", " – ", " — ", " :: "):
            if title.endswith(sep + site):
                return title[: -len(sep + site)].rstrip()
    return title
