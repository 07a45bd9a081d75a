"""Article → blurb: the summariser plugins (`newsletter.summarizers`) and how one is chosen.

`default` (rank.py) picks the sentences that best cover the article's salient words, `lead` the
first sentences, `llm` asks an OpenAI-compatible endpoint; any package may register more.
"""

from __future__ import annotations

from .. import plugins
from ..config import SummarizeSection
from .base import Candidate, Summarizer, word_count
from .lead import LeadSummarizer

__all__ = ["Candidate", "Summarizer", "LeadSummarizer", "make_summarizer", "word_count"]


def make_summarizer(section: SummarizeSection, name: str | None = None) -> Summarizer:
    """Return the summariser named by entry point or "pkg.mod:Class" (default: section.summarizer).

    Raises ConfigError when the name is unknown, not a Summarizer, or the plugin cannot start.
    """
    name = name or section.summarizer
    cls = plugins.load_class(plugins.SUMMARIZERS, name, Summarizer, key="summarize.summarizer",
                             kind="summariser")
    return plugins.create(cls, section, key="summarize.summarizer", name=name)
