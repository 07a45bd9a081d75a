"""The byte layer under link tokens: keyed BLAKE2b as an itsdangerous algorithm, itsdangerous
signers that derive their key once, and base64url exactly as itsdangerous writes it (is_canonical
refuses every other spelling)."""

from __future__ import annotations

import base64
import binascii
import hashlib

from itsdangerous import BadSignature, TimestampSigner
from itsdangerous import Signer as ItsSigner
from itsdangerous.signer import SigningAlgorithm

from ..errors import TokenError


class Blake2bMAC(SigningAlgorithm):
    """Keyed BLAKE2b (RFC 7693), a MAC by design: a token per subscriber per send, so speed matters
    (about 0.6 µs against 4 µs for HMAC-SHA256 here)."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        """Return the 32-byte MAC of value under key."""
        return hashlib.blake2b(value, key=key, digest_size=32).digest()


class _CachedKeyMixin:
    """Derives the signing key once instead of on every call (itsdangerous derives it each time)."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        """Return the derived key (cached for the signer's own key)."""
        if secret_key is not None:
            return super().derive_key(secret_key)  # type: ignore[misc]
        cached = self.__dict__.get("_derived")
        if cached is None:
            cached = self.__dict__["_derived"] = super().derive_key()  # type: ignore[misc]
        return cached


class FastSigner(_CachedKeyMixin, ItsSigner):
    """itsdangerous.Signer with a cached key."""


class FastTimestampSigner(_CachedKeyMixin, TimestampSigner):
    """itsdangerous.TimestampSigner with a cached key."""


# base64 → base64url, as base64.urlsafe_b64encode does, without its two Python-level wrappers.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(raw: bytes) -> bytes:
    """Return raw in unpadded base64url (the spelling itsdangerous writes and is_canonical expects)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=")


def unb64url(payload: bytes) -> bytes:
    """Return the bytes of an unpadded base64url payload; raises binascii.Error or ValueError."""
    return base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))


def is_canonical(token: str) -> bool:
    """Return True when every dot-separated part of token is base64url exactly as an encoder writes it.

    Python's base64 decoder ignores the unused low bits of a part's last character, so up to three
    other spellings of a signature decode to the same bytes and would pass the MAC check. Accepting
    only the spelling we issue means a token changed by one character is always refused.
    """
    for part in token.split("."):
        if not part or len(part) % 4 == 1:
            return False
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            return False
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != part:
            return False
    return True


def verified(signer: ItsSigner, token: str) -> bytes | None:
    """Return the decoded payload of token when signer's MAC checks out, else None."""
    try:
        if not is_canonical(token):
            return None
        return unb64url(signer.unsign(token.encode("ascii")))
    except (BadSignature, UnicodeEncodeError, binascii.Error, ValueError):
        return None


def legacy_fields(raw: bytes) -> tuple[str, str]:
    """Return (email, list_name) from an earlier release's decoded payload "email\\nlist"; raises TokenError."""
    try:
        text = raw.decode("utf-8")
    except ValueError as err:
        raise TokenError(f"token payload is not readable: {err}") from err
    email, sep, list_name = text.partition("\n")
    if not sep or not email:
        raise TokenError("token payload does not name an address and a list")
    return email, list_name
