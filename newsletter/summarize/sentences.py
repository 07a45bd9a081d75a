"""Split text into blocks and sentences given as offsets into the original string (never rewritten)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Sentence-final marks, then any closing quotes/brackets, then whitespace: a possible boundary.
_BOUNDARY = re.compile(r"(?:[.!?]+|…)[\"'”’»)\]]*(?=\s)")
# What may open the next sentence: an upper-case letter or digit, optionally after opening marks,
# or a bullet glyph (a list flattened into running text).
_OPENER = re.compile(r"\s+(?:[•▪►◦‣]|[\"'“‘«(\[]*[^\W_a-z])")
_WORD_BEFORE = re.compile(r"([\w.'’-]+)$")
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_BULLET_LINE = re.compile(r"^\s*(?:[•·▪►◦‣\-*–—]|\d{1,2}[.)]|[a-z][.)])\s")
_END_MARK = re.compile(r"[.!?…:;,\"'”’»)\]]\s*$")

# Abbreviations that do not end a sentence even before a capitalised word ("Dr. Smith").
_TITLES = frozenset("""
mr mrs ms messrs dr prof st sr jr gen sen rep gov lt col sgt capt cmdr adm rev hon pres supt det
insp maj mt ft vs cf approx dept est ca
""".split())
# Abbreviations of months and numbered things: no boundary before a number ("Jan. 5", "No. 10"),
# a boundary otherwise ("He said no. Then …").
_BEFORE_NUMBERS = frozenset("jan feb mar apr jun jul aug sep sept oct nov dec no nos vol fig figs pp op"
                            .split())
# Words that usually open a sentence: after an initialism ("the U.S. The …") they mark a boundary.
_STARTERS = frozenset("""
the a an he she it they we i you his her its their our this that these those there but and so
yet in on at as if when while after before for however meanwhile then now still
""".split())


@dataclass(frozen=True)
class Sentence:
    """A sentence as [start, end) offsets into the original text, with the block it came from."""

    start: int
    end: int
    block: int          # index of the block (paragraph or stand-alone line) in the text
    index: int          # position of the sentence inside its block

    def text_of(self, text: str) -> str:
        """Return the sentence's exact characters in text."""
        return text[self.start:self.end]


def blocks(text: str) -> list[tuple[int, int]]:
    """Return [start, end) offsets of the text's blocks: paragraphs, or the lines of a line list."""
    out: list[tuple[int, int]] = []
    pos = 0
    for match in _PARAGRAPH.finditer(text):
        out.extend(_paragraph_blocks(text, pos, match.start()))
        pos = match.end()
    out.extend(_paragraph_blocks(text, pos, len(text)))
    return out


def _paragraph_blocks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Return the blocks of one paragraph: itself when its lines are wrapped prose, else each line."""
    lines: list[tuple[int, int]] = []
    pos = start
    while pos <= end:
        nl = text.find("\n", pos, end)
        stop = end if nl < 0 else nl
        lines.append(_strip(text, pos, stop))
        pos = stop + 1
    lines = [(a, b) for a, b in lines if b > a]
    if len(lines) > 1 and _is_wrapped(text, lines):
        return [(lines[0][0], lines[-1][1])]
    return lines


def _is_wrapped(text: str, lines: list[tuple[int, int]]) -> bool:
    """Return True when the lines look like one hard-wrapped paragraph (e-mail, plain-text files)."""
    # Hard wrapping fills lines to a similar width (at least ~40 columns); a list of headings,
    # names or bullets has short or ragged lines, and a line that ends a sentence ends a block too.
    widths = [b - a for a, b in lines[:-1]]
    if min(widths) < 40 or max(widths) > 100 or max(widths) - min(widths) > 30:
        return False
    return not any(_BULLET_LINE.match(text[a:b]) for a, b in lines)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """Return [start, end) narrowed to exclude surrounding whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split(text: str) -> list[Sentence]:
    """Return the sentences of text, in order, as offsets into text."""
    out: list[Sentence] = []
    for number, (start, end) in enumerate(blocks(text)):
        for index, (a, b) in enumerate(_split_block(text, start, end)):
            out.append(Sentence(a, b, number, index))
    return out


def _split_block(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Return the sentence spans of text[start:end], one block."""
    spans: list[tuple[int, int]] = []
    pos = start
    for match in _BOUNDARY.finditer(text, start, end):
        cut = match.end()
        nxt = _OPENER.match(text, cut, end)
        if nxt is None or not _ends_sentence(text, start, match.start(), match.group(), nxt):
            continue
        span = _strip(text, pos, cut)
        if span[1] > span[0]:
            spans.append(span)
        pos = cut
    span = _strip(text, pos, end)
    if span[1] > span[0]:
        spans.append(span)
    return spans


def _ends_sentence(text: str, block_start: int, mark: int, marks: str, nxt: re.Match[str]) -> bool:
    """Return True when the mark at offset `mark` ends a sentence, given the word before and after."""
    if not marks.startswith(".") or marks.startswith(".."):
        return True                                       # ? ! … always end before a capital
    # Look only at the last few dozen characters: a `$`-anchored search from the block start is slow.
    before = _WORD_BEFORE.search(text, max(block_start, mark - 40), mark)
    if before is None:
        return True
    word = before.group(1).lstrip("'’-")
    low = word.lower()
    following = text[nxt.start():nxt.end() + 20].split()
    next_word = following[0].strip("\"'“‘«([") if following else ""
    if low in _TITLES:
        return False
    if low in _BEFORE_NUMBERS:
        return not next_word[:1].isdigit()
    if len(word) == 1 and word.isupper():
        return False                                      # an initial: "J. K. Rowling"
    if "." in word and re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word):
        # An initialism such as "U.S." ends a sentence only when a typical opener follows.
        return next_word.lower() in _STARTERS
    return True


def ends_with_mark(line: str) -> bool:
    """Return True when line ends with sentence punctuation, a colon or a closing quote/bracket."""
    return bool(_END_MARK.search(line))


def is_bullet(line: str) -> bool:
    """Return True when line starts with a list marker (•, -, *, ·, ▪, 1., a) …)."""
    return bool(_BULLET_LINE.match(line))
