"""Signed, URL-safe tokens for unsubscribe and confirm links naming an opaque subscriber reference:
returns tokens and LinkRefs, raises TokenError."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import struct
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, TimestampSigner
from itsdangerous import Signer as _ItsSigner
from itsdangerous.signer import SigningAlgorithm

from .errors import ConfigError, TokenError
from .files import make_private_dir

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

KEY_FILE = "secret.key"
# Distinct salts: a confirm token can never be replayed as an unsubscribe token and vice versa,
# nor a token of one format read as the other.
REF_UNSUBSCRIBE_SALT = "newsletter.unsubscribe.ref"
REF_CONFIRM_SALT = "newsletter.confirm.ref"
BINDING_SALT = "newsletter.link-binding"
PURPOSE_SALT = "newsletter.derived-key"
# Earlier releases put the address and list in the payload: read, never written any more.
UNSUBSCRIBE_SALT = "newsletter.unsubscribe"
CONFIRM_SALT = "newsletter.confirm"
_MIN_KEY_CHARS = 16
_warned_lock = threading.Lock()
_warned: set[str] = set()


class _Blake2bMAC(SigningAlgorithm):
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


class _FastSigner(_CachedKeyMixin, _ItsSigner):
    """itsdangerous.Signer with a cached key."""


class _FastTimestampSigner(_CachedKeyMixin, TimestampSigner):
    """itsdangerous.TimestampSigner with a cached key."""


# base64 → base64url, as base64.urlsafe_b64encode does, without its two Python-level wrappers.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64url(raw: bytes) -> bytes:
    """Return raw in unpadded base64url (the spelling itsdangerous writes and is_canonical expects)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=")


def _unb64url(payload: bytes) -> bytes:
    """Return the bytes of an unpadded base64url payload; raises binascii.Error or ValueError."""
    return base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))


def _legacy_fields(raw: bytes) -> tuple[str, str]:
    """Return (email, list_name) from an earlier release's decoded payload "email\\nlist"; raises TokenError."""
    try:
        text = raw.decode("utf-8")
    except ValueError as err:
        raise TokenError(f"token payload is not readable: {err}") from err
    email, sep, list_name = text.partition("\n")
    if not sep or not email:
        raise TokenError("token payload does not name an address and a list")
    return email, list_name


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
        def signer(salt: str, cls: type = _FastSigner) -> _ItsSigner:
            return cls(key, salt=salt, digest_method=hashlib.sha256, algorithm=_Blake2bMAC())

        self._unsub = signer(REF_UNSUBSCRIBE_SALT)
        self._confirm = signer(REF_CONFIRM_SALT)
        self._legacy_unsub = signer(UNSUBSCRIBE_SALT)
        self._legacy_confirm = signer(CONFIRM_SALT, _FastTimestampSigner)
        # One token per subscriber per send: keying BLAKE2b costs as much as hashing a short
        # payload, so the keyed states are made once and copied (copy() is safe across threads).
        self._unsub_mac = hashlib.blake2b(key=self._unsub.derive_key(), digest_size=32)
        self._unsub_sep = self._unsub.sep          # b"." (itsdangerous keeps it as bytes)
        self._bind_mac = hashlib.blake2b(key=signer(BINDING_SALT).derive_key(), digest_size=8)
        self._purpose_key = signer(PURPOSE_SALT).derive_key()

    @classmethod
    def from_config(cls, config: "Config") -> "Signer":
        """Return a Signer keyed by $signing.secret_env, else by <state>/secret.key; raises ConfigError."""
        env_name = config.signing.secret_env
        value = os.environ.get(env_name) if env_name else None
        if value:
            if len(value) < _MIN_KEY_CHARS:
                _warn_once(f"short:{env_name}", f"{env_name} is shorter than {_MIN_KEY_CHARS} "
                           "characters: anyone who guesses it can forge unsubscribe links")
            return cls(value.encode("utf-8"))
        path = Path(config.state_dir(KEY_FILE))
        # Said once where links are checked (`serve`, `run`: see key_warning), not by every command.
        log.debug("signing links with the key in %s (%s is not set)", path, env_name or "no variable named")
        return cls(_file_key(path))

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
        payload = _b64url(_REF.pack(subscriber_id or 0, self.binding(email, list_name)))
        mac = self._unsub_mac.copy()
        mac.update(payload)
        return (payload + self._unsub_sep + _b64url(mac.digest())).decode("ascii")

    def read_unsubscribe_token(self, token: str) -> LinkRef:
        """Return the LinkRef of an unsubscribe token (this release's or an earlier one's).

        Raises TokenError when it is forged, altered, cut or not an unsubscribe token.
        """
        raw = _verified(self._unsub, token)
        if raw is not None:
            if len(raw) != _REF.size:
                raise TokenError("unsubscribe token does not hold a subscriber reference")
            subscriber_id, binding = _REF.unpack(raw)
            return LinkRef(subscriber_id or None, binding)
        raw = _verified(self._legacy_unsub, token)
        if raw is None:
            raise TokenError("unsubscribe token is not valid (forged, altered or cut)")
        email, list_name = _legacy_fields(raw)
        return LinkRef(legacy_email=email, legacy_list=list_name)

    def confirm_token(self, email: str, list_name: str, *, subscriber_id: int,
                      issued_at: datetime | None = None) -> str:
        """Return the URL-safe confirm token for subscriber_id, stamped with issued_at (default now)."""
        when = issued_at or datetime.now(timezone.utc)
        micros = round(when.timestamp() * 1_000_000)
        payload = _CONFIRM_REF.pack(subscriber_id, self.binding(email, list_name), micros)
        return self._confirm.sign(_b64url(payload)).decode("ascii")

    def read_confirm_token(self, token: str, max_age_seconds: float) -> LinkRef:
        """Return the LinkRef of a confirm token (issued_at set); raises TokenError when it is
        forged, altered or older than max_age_seconds."""
        raw = _verified(self._confirm, token)
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
            raw = _unb64url(payload)
        except (BadSignature, UnicodeEncodeError, binascii.Error, ValueError) as err:
            raise TokenError("confirm token is not valid (forged, altered or cut)") from err
        issued = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
        _check_age(issued, max_age_seconds)
        email, list_name = _legacy_fields(raw)
        return LinkRef(issued_at=issued, legacy_email=email, legacy_list=list_name)


