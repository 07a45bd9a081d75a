"""The lead summariser: the article's first usable sentences within the word budget."""

from __future__ import annotations

from ..models import Article
from .base import MAX_SENTENCES, Candidate, Summarizer, candidates, fallback, join


class LeadSummarizer(Summarizer):
    """The first usable sentences of the article that fit the word budget (at most three)."""

    def summarize(self, article: Article) -> str:
        """Return the lead sentences within max_words; raise SourceError when none fits."""
        cands = candidates(article)
        good = [c for c in cands if c.weight >= 1.0] or cands
        chosen: list[Candidate] = []
        used = 0
        for cand in good:
            if cand.words > self.max_words and not chosen:
                continue                     # skip an over-long opener rather than cut it
            if used + cand.words > self.max_words or len(chosen) == MAX_SENTENCES:
                break
            chosen.append(cand)
            used += cand.words
        if not chosen:
            return fallback(article, self.max_words, bool(cands))
        return join(chosen)
