"""Article → short blurb: the summariser plugin interface and the sentence candidates every summariser shares."""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..config import SummarizeSection
from ..errors import SourceError
from ..models import Article
from . import sentences

log = logging.getLogger(__name__)

MAX_SENTENCES = 3

# A news-agency dateline opening the first sentence: "LONDON (Reuters) — ", "Washington (CNN)".
_DATELINE = re.compile(
    r"^(?:[A-Z][\w.'’-]*(?:[ ,]+[A-Z][\w.'’-]*){0,5}\s*)?"
    r"\((?:CNN|Reuters|AP|AFP|UPI|Bloomberg|dpa|PA|IANS|PTI|Xinhua)\)\s*(?:[-–—:|]+\s*)?"
    r"|^[A-Z][A-Z.'’-]{2,}(?:[ ,]+[A-Z][A-Za-z.'’-]+){0,3}\s*[-–—]+\s+(?=[A-Z])"
    r"|^(?:[A-Z][^.!?\n]{0,80}?[-–—,]\s*)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
    r"\s+\d{1,2},?\s+\d{4}\s*[-–—:|]+\s+(?=[A-Z])")
# A byline run into the first sentence of flattened text: "By Sam Roe The mayor said …".
_BYLINE_PREFIX = re.compile(
    r"^(?:By|Written by|Words by|Reported by)\s+(?:[A-Z][\w'’.-]*,?\s+|and\s+|&\s+){1,5}?"
    r"(?:[|–—-]+\s+)?(?=(?:The|A|An|In|On|At|As|He|She|It|They|We|I|This|That|These|Those|There|"
    r"But|And|When|While|After|Before|For|If|Police|Officials|Scientists|Researchers|"
    r"Dr\.|Mr\.?|Mrs\.?|Ms\.?|Prof\.)\s)")
_BYLINE = re.compile(r"^(?:by|written by|words by|reported by|story by|text by|photos? by)\s+\S",
                     re.IGNORECASE)
_CREDIT = re.compile(
    r"^(?:photo|photograph|picture|image|credit|source|video|watch|pictured|file photo)s?\s*[:|]"
    r"|getty images|\bap photo\b|reuters/|shutterstock|©|\(photo\b|\bphoto credit\b"
    r"|\((?:reuters|ap|afp|cnn|upi)\)",             # an agency tag left inside: glued dateline
    re.IGNORECASE)
_STAMP = re.compile(
    r"^(?:updated|published|posted|last updated|last modified|first published)(?:\s+(?:on|at))?\s*"
    r"(?::|\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun)[a-z]*\b)"
    r"|^(?:read more|related (?:articles|stories|coverage|reading)|related:|see also|click here|"
    r"sign up|subscribe|advertisement|share this|"
    r"follow us|scroll down|listen to|download the)\b"
    r"|all rights reserved|\bcopyright\b|this (?:article|story) (?:was|first) (?:originally )?published",
    re.IGNORECASE)
# "Pictured: …", "Wanted: …", "REASON IT MIGHT HAPPEN: …"
_LABEL = re.compile(r"^(?:[A-Z][\w'’-]*(?:\s[\w'’-]+)?|[A-Z][A-Z'’-]+(?:\s[A-Z'’-]+)+):\s")
_OPEN_QUOTE = "\"“‘'«"
_CLOSE_QUOTE = "\"”’'»"
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")
_GLYPH = re.compile(r"[•▪►◦‣]")                            # list glyphs run into prose
_NAME_LINE = re.compile(r"[A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){1,3}")
# A photo caption flattened into the prose: a lower-case word, no stop, then a capitalised opener
# with lower case after it ("… 13 years of professional rugby As retirement draws closer you …").
# 33 of the 1,204 sentences of the tuning half have one, nearly all of them glued captions.
_GLUED = re.compile(r"\b[a-z][a-z,'’]* (?:The|A|An|As|He|She|It|They|We|But|In|On|When|While|After|"
                    r"This|His|Her|Their) [a-z]")


@dataclass(frozen=True)
class Candidate:
    """A sentence that may go into a blurb: exact offsets, its text, word count and article order."""

    start: int
    end: int
    text: str
    words: int
    order: int          # rank among the usable sentences, in article order (0 = first)
    block: int          # block (paragraph) number in the text
    index: int          # position inside its block
    weight: float       # 1.0, or less for sentences that read badly on their own (questions, quotes)


