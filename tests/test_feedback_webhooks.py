"""Provider webhooks with real signatures made in the test: Postmark (basic auth), Mailgun (HMAC),
SendGrid (an ECDSA key pair) and Amazon SES over SNS (a self-made RSA certificate). The issue is
first sent through a local server playing the provider, so the ids in each webhook are the ones
the send recorded."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from feedback_support import SECRET, SECRET_ENV, ledger_rows, project, send_sample, status_of
from mail_servers import HTTPMailAPIServer
from newsletter.db import dispose_engines
from newsletter.errors import ConfigError
from newsletter.web import create_app

API_KEY = "test-api-key"
MAILGUN_KEY = "key-mailgun-webhook-signing-0123456789"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv("TEST_MAIL_API_KEY", API_KEY)
    monkeypatch.setenv("TEST_POSTMARK_HOOK_PASSWORD", "s3cret-hook-password")
    monkeypatch.setenv("TEST_MAILGUN_SIGNING_KEY", MAILGUN_KEY)
    yield
    dispose_engines()


def _send_via(tmp_path, provider, n=4, **sections):
    """Send issue w1 to n subscribers through a local server playing provider; return (config, rows)."""
    with HTTPMailAPIServer(provider, api_key=API_KEY) as server:
        config = project(tmp_path, delivery={"backend": "http", "backoff_seconds": 0.01,
                                             "http": server.http_config()}, **sections)
        rows = send_sample(config, n)
    assert [r["status"] for r in rows] == ["sent"] * n
    return config, rows


# -- Postmark ---------------------------------------------------------------------------------------

POSTMARK = {"postmark": {"username": "postmark", "password_env": "TEST_POSTMARK_HOOK_PASSWORD"}}


def _postmark_bounce(row, event_id=1001, kind="HardBounce"):
    return {"RecordType": "Bounce", "ID": event_id, "Type": kind, "TypeCode": 1, "MessageStream": "broadcast",
            "MessageID": row["provider_id"], "Email": row["email"], "BouncedAt": "2026-05-04T09:00:00Z",
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist."}


def test_postmark_bounce_with_basic_auth_and_a_harmless_replay(tmp_path):
    config, rows = _send_via(tmp_path, "postmark", webhooks=POSTMARK)
    client = create_app(config).test_client()
    target = rows[2]
    body = _postmark_bounce(target)
    good = ("postmark", "s3cret-hook-password")
    answer = client.post("/hooks/postmark", json=body, auth=good)
    assert answer.status_code == 200 and answer.json == {"reports": 1, "suppressed": 1}
    assert status_of(config, target["email"]) == "bounced"
    assert [r["status"] for r in ledger_rows(config, "w1")].count("bounced") == 1
    replay = client.post("/hooks/postmark", json=body, auth=good)
    assert replay.status_code == 200 and replay.json == {"reports": 1, "duplicate": 1}
    assert [status_of(config, r["email"]) for r in rows].count("bounced") == 1


def test_postmark_without_or_with_wrong_credentials_changes_nothing(tmp_path):
    config, rows = _send_via(tmp_path, "postmark", webhooks=POSTMARK)
    client = create_app(config).test_client()
    body = _postmark_bounce(rows[0])
    missing = client.post("/hooks/postmark", json=body)
    assert missing.status_code == 401 and "Basic" in missing.headers["WWW-Authenticate"]
    for auth in (("postmark", "guess"), ("someone", "s3cret-hook-password")):
        assert client.post("/hooks/postmark", json=body, auth=auth).status_code == 403
    assert [status_of(config, r["email"]) for r in rows] == ["active"] * 4
    # Refused requests leave no event behind: the genuine one still applies afterwards.
    assert client.post("/hooks/postmark", json=body, auth=("postmark", "s3cret-hook-password")).json["suppressed"] == 1


def test_postmark_spam_complaint_and_soft_bounce(tmp_path):
    config, rows = _send_via(tmp_path, "postmark", webhooks=POSTMARK, bounces={"complaint_pause_ratio": 0.5})
    client = create_app(config).test_client()
    auth = ("postmark", "s3cret-hook-password")
    complaint = dict(_postmark_bounce(rows[0], 7), RecordType="SpamComplaint", Type="SpamComplaint", TypeCode=512,
                     Details="", Description="The subscriber explicitly marked this message as spam.")
    soft = dict(_postmark_bounce(rows[1], 8, "SoftBounce"), Details="smtp;452 4.2.2 Mailbox full")
    assert client.post("/hooks/postmark", json=complaint, auth=auth).json == {"reports": 1, "suppressed": 1}
    assert client.post("/hooks/postmark", json=soft, auth=auth).json == {"reports": 1, "recorded": 1}
    assert status_of(config, rows[0]["email"]) == "complained"
    assert status_of(config, rows[1]["email"]) == "active"     # one soft bounce (limit 3) is not enough


# -- Mailgun ----------------------------------------------------------------------------------------

def _mailgun(row, *, key=MAILGUN_KEY, timestamp=None, event_id="ev-1", event="failed", **data):
    timestamp = str(int(time.time() if timestamp is None else timestamp))
    token = hashlib.sha256(f"{event_id}{timestamp}".encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    event_data = {"event": event, "id": event_id, "timestamp": float(timestamp), "recipient": row["email"],
                  "severity": "permanent", "reason": "bounce",
                  "delivery-status": {"code": 550, "message": "550 5.1.1 The email account that you tried to "
                                      "reach does not exist", "description": ""},
                  "message": {"headers": {"message-id": row["provider_id"].strip("<>"), "to": row["email"]}}}
    event_data.update(data)
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event_data}


def test_mailgun_signed_event_maps_a_batch_id_to_its_recipient(tmp_path):
    config, rows = _send_via(tmp_path, "mailgun", webhooks={"mailgun": {"signing_key_env": "TEST_MAILGUN_SIGNING_KEY"}})
    assert len({r["provider_id"] for r in rows}) == 1        # one Mailgun id for the whole batch
    client = create_app(config).test_client()
    payload = _mailgun(rows[1])
    assert client.post("/hooks/mailgun", json=payload).json == {"reports": 1, "suppressed": 1}
    assert [status_of(config, r["email"]) for r in rows] == ["active", "bounced", "active", "active"]
    assert client.post("/hooks/mailgun", json=payload).json == {"reports": 1, "duplicate": 1}


def test_mailgun_unsigned_forged_or_stale_requests_change_nothing(tmp_path):
    config, rows = _send_via(tmp_path, "mailgun", webhooks={"mailgun": {"signing_key_env": "TEST_MAILGUN_SIGNING_KEY"}})
    client = create_app(config).test_client()
    unsigned = _mailgun(rows[0])
    del unsigned["signature"]
    assert client.post("/hooks/mailgun", json=unsigned).status_code == 401
    assert client.post("/hooks/mailgun", data=b"not json", content_type="application/json").status_code == 401
    assert client.post("/hooks/mailgun", json=_mailgun(rows[0], key="key-someone-else")).status_code == 403
    assert client.post("/hooks/mailgun", json=_mailgun(rows[0], timestamp=time.time() - 3600)).status_code == 403
    tampered = _mailgun(rows[0])
    tampered["signature"]["timestamp"] = str(int(time.time()) + 1)
    assert client.post("/hooks/mailgun", json=tampered).status_code == 403
    assert [status_of(config, r["email"]) for r in rows] == ["active"] * 4


def test_mailgun_temporary_failures_and_policy_blocks_suppress_nobody(tmp_path):
    config, rows = _send_via(tmp_path, "mailgun", webhooks={"mailgun": {"signing_key_env": "TEST_MAILGUN_SIGNING_KEY"}})
    client = create_app(config).test_client()
    temporary = _mailgun(rows[0], event_id="t1", severity="temporary", reason="generic")
    policy = _mailgun(rows[1], event_id="p1", **{"delivery-status": {"code": 550, "message": "550 5.7.1 Our "
                                                                      "system has detected spam", "description": ""}})
    assert client.post("/hooks/mailgun", json=temporary).json == {"reports": 1, "recorded": 1}
    assert client.post("/hooks/mailgun", json=policy).json == {"reports": 1, "recorded": 1}
    assert [status_of(config, r["email"]) for r in rows] == ["active"] * 4


# -- SendGrid ---------------------------------------------------------------------------------------

@pytest.fixture
def sendgrid_key(tmp_path):
    """Return (private key, path of the public key as SendGrid shows it: base64 DER)."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "sendgrid.pub"
    path.write_text(base64.b64encode(der).decode() + "\n", encoding="ascii")
    return private, path


