"""Signed, URL-safe tokens for unsubscribe and confirm links naming an opaque subscriber reference:
the Signer and what a token names (tokens.py), the byte layer under them (codec.py) and where the
key comes from (keys.py)."""

from .codec import is_canonical
from .keys import KEY_FILE, key_warning
from .tokens import LinkRef, Signer

__all__ = ["Signer", "LinkRef", "is_canonical", "key_warning", "KEY_FILE"]
