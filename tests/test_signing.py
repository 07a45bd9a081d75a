"""Signed unsubscribe and confirm tokens: round trips, forgeries, expiry, the key's origin."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import stat
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from itsdangerous import Signer as ItsSigner
from itsdangerous import TimestampSigner
from itsdangerous.signer import SigningAlgorithm

from newsletter.config import config_from_dict
from newsletter.errors import SubscriberError, TokenError
from newsletter.signing import KEY_FILE, Signer, key_warning

KEY = b"signing-tests-key-0123456789abcdef"
URL_SAFE = re.compile(r"[A-Za-z0-9_.-]+\Z")


def legacy_unsubscribe_token(key: bytes, email: str, list_name: str) -> str:
    """Return an unsubscribe token as earlier releases wrote it: the address and list in the payload."""
    reference = ItsSigner(key, salt="newsletter.unsubscribe", digest_method=hashlib.sha256, algorithm=_Blake2b())
    return reference.sign(base64.urlsafe_b64encode(f"{email}\n{list_name}".encode()).rstrip(b"=")).decode()


def legacy_confirm_token(key: bytes, email: str, list_name: str) -> str:
    """Return a confirm token as earlier releases wrote it (timestamped, address in the payload)."""
    reference = TimestampSigner(key, salt="newsletter.confirm", digest_method=hashlib.sha256,
                                algorithm=_Blake2b())
    return reference.sign(base64.urlsafe_b64encode(f"{email}\n{list_name}".encode()).rstrip(b"=")).decode()


def decoded_parts(token: str) -> bytes:
    """Return every dot-separated part of token base64url-decoded, joined."""
    return b"".join(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split("."))


def test_unsubscribe_token_names_an_opaque_reference_not_the_address():
    signer = Signer(KEY)
    token = signer.unsubscribe_token("Zoë.O'Neil+news@example.com", "weekly", subscriber_id=42)
    assert URL_SAFE.match(token)
    raw = decoded_parts(token)
    assert b"example.com" not in raw and b"Neil" not in raw and b"weekly" not in raw
    ref = signer.read_unsubscribe_token(token)
    assert (ref.subscriber_id, ref.is_legacy, ref.issued_at) == (42, False, None)
    assert signer.binds(ref, "zoë.o'neil+NEWS@example.com", "weekly")     # the address's key is case-blind
    assert not signer.binds(ref, "other@example.com", "weekly")
    assert not signer.binds(ref, "Zoë.O'Neil+news@example.com", "daily")


def test_a_test_copy_token_names_no_subscriber():
    signer = Signer(KEY)
    ref = signer.read_unsubscribe_token(signer.unsubscribe_token("me@example.org", "default", subscriber_id=None))
    assert ref.subscriber_id is None and signer.binds(ref, "me@example.org", "default")


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),     # altered signature
    lambda t: ("A" if t[0] != "A" else "B") + t[1:],        # altered payload
    lambda t: t[: len(t) // 2],                            # cut
    lambda t: t.split(".")[0],                             # no signature at all
    lambda t: "",
    lambda t: t + "é",
])
def test_altered_unsubscribe_tokens_are_refused(mangle):
    signer = Signer(KEY)
    token = signer.unsubscribe_token("a@example.com", "default", subscriber_id=7)
    with pytest.raises(TokenError):
        signer.read_unsubscribe_token(mangle(token))


def test_token_from_another_key_is_refused_and_token_error_is_a_subscriber_error():
    token = Signer(b"another-key-another-key-0000").unsubscribe_token("a@example.com", "default", subscriber_id=1)
    with pytest.raises(SubscriberError):
        Signer(KEY).read_unsubscribe_token(token)
    with pytest.raises(SubscriberError):
        Signer(KEY).read_unsubscribe_token(legacy_unsubscribe_token(b"another-key-another-key-0000",
                                                                    "a@example.com", "default"))


def test_confirm_and_unsubscribe_tokens_cannot_stand_in_for_each_other():
    signer = Signer(KEY)
    unsub = signer.unsubscribe_token("a@example.com", "default", subscriber_id=3)
    confirm = signer.confirm_token("a@example.com", "default", subscriber_id=3)
    assert URL_SAFE.match(confirm) and b"example.com" not in decoded_parts(confirm)
    ref = signer.read_confirm_token(confirm, 3600)
    assert ref.subscriber_id == 3 and signer.binds(ref, "a@example.com", "default")
    assert abs((datetime.now(timezone.utc) - ref.issued_at).total_seconds()) < 5
    for wrong, read in ((confirm, signer.read_unsubscribe_token),
                        (unsub, lambda t: signer.read_confirm_token(t, 3600)),
                        (legacy_confirm_token(KEY, "a@example.com", "default"), signer.read_unsubscribe_token),
                        (legacy_unsubscribe_token(KEY, "a@example.com", "default"),
                         lambda t: signer.read_confirm_token(t, 3600))):
        with pytest.raises(TokenError):
            read(wrong)


def test_confirm_token_expires():
    signer = Signer(KEY)
    issued = datetime.now(timezone.utc) - timedelta(seconds=30)
    token = signer.confirm_token("a@example.com", "default", subscriber_id=1, issued_at=issued)
    assert signer.read_confirm_token(token, 60).issued_at == issued
    with pytest.raises(TokenError, match="expired"):
        signer.read_confirm_token(token, 10)


def test_links_of_earlier_releases_are_read_as_legacy_references():
    signer = Signer(KEY)
    ref = signer.read_unsubscribe_token(legacy_unsubscribe_token(KEY, "old@example.org", "weekly"))
    assert ref.is_legacy and (ref.legacy_email, ref.legacy_list, ref.subscriber_id) == ("old@example.org", "weekly", None)
    ref = signer.read_confirm_token(legacy_confirm_token(KEY, "old@example.org", "weekly"), 3600)
    assert ref.is_legacy and ref.legacy_email == "old@example.org" and ref.issued_at is not None


def test_derived_keys_differ_by_purpose_and_by_key():
    assert Signer(KEY).derive("a") == Signer(KEY).derive("a")
    assert len({Signer(KEY).derive("a"), Signer(KEY).derive("b"), Signer(KEY + b"x").derive("a")}) == 3


@settings(max_examples=60, deadline=None)
@given(email=st.text(min_size=1, max_size=60), list_name=st.text(max_size=20),
       subscriber_id=st.integers(min_value=1, max_value=2**63 - 1))
def test_any_address_list_and_id_round_trip(email, list_name, subscriber_id):
    signer = Signer(KEY)
    token = signer.unsubscribe_token(email, list_name, subscriber_id=subscriber_id)
    assert URL_SAFE.match(token)
    ref = signer.read_unsubscribe_token(token)
    assert ref.subscriber_id == subscriber_id and signer.binds(ref, email, list_name)


def test_key_comes_from_the_env_var_named_in_config(monkeypatch, tmp_path):
    config = config_from_dict({"signing": {"secret_env": "MY_NEWSLETTER_KEY"}}, tmp_path)
    monkeypatch.setenv("MY_NEWSLETTER_KEY", KEY.decode())
    token = Signer.from_config(config).unsubscribe_token("a@example.com", "default", subscriber_id=5)
    assert Signer(KEY).read_unsubscribe_token(token).subscriber_id == 5
    assert not (tmp_path / "state" / KEY_FILE).exists()


def test_without_the_env_var_a_private_key_file_is_made_once(monkeypatch, tmp_path, caplog):
    config = config_from_dict({"signing": {"secret_env": "UNSET_NEWSLETTER_KEY"}}, tmp_path)
    monkeypatch.delenv("UNSET_NEWSLETTER_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="newsletter.signing"):
        first = Signer.from_config(config)
        second = Signer.from_config(config)
    key_file = Path(config.state_dir(KEY_FILE))
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700     # state/ made private
    assert len(key_file.read_bytes().strip()) >= 32
    token = first.unsubscribe_token("a@example.com", "default", subscriber_id=9)
    assert second.read_unsubscribe_token(token).subscriber_id == 9
    # Said once by `serve` and `run` (key_warning), not by every command that signs a link.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    warning = key_warning(config)
    assert "UNSET_NEWSLETTER_KEY is not set" in warning and str(key_file) in warning
    assert key_file.read_bytes().strip().decode() not in warning + caplog.text
    monkeypatch.setenv("UNSET_NEWSLETTER_KEY", "a key from the environment, long enough")
    assert key_warning(config) == ""


def test_every_one_character_change_is_refused():
    """Changing any single character of a token (even the last one's unused bits) makes it invalid."""
    from newsletter.errors import TokenError
    from newsletter.signing import Signer

    signer = Signer(b"a test key that is long enough")
    token = signer.unsubscribe_token("reader@example.org", "default", subscriber_id=12)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, ch in enumerate(token):
        for other in alphabet if ch != "." else "":
            if other == ch:
                continue
            altered = token[:i] + other + token[i + 1:]
            with pytest.raises(TokenError):
                signer.read_unsubscribe_token(altered)


class _Blake2b(SigningAlgorithm):
    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hashlib.blake2b(value, key=key, digest_size=32).digest()


@settings(max_examples=60, deadline=None)
@given(email=st.text(min_size=1, max_size=60), list_name=st.text(max_size=20),
       subscriber_id=st.integers(min_value=0, max_value=2**63 - 1))
def test_unsubscribe_tokens_are_what_itsdangerous_writes(email, list_name, subscriber_id):
    # Made without itsdangerous's per-call layers, but byte for byte its scheme: itsdangerous checks them.
    signer = Signer(KEY)
    reference = ItsSigner(KEY, salt="newsletter.unsubscribe.ref", digest_method=hashlib.sha256, algorithm=_Blake2b())
    payload = base64.urlsafe_b64encode(struct.pack(">Q", subscriber_id) + signer.binding(email, list_name)).rstrip(b"=")
    assert signer.unsubscribe_token(email, list_name, subscriber_id=subscriber_id or None) == \
        reference.sign(payload).decode("ascii")
