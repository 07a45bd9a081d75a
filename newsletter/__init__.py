"""newsletter: turn chosen articles into a weekly email digest and deliver it.

The story is in `newsletter.pipeline`; the words (issue, item, blurb, render, ledger row,
subscriber status, suppression, job) and the layers are in docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