def _sendgrid_post(client, private, events, timestamp=None, body=None):
    body = body if body is not None else json.dumps(events).encode()
    timestamp = str(int(time.time() if timestamp is None else timestamp))
    signature = base64.b64encode(private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    return client.post("/hooks/sendgrid", data=body, content_type="application/json",
                       headers={"X-Twilio-Email-Event-Webhook-Signature": signature,
                                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp})


def _sendgrid_events(rows):
    batch = rows[0]["provider_id"]
    return [{"email": rows[0]["email"], "event": "bounce", "type": "bounce", "status": "5.1.1",
             "reason": "550 5.1.1 The email account that you tried to reach does not exist",
             "sg_event_id": "sg-ev-1", "sg_message_id": f"{batch}.filterdrecv-5645d9c87f-78xgx-1-0",
             "timestamp": int(time.time())},
            {"email": rows[1]["email"], "event": "spamreport", "sg_event_id": "sg-ev-2",
             "sg_message_id": f"{batch}.filterdrecv-5645d9c87f-78xgx-1-1", "timestamp": int(time.time())},
            {"email": rows[2]["email"], "event": "delivered", "sg_event_id": "sg-ev-3",
             "sg_message_id": f"{batch}.filterdrecv-5645d9c87f-78xgx-1-2", "timestamp": int(time.time())}]


def test_sendgrid_signed_event_batch(tmp_path, sendgrid_key):
    private, path = sendgrid_key
    config, rows = _send_via(tmp_path, "sendgrid", webhooks={"sendgrid": {"public_key_file": path.name}},
                             bounces={"complaint_pause_ratio": 0.5})
    client = create_app(config).test_client()
    answer = _sendgrid_post(client, private, _sendgrid_events(rows))
    assert answer.status_code == 200 and answer.json == {"reports": 3, "suppressed": 2, "recorded": 1}
    assert [status_of(config, r["email"]) for r in rows] == ["bounced", "complained", "active", "active"]
    assert _sendgrid_post(client, private, _sendgrid_events(rows)).json == {"reports": 3, "duplicate": 3}


def test_sendgrid_unsigned_forged_or_altered_bodies_change_nothing(tmp_path, sendgrid_key):
    private, path = sendgrid_key
    config, rows = _send_via(tmp_path, "sendgrid", webhooks={"sendgrid": {"public_key_file": path.name}})
    client = create_app(config).test_client()
    events = _sendgrid_events(rows)
    assert client.post("/hooks/sendgrid", json=events).status_code == 401
    other = ec.generate_private_key(ec.SECP256R1())
    assert _sendgrid_post(client, other, events).status_code == 403
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    signature = base64.b64encode(private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    altered = body.replace(rows[0]["email"].encode(), rows[3]["email"].encode())
    answer = client.post("/hooks/sendgrid", data=altered, content_type="application/json",
                         headers={"X-Twilio-Email-Event-Webhook-Signature": signature,
                                  "X-Twilio-Email-Event-Webhook-Timestamp": timestamp})
    assert answer.status_code == 403
    assert _sendgrid_post(client, private, events, timestamp=time.time() - 7200).status_code == 403
    assert [status_of(config, r["email"]) for r in rows] == ["active"] * 4


# -- Amazon SES over SNS ----------------------------------------------------------------------------

@pytest.fixture
def sns_signer(tmp_path):
    """Return (private key, certificate path): a self-made certificate standing in for SNS's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    path = tmp_path / "sns.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, path


TOPIC = "arn:aws:sns:us-east-1:123456789012:newsletter-feedback"
SIGNED = {"Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
          "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")}


def _sns(key, kind, version="1", **fields):
    """Return an SNS message of kind signed by key the way SNS signs (SignatureVersion 1 or 2)."""
    message = {"Type": kind, "MessageId": fields.pop("MessageId", "sns-1"), "TopicArn": TOPIC,
               "Timestamp": "2026-05-04T09:00:00.000Z", "SignatureVersion": version,
               "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem", **fields}
    text = "".join(f"{name}\n{message[name]}\n" for name in SIGNED[kind] if name in message)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    message["Signature"] = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), digest)).decode()
    return message


def _ses_bounce(row, bounce_type="Permanent", status="5.1.1"):
    return json.dumps({"notificationType": "Bounce",
                       "bounce": {"bounceType": bounce_type, "bounceSubType": "General", "feedbackId": f"fb-{row['id']}",
                                  "bouncedRecipients": [{"emailAddress": row["email"], "status": status,
                                                         "diagnosticCode": f"smtp; 550 {status} user unknown"}]},
                       "mail": {"messageId": "0100018f-ses-id", "destination": [row["email"]],
                                "commonHeaders": {"messageId": row["message_id"], "subject": "Weekly digest"}}})


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_and_complaint_signed_by_sns(tmp_path, sns_signer, version):
    key, cert = sns_signer
    config = project(tmp_path, webhooks={"ses": {"certificate_file": str(cert), "topic_arns": [TOPIC]}},
                     bounces={"complaint_pause_ratio": 0.5})
    rows = send_sample(config, 4)
    client = create_app(config).test_client()
    bounce = _sns(key, "Notification", version, Message=_ses_bounce(rows[0]))
    headers = {"x-amz-sns-message-type": "Notification"}
    assert client.post("/hooks/ses", json=bounce, headers=headers).json == {"reports": 1, "suppressed": 1}
    complaint = _sns(key, "Notification", version, MessageId="sns-2", Subject="Amazon SES Email Event", Message=json.dumps(
        {"notificationType": "Complaint", "complaint": {"feedbackId": "fb-c", "complaintFeedbackType": "abuse",
                                                       "complainedRecipients": [{"emailAddress": rows[1]["email"]}]},
         "mail": {"messageId": "0100018f-ses-id-2", "commonHeaders": {"messageId": rows[1]["message_id"]}}}))
    assert client.post("/hooks/ses", json=complaint, headers=headers).json == {"reports": 1, "suppressed": 1}
    assert [status_of(config, r["email"]) for r in rows] == ["bounced", "complained", "active", "active"]
    assert client.post("/hooks/ses", json=bounce, headers=headers).json == {"reports": 1, "duplicate": 1}


def test_ses_forged_or_foreign_sns_messages_change_nothing(tmp_path, sns_signer):
    key, cert = sns_signer
    config = project(tmp_path, webhooks={"ses": {"certificate_file": str(cert), "topic_arns": [TOPIC]}})
    rows = send_sample(config, 2)
    client = create_app(config).test_client()
    genuine = _sns(key, "Notification", Message=_ses_bounce(rows[0]))
    unsigned = {k: v for k, v in genuine.items() if k != "Signature"}
    assert client.post("/hooks/ses", json=unsigned).status_code == 401
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert client.post("/hooks/ses", json=_sns(other_key, "Notification", Message=_ses_bounce(rows[0]))).status_code == 403
    altered = dict(genuine, Message=_ses_bounce(rows[1]))
    assert client.post("/hooks/ses", json=altered).status_code == 403
    foreign = _sns(key, "Notification", Message=_ses_bounce(rows[0]), TopicArn="arn:aws:sns:us-east-1:999:theirs")
    assert client.post("/hooks/ses", json=foreign).status_code == 403
    assert [status_of(config, r["email"]) for r in rows] == ["active", "active"]
    confirm = _sns(key, "SubscriptionConfirmation", Message="You have chosen to subscribe...", Token="tok",
                   SubscribeURL="https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok")
    answer = client.post("/hooks/ses", json=confirm)
    assert answer.status_code == 200 and answer.json["confirm"].endswith("Token=tok")


# -- every provider --------------------------------------------------------------------------------

def test_a_provider_without_its_section_answers_404_and_forms_keep_csrf(tmp_path):
    config = project(tmp_path)
    client = create_app(config).test_client()
    for provider in ("postmark", "mailgun", "sendgrid", "ses"):
        assert client.post(f"/hooks/{provider}", json={}).status_code == 404
    assert client.get("/hooks/postmark").status_code in (404, 405)
    assert client.post("/subscribe", data={"email": "a@example.org"}).status_code == 400   # CSRF still on


def test_a_configured_hook_without_its_secret_stops_the_app_with_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_MAILGUN_SIGNING_KEY")
    config = project(tmp_path, webhooks={"mailgun": {"signing_key_env": "TEST_MAILGUN_SIGNING_KEY"}})
    with pytest.raises(ConfigError, match="webhooks.mailgun.signing_key_env: environment variable "
                                          "TEST_MAILGUN_SIGNING_KEY is not set"):
        create_app(config)
    (tmp_path / "bad.pub").write_text("not a key")
    config = project(tmp_path, webhooks={"sendgrid": {"public_key_file": "bad.pub"}})
    with pytest.raises(ConfigError, match="webhooks.sendgrid.public_key_file: cannot read a public key"):
        create_app(config)


def test_mailgun_a_used_signature_cannot_carry_another_event(tmp_path):
    # Mailgun signs timestamp + token only: a body altered under a seen signature is refused (403),
    # while the very same request again stays a harmless duplicate.
    config, rows = _send_via(tmp_path, "mailgun", webhooks={"mailgun": {"signing_key_env": "TEST_MAILGUN_SIGNING_KEY"}})
    client = create_app(config).test_client()
    seen = _mailgun(rows[0], event="delivered")
    assert client.post("/hooks/mailgun", json=seen).status_code == 200
    assert client.post("/hooks/mailgun", json=seen).status_code == 200
    forged = _mailgun(rows[1], event_id="ev-forged", event="complained")
    forged["signature"] = seen["signature"]
    assert client.post("/hooks/mailgun", json=forged).status_code == 403
    assert [status_of(config, r["email"]) for r in rows] == ["active"] * 4
