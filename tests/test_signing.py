"""Signed unsubscribe and confirm tokens: round trips, forgeries, expiry, the key's origin."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import stat
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from itsdangerous import Signer as ItsSigner
from itsdangerous.signer import SigningAlgorithm

from newsletter.config import config_from_dict
from newsletter.errors import SubscriberError
from newsletter.signing import KEY_FILE, Signer, TokenError, key_warning

KEY = b"signing-tests-key-0123456789abcdef"
URL_SAFE = re.compile(r"[A-Za-z0-9_.-]+\Z")


def test_unsubscribe_token_round_trips_and_is_url_safe():
    signer = Signer(KEY)
    token = signer.unsubscribe_token("Zoë.O'Neil+news@example.com", "weekly")
    assert URL_SAFE.match(token)
    assert "example.com" not in token        # opaque: the address is not readable in the link
    assert signer.read_unsubscribe_token(token) == ("Zoë.O'Neil+news@example.com", "weekly")


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
    token = signer.unsubscribe_token("a@example.com", "default")
    with pytest.raises(TokenError):
        signer.read_unsubscribe_token(mangle(token))


def test_token_from_another_key_is_refused_and_token_error_is_a_subscriber_error():
    token = Signer(b"another-key-another-key-0000").unsubscribe_token("a@example.com", "default")
    with pytest.raises(SubscriberError):
        Signer(KEY).read_unsubscribe_token(token)


def test_confirm_and_unsubscribe_tokens_cannot_stand_in_for_each_other():
    signer = Signer(KEY)
    unsub = signer.unsubscribe_token("a@example.com", "default")
    confirm = signer.confirm_token("a@example.com", "default")
    assert URL_SAFE.match(confirm)
    assert signer.read_confirm_token(confirm, 3600) == ("a@example.com", "default")
    with pytest.raises(TokenError):
        signer.read_unsubscribe_token(confirm)
    with pytest.raises(TokenError):
        signer.read_confirm_token(unsub, 3600)


def test_confirm_token_expires():
    signer = Signer(KEY)
    token = signer.confirm_token("a@example.com", "default")
    time.sleep(1.1)     # itsdangerous timestamps have one-second resolution
    with pytest.raises(TokenError, match="expired"):
        signer.read_confirm_token(token, 0)


@settings(max_examples=60, deadline=None)
@given(email=st.text(min_size=1, max_size=60).filter(lambda s: "\n" not in s),
       list_name=st.text(max_size=20).filter(lambda s: "\n" not in s))
def test_any_address_and_list_round_trip(email, list_name):
    signer = Signer(KEY)
    token = signer.unsubscribe_token(email, list_name)
    assert URL_SAFE.match(token)
    assert signer.read_unsubscribe_token(token) == (email, list_name)


def test_key_comes_from_the_env_var_named_in_config(monkeypatch, tmp_path):
    config = config_from_dict({"signing": {"secret_env": "MY_NEWSLETTER_KEY"}}, tmp_path)
    monkeypatch.setenv("MY_NEWSLETTER_KEY", KEY.decode())
    token = Signer.from_config(config).unsubscribe_token("a@example.com", "default")
    assert Signer(KEY).read_unsubscribe_token(token) == ("a@example.com", "default")
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
    assert len(key_file.read_bytes().strip()) >= 32
    token = first.unsubscribe_token("a@example.com", "default")
    assert second.read_unsubscribe_token(token) == ("a@example.com", "default")
    # Said once by `serve` and `run` (key_warning), not by every command that signs a link.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    warning = key_warning(config)
    assert "UNSET_NEWSLETTER_KEY is not set" in warning and str(key_file) in warning
    assert key_file.read_bytes().strip().decode() not in warning + caplog.text
    monkeypatch.setenv("UNSET_NEWSLETTER_KEY", "a key from the environment, long enough")
    assert key_warning(config) == ""


def test_every_one_character_change_is_refused():
    """Changing any single character of a token (even the last one's unused bits) makes it invalid."""
    from newsletter.signing import Signer, TokenError

    signer = Signer(b"a test key that is long enough")
    token = signer.unsubscribe_token("reader@example.org", "default")
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
@given(email=st.text(min_size=1, max_size=60).filter(lambda s: "\n" not in s),
       list_name=st.text(max_size=20).filter(lambda s: "\n" not in s))
def test_unsubscribe_tokens_are_what_itsdangerous_writes(email, list_name):
    # Made without itsdangerous's per-call layers, but byte for byte its scheme: links sent
    # before and after stay valid, and itsdangerous checks them.
    reference = ItsSigner(KEY, salt="newsletter.unsubscribe", digest_method=hashlib.sha256, algorithm=_Blake2b())
    payload = base64.urlsafe_b64encode(f"{email}\n{list_name}".encode()).rstrip(b"=")
    assert Signer(KEY).unsubscribe_token(email, list_name) == reference.sign(payload).decode("ascii")
