"""newsletter: turn chosen articles into a weekly email digest and deliver it."""

__version__ = "0.1.0"
