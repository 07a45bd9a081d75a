"""The Signer: makes and reads the signed tokens of unsubscribe and confirm links, whose payload
is an opaque subscriber reference (LinkRef); raises TokenError."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from itsdangerous import BadSignature
from itsdangerous import Signer as ItsSigner

from ..errors import ConfigError, TokenError
from .codec import (Blake2bMAC, FastSigner, FastTimestampSigner, b64url, is_canonical, legacy_fields, unb64url,
                    verified)
from .keys import config_key

if TYPE_CHECKING:
    from ..config import Config

# Distinct salts: a confirm token can never be replayed as an unsubscribe token and vice versa,
# nor a token of one format read as the other.
REF_UNSUBSCRIBE_SALT = "newsletter.unsubscribe.ref"
REF_CONFIRM_SALT = "newsletter.confirm.ref"
BINDING_SALT = "newsletter.link-binding"
PURPOSE_SALT = "newsletter.derived-key"
# Earlier releases put the address and list in the payload: read, never written any more.
UNSUBSCRIBE_SALT = "newsletter.unsubscribe"
CONFIRM_SALT = "newsletter.confirm"


@dataclass(frozen=True)
class LinkRef:
    """What a verified link token names.

    Tokens made since opaque references carry subscriber_id and binding (a keyed hash of the
    address and list, so a reused id never matches another address); confirm tokens also
    issued_at. Tokens made by earlier releases carry the address and list themselves
    (legacy_email, legacy_list); the web app honours those only within signing.legacy_link_days.
    """

    subscriber_id: int | None = None        # None: the link named no stored subscriber (a test copy)
    binding: bytes = b""
    issued_at: datetime | None = None       # UTC; confirm tokens only
    legacy_email: str = ""
    legacy_list: str = ""

    @property
    def is_legacy(self) -> bool:
        """Return True for a token of an earlier release, which names the address itself."""
        return bool(self.legacy_email)


_REF = struct.Struct(">Q8s")            # subscriber id (0 = none), binding
_CONFIRM_REF = struct.Struct(">Q8sQ")   # ... and when it was issued, in microseconds since 1970 UTC


class Signer:
    """Makes and reads the signed tokens of unsubscribe and confirm links (itsdangerous, keyed BLAKE2b).

    A token's payload is an opaque reference: the subscriber's row id and an 8-byte keyed hash of
    (address, list) that binds the id to that address. Nobody without the key learns the address
    from a link, and a link keeps naming the same person even if the database reuses the id.
    """

    def __init__(self, key: bytes):
        if not key:
            raise ConfigError("signing key is empty")
        # The key is derived with SHA-256 (itsdangerous's django-concat scheme), then MACs are BLAKE2b.
        def signer(salt: str, cls: type = FastSigner) -> ItsSigner:
            return cls(key, salt=salt, digest_method=hashlib.sha256, algorithm=Blake2bMAC())

        self._unsub = signer(REF_UNSUBSCRIBE_SALT)
        self._confirm = signer(REF_CONFIRM_SALT)
        self._legacy_unsub = signer(UNSUBSCRIBE_SALT)
        self._legacy_confirm = signer(CONFIRM_SALT, FastTimestampSigner)
        # One token per subscriber per send: keying BLAKE2b costs as much as hashing a short
        # payload, so the keyed states are made once and copied (copy() is safe across threads).
        self._unsub_mac = hashlib.blake2b(key=self._unsub.derive_key(), digest_size=32)
        self._unsub_sep = self._unsub.sep          # b"." (itsdangerous keeps it as bytes)
        self._bind_mac = hashlib.blake2b(key=signer(BINDING_SALT).derive_key(), digest_size=8)
        self._purpose_key = signer(PURPOSE_SALT).derive_key()

    @classmethod
    def from_config(cls, config: "Config") -> "Signer":
        """Return a Signer keyed by $signing.secret_env, else by <state>/secret.key; raises ConfigError."""
        return cls(config_key(config))

    def derive(self, purpose: str) -> bytes:
        """Return 32 bytes derived from the signing key for purpose (e.g. a session cookie key)."""
        return hashlib.blake2b(purpose.encode("utf-8"), key=self._purpose_key, digest_size=32).digest()

    def binding(self, email: str, list_name: str) -> bytes:
        """Return the 8-byte keyed hash that ties a link to (address, list); case-insensitive address."""
        mac = self._bind_mac.copy()
        mac.update(f"{list_name}\n{email.lower()}".encode("utf-8", "surrogatepass"))
        return mac.digest()

    def binds(self, ref: LinkRef, email: str, list_name: str) -> bool:
        """Return True when ref was made for (email, list_name) (constant-time comparison)."""
        return hmac.compare_digest(ref.binding, self.binding(email, list_name))

    def unsubscribe_token(self, email: str, list_name: str, *, subscriber_id: int | None) -> str:
        """Return the URL-safe unsubscribe token naming subscriber_id (None: no stored subscriber).

        Byte for byte what self._unsub.sign() writes (payload "." base64url(MAC)), which
        read_unsubscribe_token checks through itsdangerous; made here without its per-call layers.
        """
        payload = b64url(_REF.pack(subscriber_id or 0, self.binding(email, list_name)))
        mac = self._unsub_mac.copy()
        mac.update(payload)
        return (payload + self._unsub_sep + b64url(mac.digest())).decode("ascii")

    def read_unsubscribe_token(self, token: str) -> LinkRef:
        """Return the LinkRef of an unsubscribe token (this release's or an earlier one's).

        Raises TokenError when it is forged, altered, cut or not an unsubscribe token.
        """
        raw = verified(self._unsub, token)
        if raw is not None:
            if len(raw) != _REF.size:
                raise TokenError("unsubscribe token does not hold a subscriber reference")
            subscriber_id, binding = _REF.unpack(raw)
            return LinkRef(subscriber_id or None, binding)
        raw = verified(self._legacy_unsub, token)
        if raw is None:
            raise TokenError("unsubscribe token is not valid (forged, altered or cut)")
        email, list_name = legacy_fields(raw)
        return LinkRef(legacy_email=email, legacy_list=list_name)

    def confirm_token(self, email: str, list_name: str, *, subscriber_id: int,
                      issued_at: datetime | None = None) -> str:
        """Return the URL-safe confirm token for subscriber_id, stamped with issued_at (default now)."""
        when = issued_at or datetime.now(timezone.utc)
        micros = round(when.timestamp() * 1_000_000)
        payload = _CONFIRM_REF.pack(subscriber_id, self.binding(email, list_name), micros)
        return self._confirm.sign(b64url(payload)).decode("ascii")

    def read_confirm_token(self, token: str, max_age_seconds: float) -> LinkRef:
        """Return the LinkRef of a confirm token (issued_at set); raises TokenError when it is
        forged, altered or older than max_age_seconds."""
        raw = verified(self._confirm, token)
        if raw is not None:
            if len(raw) != _CONFIRM_REF.size:
                raise TokenError("confirm token does not hold a subscriber reference")
            subscriber_id, binding, micros = _CONFIRM_REF.unpack(raw)
            issued = datetime.fromtimestamp(micros / 1_000_000, timezone.utc)
            _check_age(issued, max_age_seconds)
            return LinkRef(subscriber_id or None, binding, issued_at=issued)
        try:
            if not is_canonical(token):
                raise BadSignature("not in canonical base64url form")
            payload, stamp = self._legacy_confirm.unsign(token.encode("ascii"), return_timestamp=True)
            raw = unb64url(payload)
        except (BadSignature, UnicodeEncodeError, binascii.Error, ValueError) as err:
            raise TokenError("confirm token is not valid (forged, altered or cut)") from err
        issued = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
        _check_age(issued, max_age_seconds)
        email, list_name = legacy_fields(raw)
        return LinkRef(issued_at=issued, legacy_email=email, legacy_list=list_name)


def _check_age(issued: datetime, max_age_seconds: float) -> None:
    """Raise TokenError when a token issued at issued is older than max_age_seconds."""
    age = (datetime.now(timezone.utc) - issued).total_seconds()
    if age > max_age_seconds:
        raise TokenError(f"confirm token expired (older than {max_age_seconds:g} s)")
