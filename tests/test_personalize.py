"""Per-subscriber messages: headers, unsubscribe links, MIME structure, encoding, injection, DKIM."""

from __future__ import annotations

import email
import email.policy
import re
from email.utils import parsedate_to_datetime

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.errors import ConfigError
from newsletter.models import Recipient, Subscriber
from newsletter.personalize.message import MessageFactory, message_id, sample_message
from newsletter.signing import Signer
from newsletter.render.placeholders import ANY_TOKEN

from personalize_support import BASE_URL, SECRET, make_config, rendered_issue

SINGLE = ("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id", "List-Unsubscribe",
          "List-Unsubscribe-Post", "MIME-Version", "Content-Type")


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def build(config, subscriber, **kwargs):
    factory = MessageFactory(rendered_issue(), config, list_name="default", **kwargs)
    return factory, factory.build(factory.recipient(subscriber))


ZOE = Subscriber(email="zoe@example.com", name="Zoë Ångström", fields={"Company": "Acme & Sons"}, id=31)


def test_message_has_each_header_once_and_the_alternative_structure(config):
    _, raw = build(config, ZOE)
    msg = parse(raw)
    for name in SINGLE:
        assert len(msg.get_all(name) or []) == 1, name
    assert msg["From"].addresses[0].addr_spec == "news@example.org"
    assert msg["To"].addresses[0].addr_spec == "zoe@example.com"
    assert parsedate_to_datetime(msg["Date"]).tzinfo is not None
    assert msg["MIME-Version"] == "1.0"
    assert [p.get_content_type() for p in msg.walk()] == ["multipart/alternative", "text/plain", "text/html"]
    assert not msg.defects and all(not p.defects for p in msg.walk())
    assert raw.count(b"\n") == raw.count(b"\r\n")          # CRLF line ends only
    assert raw.isascii()                                     # 7-bit: encoded words and QP


def test_message_id_is_deterministic_per_issue_list_and_address(config):
    f1, raw1 = build(config, ZOE)
    f2, raw2 = build(config, ZOE)
    mid = parse(raw1)["Message-ID"]
    assert mid == parse(raw2)["Message-ID"]
    assert re.fullmatch(r"<[^<>@\s]{10,}@example\.org>", mid) and re.search(r"\d", mid)
    assert mid == message_id("2026-w48", "default", "zoe@example.com", "example.org")
    assert mid == message_id("2026-w48", "default", "ZOE@example.com", "example.org")
    others = {message_id("2026-w48", "default", "bob@example.com", "example.org"),
              message_id("2026-w49", "default", "zoe@example.com", "example.org"),
              message_id("2026-w48", "other", "zoe@example.com", "example.org")}
    assert mid not in others and len(others) == 3


def test_test_send_prefixes_the_subject_and_gets_its_own_message_id(config):
    _, raw = build(config, ZOE, test=True)
    _, real = build(config, ZOE)
    assert parse(raw)["Subject"] == "[TEST] Weekly: the news"
    assert parse(raw)["Message-ID"] != parse(real)["Message-ID"]


def test_one_click_unsubscribe_headers_and_the_same_url_in_both_bodies(config):
    _, raw = build(config, ZOE)
    msg = parse(raw)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    uris = re.findall(r"<([^>]+)>", str(msg["List-Unsubscribe"]))
    assert uris[0].startswith(f"{BASE_URL}/u/") and uris[1].startswith("mailto:")
    url = uris[0]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert f"Unsubscribe: {url}\r\n" in text
    assert f'<a href="{url}"' in html
    token = url.rsplit("/", 1)[1]
    ref = Signer(SECRET.encode()).read_unsubscribe_token(token)
    assert ref.subscriber_id == 31 and Signer(SECRET.encode()).binds(ref, "zoe@example.com", "default")
    assert "zoe" not in url
    assert msg["List-Id"] == "Test Weekly <default.example.org>"


