"""Webhook authentication: basic auth (Postmark), HMAC (Mailgun), ECDSA (SendGrid), RSA (Amazon SNS).

Each check raises SignatureError (missing=True when nothing was presented) and returns None when
the request is genuine. Keys and certificates are loaded from files named in config; nothing is
fetched from the network. The crypto is `cryptography`'s and `hmac`'s, never our own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ..errors import ConfigError, SignatureError

# The fields of an SNS message that are signed, in order, per message type (Amazon SNS developer
# guide, "Verifying the signatures of Amazon SNS messages"); Subject only when present.
SNS_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
# SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA.
SNS_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def _same(given: str, expected: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def check_basic_auth(given_user: str | None, given_password: str | None, user: str, password: str) -> None:
    """Check HTTP basic-auth credentials (Postmark sends those put in its webhook URL)."""
    if given_user is None or given_password is None:
        raise SignatureError("no HTTP basic-auth credentials", "postmark", missing=True)
    # Both compared, always: a wrong user name must take as long as a wrong password.
    if not (_same(given_user, user) & _same(given_password, password)):
        raise SignatureError("wrong HTTP basic-auth credentials", "postmark")


def _fresh(timestamp: str, max_age: int, now: float | None, source: str) -> None:
    """Check that a signed Unix timestamp is within max_age seconds of now (either way)."""
    try:
        when = float(timestamp)
    except (TypeError, ValueError):
        raise SignatureError(f"signature timestamp {timestamp!r} is not a number", source) from None
    now = time.time() if now is None else now
    if abs(now - when) > max_age:
        raise SignatureError(f"signature timestamp is {int(now - when)} s off (at most "
                             f"{max_age} s: webhooks.max_age_seconds)", source)


def check_mailgun(signing_key: str, signature: dict[str, Any] | None, max_age: int,
                  now: float | None = None) -> None:
    """Check Mailgun's signature block {timestamp, token, signature}: the hex HMAC-SHA256 of
    timestamp + token under the webhook signing key, and a timestamp within max_age seconds."""
    if not isinstance(signature, dict) or not all(signature.get(k) for k in ("timestamp", "token", "signature")):
        raise SignatureError("no Mailgun signature block", "mailgun", missing=True)
    timestamp, token = str(signature["timestamp"]), str(signature["token"])
    expected = hmac.new(signing_key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()
    if not _same(str(signature["signature"]), expected):
        raise SignatureError("wrong Mailgun signature", "mailgun")
    _fresh(timestamp, max_age, now, "mailgun")


def load_sendgrid_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Return the SendGrid verification key in path (PEM, or the base64 DER its settings page shows).

    Raises ConfigError naming webhooks.sendgrid.public_key_file when it cannot be read.
    """
    try:
        text = path.read_bytes().strip()
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (OSError, ValueError, binascii.Error) as err:
        raise ConfigError(f"webhooks.sendgrid.public_key_file: cannot read a public key from {path}: {err}") from err
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError(f"webhooks.sendgrid.public_key_file: {path} is not an elliptic-curve (ECDSA) key")
    return key


def check_sendgrid(key: ec.EllipticCurvePublicKey, signature: str | None, timestamp: str | None,
                   body: bytes, max_age: int, now: float | None = None) -> None:
    """Check SendGrid's Signed Event Webhook: ECDSA (SHA-256) over timestamp + the raw body, the
    signature base64 DER in X-Twilio-Email-Event-Webhook-Signature, and a fresh timestamp."""
    if not signature or not timestamp:
        raise SignatureError("no SendGrid signature headers", "sendgrid", missing=True)
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("wrong SendGrid signature", "sendgrid") from None
    _fresh(timestamp, max_age, now, "sendgrid")


def load_sns_certificate(path: Path) -> x509.Certificate:
    """Return the SNS signing certificate in path (PEM); raises ConfigError naming webhooks.ses.certificate_file."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ConfigError(f"webhooks.ses.certificate_file: cannot read a PEM certificate from {path}: {err}") from err
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise ConfigError(f"webhooks.ses.certificate_file: {path} does not hold an RSA certificate")
    return cert


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """Return the bytes SNS signs for message: "Name\\nvalue\\n" for each signed field, in order."""
    fields = SNS_SIGNED.get(str(message.get("Type")))
    if fields is None:
        raise SignatureError(f"unknown SNS message type {message.get('Type')!r}", "ses")
    parts = []
    for name in fields:
        if name not in message:
            if name == "Subject":
                continue
            raise SignatureError(f"SNS message without {name}", "ses")
        parts.append(f"{name}\n{message[name]}\n")
    return "".join(parts).encode("utf-8")


def check_sns(message: dict[str, Any], cert: x509.Certificate, topic_arns: tuple[str, ...] = (),
              now: datetime | None = None) -> None:
    """Check an SNS message's signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) with
    the configured certificate, the certificate's validity, and the topic when topic_arns are set."""
    if not message.get("Signature") or not message.get("SignatureVersion"):
        raise SignatureError("no SNS signature", "ses", missing=True)
    algorithm = SNS_HASHES.get(str(message["SignatureVersion"]))
    if algorithm is None:
        raise SignatureError(f"unknown SNS SignatureVersion {message['SignatureVersion']!r}", "ses")
    now = now or datetime.now(timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SignatureError("webhooks.ses.certificate_file has expired or is not valid yet: download "
                             f"the one SNS names in SigningCertURL ({message.get('SigningCertURL', '?')})", "ses")
    try:
        signature = base64.b64decode(str(message["Signature"]), validate=True)
        public_key = cert.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)      # checked when loaded
        public_key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm())
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("the SNS signature does not verify with webhooks.ses.certificate_file (if SNS "
                             f"changed its certificate, download SigningCertURL: {message.get('SigningCertURL', '?')})",
                             "ses") from None
    if topic_arns and message.get("TopicArn") not in topic_arns:
        raise SignatureError(f"SNS topic {message.get('TopicArn')!r} is not in webhooks.ses.topic_arns", "ses")
