"""The editor's rules on a group of blurb sentences: no fact stated twice, the key figure kept,
no reference ("He", "But", "The answer") left without the sentence it points back to."""

from __future__ import annotations

import re
from itertools import combinations

from .base import Candidate
from .words import FUNCTION_WORDS, figures

# Two sentences state the same fact when they share at least _SAME_MIN content words and either
# most of them (Jaccard ≥ _SAME_JACCARD), or nearly all of the shorter one (a restatement or a
# caption repeating the text), or a figure and a good part of the rest. Sharing topic words alone
# is not enough: in a focused story every sentence says "tree" and "street".
_SAME_MIN = 3
_SAME_JACCARD = 0.4
_SAME_CONTAINED = 0.8
_SAME_JACCARD_FIGURE = 0.2

class Rules:
    """The editor's rules on a group of sentences.

    No fact stated twice; of two sentences stating one fact, the one with the key figure; no
    reference left without its antecedent.
    """

    def __init__(self, pool: list[Candidate], stems: list[list[str]], key_figures: frozenset[str]):
        # Keyed by Candidate.order, the index into stems; only the pool is ever asked about.
        self.content = {c.order: frozenset(w for w in stems[c.order]
                                           if w not in FUNCTION_WORDS and len(w) > 1)
                        for c in pool}
        self.figures = {c.order: figures(c.text, stems[c.order]) for c in pool}
        self.needs_previous = {c.order: opens_with_reference(c.text) for c in pool}
        self.same: dict[tuple[int, int], bool] = {}
        # A sentence without the key figure gives way to one that states the same fact with it,
        # reads as well on its own and needs no sentence before it.
        weight = {c.order: c.weight for c in pool}
        keyed = [o for o in self.figures if self.figures[o] & key_figures
                 and not self.needs_previous[o]]
        self.outranked = {o for o in self.figures if not self.figures[o] & key_figures
                          and any(weight[k] >= weight[o] and self.same_fact(min(o, k), max(o, k))
                                  for k in keyed)}

    def allowed(self, group: tuple[Candidate, ...]) -> bool:
        """Return True when the group (in article order) meets the rules."""
        orders = {c.order for c in group}
        if any(o in self.outranked or self.needs_previous[o] and o - 1 not in orders
               for o in orders):
            return False
        return not any(self.same_fact(a.order, b.order) for a, b in combinations(group, 2))

    def same_fact(self, a: int, b: int) -> bool:
        """Return True when sentences a and b (a < b) state the same fact."""
        if (a, b) not in self.same:
            one, two = self.content[a], self.content[b]
            common = len(one & two)
            jaccard = common / max(1, len(one | two))
            self.same[a, b] = common >= _SAME_MIN and (
                jaccard >= _SAME_JACCARD
                or common >= _SAME_CONTAINED * min(len(one), len(two))
                or jaccard >= _SAME_JACCARD_FIGURE and bool(self.figures[a] & self.figures[b]))
        return self.same[a, b]


# Openers that refer back to something said before: a pronoun, a connective, a first-person
# voice outside quotation marks (the end of a quote whose speaker came earlier) or a definite
# description of an earlier thing ("The answer", "The pair"). "This week" and the like are dates.
_REFERENCE_OPENER = re.compile(
    r"(?:he|she|they|it|its|his|her|him|them|their|this|that|these|those|such|both|another|others|"
    r"i|we|my|our|us|but|and|or|so|yet|however|also|still|instead|meanwhile|moreover|furthermore|"
    r"nevertheless|nonetheless|besides|then|thus|therefore|hence|likewise|similarly|otherwise|"
    r"indeed|too|even so|in addition|as a result|in fact|in turn|after that|by contrast|"
    r"the (?:answer|move|decision|pair|couple|duo|trio|two|three|latter|former|same|incident|"
    r"comments?|remarks?|claims?|announcement|news|result|results|findings|reason|problem|"
    r"question|response|reply|rest))"
    r"(?:['’](?:s|re|ve|ll|d|m))?(?=[\s,;:.!?—–]|$)",
    re.IGNORECASE)
_DATE_AFTER = re.compile(
    r"\s+(?:week|weekend|year|month|morning|afternoon|evening|night|season|summer|winter|spring|"
    r"autumn|fall|time|january|february|march|april|may|june|july|august|september|october|"
    r"november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.IGNORECASE)


def opens_with_reference(sentence: str) -> bool:
    """Return True when the sentence opens on a reference to an earlier one ("He", "The answer").

    Inside an opening quotation mark only third-person pronouns and connectives count: a quoted
    "I" or "we" is resolved by the attribution that follows.
    """
    body = sentence.lstrip()
    quoted = body[:1] in "\"'“‘«"
    body = body.lstrip("\"'“‘«([ ")
    found = _REFERENCE_OPENER.match(body)
    if found is None or not found.group()[:1].isupper() and not quoted:
        return False
    if len(found.group()) > 1 and found.group().isupper():
        return False                                       # "US", "IT": an acronym
    first = found.group().lower()
    if first == "both" and body[found.end():].lstrip()[:1].isupper():
        return False                                       # "Both Roscosmos and NASA …" names them
    if quoted and first.split("'")[0].split("’")[0] in ("i", "we", "my", "our", "us"):
        return False
    # "This week, …" is a date, not a reference.
    return not (first in ("this", "that", "these", "those")
                and _DATE_AFTER.match(body, found.end()) is not None)