def test_every_token_is_filled_and_values_are_escaped_only_in_html(config):
    evil = Subscriber(email="eve@example.com", name='<script>alert("x")</script> & Co',
                      fields={"company": "Acme & <Sons>"})
    factory, raw = build(config, evil)
    msg = parse(raw)
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for body in (text, html, raw.decode("ascii")):
        assert not ANY_TOKEN.search(body)
    assert '<script>alert("x")</script> & Co' in text and "Acme & <Sons>" in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
    assert "<script>" not in html and "Acme &amp; &lt;Sons&gt;" in html
    assert f"{BASE_URL}/archive/2026-w48" in text and "eve@example.com subscribed" in text
    assert set(factory.recipient(evil).values) >= {"name", "email", "unsubscribe_url", "view_url", "company"}


def test_non_ascii_subject_and_name_use_encoded_words(tmp_path):
    config = make_config(tmp_path)
    subject = " ".join(["Wöchentlich — Nachrichten"] * 4)
    factory = MessageFactory(rendered_issue(subject=subject), config, list_name="default")
    raw = factory.build(factory.recipient(ZOE))
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "Subject: =?utf-8?" in head and "To: =?utf-8?" in head
    subject_lines = re.search(r"Subject: .*?\r\n(?! )", head, re.S).group(0).split("\r\n")
    assert len(subject_lines) > 2 and all(len(line) <= 78 for line in subject_lines)
    msg = parse(raw)
    assert msg["Subject"] == subject
    assert msg["To"].addresses[0].display_name == "Zoë Ångström"


def test_encoded_lines_are_at_most_76_characters(config):
    long_name = "Ö" * 90 + " " + "x" * 200
    _, raw = build(config, Subscriber(email="long@example.com", name=long_name,
                                      fields={"company": "=" * 150 + " \t"}))
    msg = parse(raw)
    for part in msg.walk():
        if part.is_multipart():
            continue
        assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
        assert max(len(line) for line in part.get_payload().splitlines()) <= 76
    assert long_name in msg.get_body(("plain",)).get_content()


@pytest.mark.parametrize("where,value", [
    ("newsletter", {"sender": "Test <news@example.org>\r\nBcc: victim@example.com"}),
    ("newsletter", {"reply_to": "a@example.org\nBcc: victim@example.com"}),
])
def test_config_header_with_line_break_is_refused(tmp_path, where, value):
    config = make_config(tmp_path, **{where: value})
    with pytest.raises(ConfigError, match="From|Reply-To"):
        MessageFactory(rendered_issue(), config, list_name="default")


def test_subject_with_line_break_is_refused(config):
    with pytest.raises(ConfigError, match="Subject"):
        MessageFactory(rendered_issue(subject="Hi\r\nBcc: victim@example.com"), config, list_name="default")


@pytest.mark.parametrize("name", ["Eve\r\nBcc: victim@example.com", "Eve\nBcc: v@example.com", "Eve\rX"])
def test_subscriber_name_with_line_break_is_refused(config, name):
    factory = MessageFactory(rendered_issue(), config, list_name="default")
    with pytest.raises(ConfigError, match="To"):
        factory.recipient(Subscriber(email="eve@example.com", name=name))
    # A Recipient made some other way is checked again when its message is built.
    recipient = Recipient(email="eve@example.com", message_id="<i.0123456789@example.org>", values={"name": name})
    with pytest.raises(ConfigError, match="To"):
        factory.build(recipient)
    with pytest.raises(ConfigError, match="To"):
        factory.headers(recipient)


@pytest.mark.parametrize("field,header", [("message_id", "Message-ID"), ("unsubscribe_url", "List-Unsubscribe"),
                                          ("email", "To")])