class Summarizer(ABC):
    """A summariser plugin: built from the [summarize] config, turns an Article into a blurb."""

    def __init__(self, section: SummarizeSection):
        self.section = section
        self.max_words = max(1, section.max_words)

    @abstractmethod
    def summarize(self, article: Article) -> str:
        """Return a blurb of at most max_words words; raise SourceError when none can be made."""


def word_count(text: str) -> int:
    """Return the number of whitespace-separated words in text."""
    return len(text.split())


def join(chosen: list[Candidate]) -> str:
    """Return the chosen sentences in article order, separated by single spaces."""
    return " ".join(c.text for c in sorted(chosen, key=lambda c: c.start))


def fallback(article: Article, max_words: int, had_sentences: bool) -> str:
    """Return the article's own description when it fits max_words; raise SourceError otherwise."""
    # Never cut a sentence: an over-long sentence cut short misquotes the article. The
    # publisher's description (og:description) is the one other honest blurb.
    desc = " ".join(article.description.split())
    if desc and word_count(desc) <= max_words:
        log.debug("%s: no sentence fits within %d words; using the description",
                  article.url or article.title or "article", max_words)
        return desc
    where = article.url or article.title or "article"
    if had_sentences:
        raise SourceError(f"{where}: no sentence fits within {max_words} words")
    raise SourceError(f"{where}: no usable sentence to summarise")


def candidates(article: Article) -> list[Candidate]:
    """Return the article's usable sentences (no heading, bullet, byline, caption or dateline)."""
    text = article.text
    spans = sentences.split(text)
    by_block: dict[int, list[sentences.Sentence]] = {}
    for span in spans:
        by_block.setdefault(span.block, []).append(span)
    names = {_norm(article.author)} if article.author.strip() else set()
    title = _norm(article.title)
    out: list[Candidate] = []
    for block in sorted(by_block):
        members = by_block[block]
        block_text = text[members[0].start:members[-1].end]
        if _skip_block(block_text, title, names):
            continue
        for span in members:
            cand = _candidate(text, span, len(out), len(members))
            if cand is not None:
                out.append(cand)
    return out


def _skip_block(block: str, title: str, names: set[str]) -> bool:
    """Return True for blocks that are never article prose; remember name lines in names."""
    norm = _norm(block)
    if not norm or norm == title or sentences.is_bullet(block) or block.rstrip().endswith(":"):
        return True
    if _BYLINE.match(block) and word_count(block) <= 12:
        return True
    if not _SENTENCE_END.search(block.rstrip()) and word_count(block) <= 15:
        # A short line without final punctuation: a heading, label, name or dateline.
        if _NAME_LINE.fullmatch(block.strip()):
            names.add(norm)
        return True
    # An author bio opens with a name already seen alone on a line ("Jane Doe\n\nJane Doe writes…").
    return any(norm.startswith(name + " ") for name in names if name)


def _candidate(text: str, span: sentences.Sentence, order: int, block_len: int) -> Candidate | None:
    """Return the span as a Candidate (dateline removed), or None when it is not usable prose."""
    start, end = span.start, span.end
    # Flattened text glues bylines and datelines to the sentence after them: cut them off.
    for prefix in (_BYLINE_PREFIX, _DATELINE):
        found = prefix.match(text[start:end])              # `^` needs the slice, not pos=
        if found and start + found.end() < end:
            start += found.end()
    body = text[start:end]
    words = word_count(body)
    if (words < 3 or _CREDIT.search(body) or _STAMP.search(body) or sentences.is_bullet(body)
            or _GLYPH.search(body)):
        return None
    weight = 1.0
    if not _SENTENCE_END.search(body):
        if words <= 15:
            return None                 # a heading or label run into the text
        weight *= 0.5                   # runs into a caption or a heading: risky on its own
    if body.rstrip(_CLOSE_QUOTE + ")").endswith("?"):
        weight *= 0.5                   # a question rarely summarises
    if block_len == 1 and body[0] in _OPEN_QUOTE and body[-1] in _CLOSE_QUOTE:
        weight *= 0.5                   # a pull quote standing alone
    if _GLUED.search(body):
        weight *= 0.5                   # a caption glued on: half of it is about a picture
    if words < 6 or _LABEL.match(body) or body[0].islower() or "http" in body or "@" in body:
        weight *= 0.7
    return Candidate(start, end, body, words, order, span.block, span.index, weight)


def _norm(value: str) -> str:
    """Return value lower-cased with runs of whitespace collapsed (for comparisons)."""
    return " ".join(value.lower().split())
