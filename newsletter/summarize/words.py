"""Words as the summarisers see them: tokens, crude stems, function words and figures."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from .base import Candidate

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
QUOTES = "'\"‘“«"
FUNCTION_WORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me more
most my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves also said says say one two new year years last first like
get got told mr mrs ms it's that's he's she's i'm don't didn't can't won't may might must shall us
""".split())
NUMBER_WORDS = frozenset("""
three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand
thousands million millions billion billions trillion dozen dozens half
""".split())
# A figure in the text: digits ("400", "£446million", "1,500") or a number word from three up.
_FIGURE_TEXT = re.compile(
    r"(?<![\w.,])\d+(?:[.,]\d+)*|\b(?:" + "|".join(sorted(NUMBER_WORDS)) + r")\b", re.IGNORECASE)
# Ages ("20-year-old", "Leon Yeaman, 55,") and years repeat without restating a fact.
_AGE_AFTER = re.compile(r"-year|\s+years?\s+old|,")
_DIGIT = re.compile(r"\d")
_YEAR = re.compile(r"(?:1[89]|20)\d\d")
_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "ly", "s")



def key_figures(cands: list[Candidate], stems: list[list[str]], title: str) -> frozenset[str]:
    """Return the article's key figures: those the headline states or two sentences repeat."""
    counts = Counter(f for c, words in zip(cands, stems) for f in figures(c.text, words))
    return frozenset(f for f, n in counts.items() if n >= 2) | figures(title or "")


def figures(text: str, stems: Sequence[str] | None = None) -> frozenset[str]:
    """Return the figures a sentence states, normalised ("1,500" → "1500"): no years, ages, 0–2."""
    if stems is not None and _DIGIT.search(text) is None and NUMBER_WORDS.isdisjoint(stems):
        return frozenset()                  # most sentences: skip the slow number-word pattern
    out = set()
    for found in _FIGURE_TEXT.finditer(text):
        figure = found.group().lower().replace(",", "")
        after = _AGE_AFTER.match(text, found.end())
        if (figure in ("0", "1", "2") or _YEAR.fullmatch(figure) or after is not None
                and (after.group() != "," or text[found.start() - 2:found.start()] == ", ")):
            continue
        out.add(figure)
    return frozenset(out)


def is_figure(stem: str) -> bool:
    """Return True for a figure: a token with a digit, or a number word from three upwards."""
    return stem in NUMBER_WORDS or _DIGIT.search(stem) is not None


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """Return a crude stem of a lower-case word (plural, -ed, -ing, -ly removed)."""
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word