def _verified(signer: _ItsSigner, token: str) -> bytes | None:
    """Return the decoded payload of token when signer's MAC checks out, else None."""
    try:
        if not is_canonical(token):
            return None
        return _unb64url(signer.unsign(token.encode("ascii")))
    except (BadSignature, UnicodeEncodeError, binascii.Error, ValueError):
        return None


def _check_age(issued: datetime, max_age_seconds: float) -> None:
    """Raise TokenError when a token issued at issued is older than max_age_seconds."""
    age = (datetime.now(timezone.utc) - issued).total_seconds()
    if age > max_age_seconds:
        raise TokenError(f"confirm token expired (older than {max_age_seconds:g} s)")


def key_warning(config: "Config") -> str:
    """Return the warning for a signing key kept in the state folder ("" when the key comes from
    the environment): links then break when that folder is lost or another host serves them."""
    env_name = config.signing.secret_env
    if env_name and os.environ.get(env_name):
        return ""
    path = Path(config.state_dir(KEY_FILE))
    return (f"environment variable {env_name or '(none named in signing.secret_env)'} is not set: "
            f"links are signed with the key in {path}; set it in production so links survive a lost "
            "state folder and several hosts agree")


def _file_key(path: Path) -> bytes:
    """Return the key stored in path, creating it once (mode 0600) with 32 random bytes; raises ConfigError."""
    try:
        data = path.read_bytes()
        if data.strip():
            return data.strip()
    except FileNotFoundError:
        pass
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the signing key: {err}") from err
    try:
        make_private_dir(path.parent)
        # Write a private temp file, then link it into place: link() fails when another process
        # won the race, and then its key (complete, never half-written) is the one everyone uses.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_hex(32).encode("ascii"))
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return path.read_bytes().strip()
    except OSError as err:
        raise ConfigError(f"{path}: cannot create the signing key: {err}") from err


def _warn_once(key: str, message: str) -> None:
    """Log message as a warning the first time key is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("%s", message)