def test_api_headers_refuse_a_line_break_in_any_per_recipient_value(config, field, header):
    factory = MessageFactory(rendered_issue(), config, list_name="default")
    good = factory.recipient(ZOE)
    values = dict(good.values)
    email, mid = good.email, good.message_id
    if field == "message_id":
        mid += "\r\nBcc: victim@example.com"
    elif field == "email":
        email += "\nBcc: victim@example.com"
    else:
        values[field] += "\r\nBcc: victim@example.com"
    with pytest.raises(ConfigError, match=header):
        factory.headers(Recipient(email=email, message_id=mid, values=values))


def test_headers_for_http_apis_are_readable_text(config):
    factory = MessageFactory(rendered_issue(), config, list_name="default")
    recipient = factory.recipient(ZOE)
    h = factory.headers(recipient)
    assert h["To"] == "Zoë Ångström <zoe@example.com>"
    assert h["From"] == "Test Weekly <news@example.org>" and h["Reply-To"] == "Editor <editor@example.org>"
    assert h["Message-ID"] == recipient.message_id
    assert h["List-Unsubscribe"].startswith(f"<{recipient.values['unsubscribe_url']}>, <mailto:")
    assert h["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_sample_message_is_addressed_to_the_sample_reader(config):
    msg = parse(sample_message(rendered_issue(), config, "default"))
    assert str(msg["To"]) == "Sample Reader <reader@example.com>"
    assert "Hello Sample Reader," in msg.get_body(("plain",)).get_content()


def _dkim_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    return path, record


def test_dkim_signature_covers_the_unsubscribe_headers_and_verifies(tmp_path):
    key_file, record = _dkim_key(tmp_path)
    config = make_config(tmp_path, dkim={"enabled": True, "selector": "nl2026", "key_file": str(key_file)})
    _, raw = build(config, ZOE)
    asked = []

    def dns(name, timeout=5):
        asked.append(name)
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    assert asked == [b"nl2026._domainkey.example.org."]
    sig = parse(raw)["DKIM-Signature"]
    signed = {h.strip().lower() for h in re.search(r"h=([^;]+)", sig.replace("\r\n", "")).group(1).split(":")}
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post", "to", "message-id"} <= signed
    forged = raw.replace(b"/u/", b"/u/X", 1)
    assert not dkim.verify(forged, dnsfunc=dns)


def test_dkim_misconfiguration_is_a_config_error(tmp_path):
    config = make_config(tmp_path, dkim={"enabled": True, "selector": "s", "key_file": "missing.key"})
    with pytest.raises(ConfigError, match="dkim.key_file"):
        MessageFactory(rendered_issue(), config, list_name="default")
    (tmp_path / "bad.key").write_text("not a key")
    config = make_config(tmp_path, dkim={"enabled": True, "selector": "s", "key_file": "bad.key"})
    with pytest.raises(ConfigError, match="bad.key"):
        MessageFactory(rendered_issue(), config, list_name="default")
    config = make_config(tmp_path, dkim={"enabled": True, "key_file": "bad.key"})
    with pytest.raises(ConfigError, match="dkim.selector"):
        MessageFactory(rendered_issue(), config, list_name="default")


@pytest.mark.parametrize("list_id,expected", [
    ("", "Zoë's: Weekly <default.example.org>"),
    ("weekly.example.org", "Zoë's: Weekly <weekly.example.org>"),
    ("Weekly <weekly.example.org>", "Weekly <weekly.example.org>"),
])
def test_list_id_keeps_its_id_plain_and_encodes_only_the_description(tmp_path, list_id, expected):
    config = make_config(tmp_path, newsletter={"name": "Zoë's: Weekly", "list_id": list_id})
    factory = MessageFactory(rendered_issue(), config, list_name="default")
    raw = factory.build(factory.recipient(ZOE))
    line = next(x for x in raw.decode("ascii").split("\r\n") if x.startswith("List-Id:"))
    assert line.endswith(expected[expected.index("<"):])
    assert parse(raw)["List-Id"] == expected
    assert factory.headers(factory.recipient(ZOE))["List-Id"] == expected
