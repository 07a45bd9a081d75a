"""Plain-text and Markdown articles → title, byline, date and clean paragraphs, by general rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .boilerplate import BULLET, drop_noise, ends_sentence, find_date, is_body, strip_trailing, words

_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)(?:\s+#+)?$")
_MD_RULE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,}|={3,})$")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)(]|\([^)]*\))*\)")
_MD_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_BYLINE = re.compile(r"^(?:by|written by|words by|author:)\s+(.{3,80}?)\s*$", re.I)
_NAME_WORD = r"(?:[A-Z][\w'’-]*\.?|de|da|van|von|der|del|la|le|bin|al|di)"
_NAME = re.compile(rf"^(?:by\s+)?([A-Z][\w'’-]+(?:\s+{_NAME_WORD}){{1,3}})$")
_NOT_NAMES = frozenset("""
the a an of and in on for to latest news more read share about related comments contact follow
subscribe advertisement conclusion summary references
""".split())


@dataclass(frozen=True)
class TextArticle:
    """What the rules found in a plain-text article."""

    title: str
    author: str
    date: str
    paragraphs: tuple[str, ...]


def parse_text(raw: str) -> TextArticle:
    """Return the title, byline, date and body paragraphs of a plain-text or Markdown article."""
    paragraphs = split_paragraphs(raw)
    title = _pick_title(paragraphs)
    if title:
        paragraphs.remove(title)
    paragraphs = strip_trailing(paragraphs)
    paragraphs, author = _strip_bio(paragraphs)
    paragraphs = strip_trailing(paragraphs)
    paragraphs, byline, date = _strip_labels(paragraphs)
    paragraphs = [p for p in drop_noise(paragraphs) if p != title]
    return TextArticle(title=title, author=author or byline, date=date, paragraphs=tuple(paragraphs))


def split_paragraphs(raw: str) -> list[str]:
    """Return the text's paragraphs: blank-line blocks, wrapped lines joined, list items apart."""
    out: list[str] = []
    for block in _BLANK_LINE.split(raw.strip()):
        lines = [_markdown_line(line) for line in block.splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            continue
        if len(set(lines)) == 1:
            out.append(lines[0])                # a line printed twice (name cards, widgets)
        elif any(BULLET.match(line) for line in lines):
            out.extend(_list_items(lines))
        elif _is_wrapped(lines):
            out.append(" ".join(lines))
        else:
            out.extend(lines)
    return out


def _markdown_line(line: str) -> str:
    """Return one line with surrounding space, Markdown headings, links, images and rules removed."""
    line = line.strip()
    if _MD_RULE.match(line):
        return ""
    heading = _MD_HEADING.match(line)
    if heading:
        line = heading.group(1)
    if line.startswith(">"):
        line = line.lstrip("> ")
    line = _MD_IMAGE.sub("", line)
    line = _MD_LINK.sub(r"\1", line)
    return " ".join(_MD_STRONG.sub(r"\2", line).split())


def _list_items(lines: list[str]) -> list[str]:
    """Return one paragraph per list item, joining an item's continuation lines onto it."""
    items: list[str] = []
    for line in lines:
        if items and not BULLET.match(line) and not ends_sentence(items[-1]) and BULLET.match(items[-1]):
            items[-1] += " " + line
        else:
            items.append(line)
    return items


def _is_wrapped(lines: list[str]) -> bool:
    """Return True when lines look like one hard-wrapped paragraph (similar widths of 40+ columns)."""
    widths = [len(line) for line in lines[:-1]]
    return min(widths) >= 40 and max(widths) <= 100 and max(widths) - min(widths) <= 30


def _pick_title(paragraphs: list[str]) -> str:
    """Return the headline among the lines above the first prose paragraph ("" when none).

    The first headline-like line wins, unless it is a mere label ("Medical news", a dateline, a
    byline) and a fuller headline follows it.
    """
    head = []
    for para in paragraphs:
        if is_body(para):
            break
        head.append(para)
    candidates = [p for p in head if _is_title(p)]
    full = [p for p in candidates
            if words(p) >= 4 and not find_date(p) and not _BYLINE.match(p) and not _name(p)]
    return (full or candidates or [""])[0]


def _is_title(paragraph: str) -> bool:
    """Return True when a first paragraph reads as a headline: one short line, no final full stop."""
    return (not BULLET.match(paragraph) and 1 < words(paragraph) <= 30 and len(paragraph) <= 250
            and not paragraph.endswith((".", ",", ";", ":")))


def _strip_bio(paragraphs: list[str]) -> tuple[list[str], str]:
    """Return paragraphs without an author card at the end (a name line, then a bio naming them)."""
    body_seen = False
    for i, para in enumerate(paragraphs):
        body_seen = body_seen or is_body(para)
        rest = paragraphs[i + 1:]
        if not body_seen or len(rest) not in (1, 2):
            continue
        name = _name(para)
        if name and _mentions(rest[0], name):
            return paragraphs[:i], name
    return paragraphs, ""


def _name(line: str) -> str:
    """Return the person's name when line is only a name ("Nathan Thorne", "By Ana de la Cruz")."""
    found = _NAME.match(line)
    if not found or any(w.lower() in _NOT_NAMES for w in found.group(1).split()):
        return ""
    return found.group(1)


def _mentions(bio: str, name: str) -> bool:
    """Return True when a bio paragraph names the person within its first few words."""
    parts = name.split()
    opening = bio.split()[:8]
    return any(re.sub(r"[’']s$", "", p.strip(",.;:")) in (parts[0], parts[-1]) for p in opening)


def _strip_labels(paragraphs: list[str]) -> tuple[list[str], str, str]:
    """Return paragraphs without the label lines before the first prose paragraph, plus byline and date.

    Section names, datelines, bylines and time stamps sit above a story as short lines; the
    byline and the first date found among them are kept as metadata.
    """
    first = next((i for i, p in enumerate(paragraphs) if is_body(p)), None)
    if first is None or first == 0:      # no prose at all, or no labels above it
        return paragraphs, "", ""
    author, date = "", ""
    for label in paragraphs[:first]:
        byline = _BYLINE.match(label)
        if byline and not author:
            author = byline.group(1)
        date = date or find_date(label)
    return paragraphs[first:], author, date
