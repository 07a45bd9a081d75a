"""DKIM signatures for finished messages (dkimpy): returns the signed bytes, raises ConfigError."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import dkim

from ..errors import ConfigError
from .mime import sender_domain

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

# RFC 8058 section 4: the signature must cover List-Unsubscribe and List-Unsubscribe-Post, or a
# receiver cannot trust the one-click URL. The rest are the headers a forger would like to change.
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
                  b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type")
_PROBE = (b"From: probe@example.org\r\nTo: probe@example.org\r\nSubject: probe\r\n"
          b"List-Unsubscribe: <https://example.org/u/x>\r\n"
          b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nprobe\r\n")


class DKIMSigner:
    """Signs messages with the key file, selector and domain named in [dkim] (relaxed/relaxed, rsa-sha256)."""

    def __init__(self, key: bytes, selector: str, domain: str, *, key_file: str = "<key>"):
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")
        self._key = key
        try:
            # Sign once now: a bad key or selector stops the send before the first message.
            dkim.sign(_PROBE, self.selector, self.domain, key, include_headers=list(SIGNED_HEADERS))
        except (dkim.DKIMException, ValueError, IndexError) as err:
            raise ConfigError(f"{key_file}: cannot sign with this DKIM key: {err}") from err

    @classmethod
    def from_config(cls, config: "Config") -> "DKIMSigner | None":
        """Return the configured signer, or None when [dkim] is disabled; raises ConfigError."""
        cfg = config.dkim
        if not cfg.enabled:
            return None
        if not cfg.selector:
            raise ConfigError("dkim.selector: required when dkim.enabled is true")
        domain = cfg.domain or sender_domain(config.newsletter.sender)
        if not domain:
            raise ConfigError("dkim.domain: not set and newsletter.sender has no domain")
        try:
            key = cfg.key_file.read_bytes()
        except OSError as err:
            raise ConfigError(f"dkim.key_file: cannot read {cfg.key_file}: {err}") from err
        try:
            domain_ascii = domain.encode("idna").decode("ascii")
            selector = cfg.selector.encode("ascii").decode("ascii")
        except UnicodeError as err:
            raise ConfigError(f"dkim: selector or domain cannot be encoded: {err}") from err
        return cls(key, selector, domain_ascii, key_file=str(cfg.key_file))

    def sign(self, message: bytes) -> bytes:
        """Return message with a DKIM-Signature header in front; raises ConfigError when signing fails."""
        head = b"\r\n" + message.split(b"\r\n\r\n", 1)[0].lower()
        present = [h for h in SIGNED_HEADERS if b"\r\n" + h + b":" in head]
        try:
            sig = dkim.sign(message, self.selector, self.domain, self._key,
                            canonicalize=(b"relaxed", b"relaxed"), include_headers=present)
        except dkim.DKIMException as err:
            raise ConfigError(f"DKIM signing failed (d={self.domain.decode()}): {err}") from err
        return sig + message

