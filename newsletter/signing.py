"""Signed, URL-safe tokens for unsubscribe and confirm links: returns tokens, raises TokenError."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from itsdangerous import Signer as _ItsSigner
from itsdangerous.signer import SigningAlgorithm

from .errors import ConfigError, TokenError

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

KEY_FILE = "secret.key"
# Distinct salts: a confirm token can never be replayed as an unsubscribe token and vice versa.
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


def _encode(email: str, list_name: str) -> bytes:
    """Return the URL-safe base64 payload naming (email, list_name) without padding."""
    if "\n" in email or "\n" in list_name:
        raise TokenError("an address or list name with a line break cannot be put in a token")
    return _b64url(f"{email}\n{list_name}".encode("utf-8"))


def _decode(payload: bytes) -> tuple[str, str]:
    """Return (email, list_name) from a payload made by _encode; raises TokenError."""
    try:
        raw = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)).decode("utf-8")
    except (binascii.Error, ValueError) as err:
        raise TokenError(f"token payload is not readable: {err}") from err
    email, sep, list_name = raw.partition("\n")
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


class Signer:
    """Makes and reads the signed tokens of unsubscribe and confirm links (itsdangerous, keyed BLAKE2b)."""

    def __init__(self, key: bytes):
        if not key:
            raise ConfigError("signing key is empty")
        # The key is derived with SHA-256 (itsdangerous's django-concat scheme), then MACs are BLAKE2b.
        self._unsub = _FastSigner(key, salt=UNSUBSCRIBE_SALT, digest_method=hashlib.sha256,
                                  algorithm=_Blake2bMAC())
        self._confirm = _FastTimestampSigner(key, salt=CONFIRM_SALT, digest_method=hashlib.sha256,
                                             algorithm=_Blake2bMAC())
        # One token per subscriber per send: keying BLAKE2b costs as much as hashing a short
        # payload, so the keyed state is made once and copied (copy() is safe across threads).
        self._unsub_mac = hashlib.blake2b(key=self._unsub.derive_key(), digest_size=32)
        self._unsub_sep = self._unsub.sep          # b"." (itsdangerous keeps it as bytes)

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

    def unsubscribe_token(self, email: str, list_name: str) -> str:
        """Return the URL-safe unsubscribe token for (email, list_name); raises TokenError on a line break.

        Byte for byte what self._unsub.sign() writes (payload "." base64url(MAC)), which
        read_unsubscribe_token checks through itsdangerous; made here without its per-call layers.
        """
        payload = _encode(email, list_name)
        mac = self._unsub_mac.copy()
        mac.update(payload)
        return (payload + self._unsub_sep + _b64url(mac.digest())).decode("ascii")

    def read_unsubscribe_token(self, token: str) -> tuple[str, str]:
        """Return (email, list_name) from an unsubscribe token; raises TokenError when forged or altered."""
        try:
            if not is_canonical(token):
                raise BadSignature("not in canonical base64url form")
            payload = self._unsub.unsign(token.encode("ascii"))
        except (BadSignature, UnicodeEncodeError) as err:
            raise TokenError("unsubscribe token is not valid (forged, altered or cut)") from err
        return _decode(payload)

    def confirm_token(self, email: str, list_name: str) -> str:
        """Return the URL-safe, timestamped confirm token for (email, list_name)."""
        return self._confirm.sign(_encode(email, list_name)).decode("ascii")

    def read_confirm_token(self, token: str, max_age_seconds: float) -> tuple[str, str]:
        """Return (email, list_name) from a confirm token; raises TokenError when forged or older than max_age_seconds."""
        try:
            if not is_canonical(token):
                raise BadSignature("not in canonical base64url form")
            payload = self._confirm.unsign(token.encode("ascii"), max_age=max_age_seconds)
        except SignatureExpired as err:
            raise TokenError(f"confirm token expired (older than {max_age_seconds:g} s)") from err
        except (BadSignature, UnicodeEncodeError) as err:
            raise TokenError("confirm token is not valid (forged, altered or cut)") from err
        return _decode(payload)


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
        path.parent.mkdir(parents=True, exist_ok=True)
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
