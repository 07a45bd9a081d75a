"""The parts of bounce and complaint intake on their own: RFC 3463 classes, VERP tokens, provider
payload shapes, and applying reports on SQLite and PostgreSQL (replays, unmatched reports)."""

from __future__ import annotations

import pytest

from feedback_support import SECRET, SECRET_ENV, ledger_rows, send_sample, status_of
from config_support import build_config
from newsletter.db import dispose_engines, get_engine
from newsletter.errors import ConfigError, FeedbackError
from newsletter.feedback import providers, ses
from newsletter.feedback.apply import apply_report
from newsletter.feedback.codes import classify, reply_code
from newsletter.feedback.report import Report
from newsletter.models import FeedbackKind as K, FeedbackOutcome, SuppressionSource
from newsletter.personalize import verp


@pytest.mark.parametrize("code, permanent, kind", [
    ("5.1.1", True, K.HARD_BOUNCE), ("5.1.10", True, K.HARD_BOUNCE), ("5.2.1", True, K.HARD_BOUNCE),
    ("5.1.1", False, K.SOFT_BOUNCE),                  # the relay has not given up
    ("5.1.7", True, K.SOFT_BOUNCE),                   # the *sender's* address: not the reader's fault
    ("5.2.2", True, K.SOFT_BOUNCE), ("4.2.2", True, K.SOFT_BOUNCE), ("5.4.4", True, K.SOFT_BOUNCE),
    ("5.7.1", True, K.BLOCKED), ("5.7.26", True, K.BLOCKED), ("5.6.0", True, K.BLOCKED), ("5.3.4", True, K.BLOCKED),
    ("", True, K.SOFT_BOUNCE), ("banana", True, K.SOFT_BOUNCE), ("2.0.0", True, K.OTHER),
])
def test_enhanced_status_codes_decide_the_kind(code, permanent, kind):
    assert classify(code, permanent=permanent) == kind


def test_codes_are_read_from_the_reply_not_its_words():
    assert reply_code("smtp; 550 5.1.1 <a@b>: User unknown") == "5.1.1"
    assert reply_code("550-5.7.1 [192.0.2.1] blocked") == "5.7.1"
    assert reply_code("Mailbox does not exist (user unknown, 5.1.1 somewhere)") == ""


def test_verp_tokens_round_trip_and_bad_templates_are_config_errors():
    mid = "<w1.0123456789abcdef0123456789abcdef@example.org>"
    address = verp.return_path("bounces+{token}@example.org", 42, mid)
    assert address.startswith("bounces+42.") and address.endswith("@example.org") and len(address.split("@")[0]) <= 64
    found = verp.token_in("bounces+{token}@example.org", address.upper())      # some MTAs change the case
    assert verp.parse_token(found) == (42, verp.message_hash(mid))
    assert verp.token_in("bounces+{token}@example.org", "bounces@example.org") == ""
    assert verp.return_path("bounces+{token}@example.org", None, mid) == ""    # a test copy keeps From
    for bad in ("bounces@example.org", "bounces+{token}", "b+{token}@{token}.org"):
        with pytest.raises(ConfigError, match="bounces.return_path"):
            verp.return_path(bad, 1, mid)


def test_payloads_of_the_wrong_shape_are_feedback_errors():
    for parse, value in ((providers.postmark, []), (providers.mailgun, {"signature": {}}),
                         (providers.sendgrid, {"event": "bounce"})):
        with pytest.raises(FeedbackError):
            parse(value)
    with pytest.raises(FeedbackError, match="not an Amazon SNS message"):
        ses.sns_message(b'{"Message": "x"}')
    with pytest.raises(FeedbackError, match="wrong shape"):
        ses.reports({"Type": "Notification", "MessageId": "m",
                     "Message": '{"notificationType": "Bounce", "bounce": {"bouncedRecipients": [1]}}'})


def test_provider_kinds_follow_their_documented_types():
    (hard,) = providers.postmark({"RecordType": "Bounce", "ID": 1, "Type": "HardBounce", "Email": "a@b.c",
                                  "MessageID": "x", "Details": "smtp;550 5.7.1 policy"})
    assert hard.kind == K.BLOCKED                 # the code in the reply outranks the type
    (dns,) = providers.postmark({"RecordType": "Bounce", "ID": 2, "Type": "DnsError", "Email": "a@b.c"})
    assert dns.kind == K.SOFT_BOUNCE
    dropped = providers.sendgrid([{"event": "dropped", "reason": "Bounced Address", "email": "a@b.c", "sg_event_id": "1"},
                                  {"event": "dropped", "reason": "Unsubscribed Address", "email": "a@b.c", "sg_event_id": "2"},
                                  {"event": "bounce", "type": "blocked", "email": "a@b.c", "sg_event_id": "3"}])
    assert [r.kind for r in dropped] == [K.HARD_BOUNCE, K.OTHER, K.BLOCKED]


@pytest.fixture
def sent(tmp_path, db_url, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    config = build_config(tmp_path, database={"url": db_url}, signing={"secret_env": SECRET_ENV})
    rows = send_sample(config, 3)
    yield config, rows
    dispose_engines()


def _report(row, kind=K.HARD_BOUNCE, key="k1", **ids):
    ids = ids or {"message_id": row["message_id"]}
    return Report(kind, SuppressionSource.WEBHOOK, "test", key, email=row["email"], code="5.1.1",
                  detail="550 5.1.1 no such user", **ids)


def test_applying_reports_once_on_each_database(sent):
    config, rows = sent
    engine = get_engine(config)
    first = apply_report(engine, config.bounces, _report(rows[0]))
    assert (first.outcome, first.issue_id, first.list) == (FeedbackOutcome.SUPPRESSED, "w1", "default")
    assert apply_report(engine, config.bounces, _report(rows[0])).outcome == FeedbackOutcome.DUPLICATE
    # The same message named by its VERP token, as a second report: recorded, nothing more to do.
    token = verp.token(rows[0]["subscriber_id"], rows[0]["message_id"])
    assert apply_report(engine, config.bounces, _report(rows[0], key="k2", verp_token=token)).outcome == "recorded"
    stranger = dict(rows[1], email="stranger@example.net", message_id="<nobody@example.net>")
    assert apply_report(engine, config.bounces, _report(stranger, key="k3")).outcome == FeedbackOutcome.UNMATCHED
    assert [status_of(config, r["email"]) for r in rows] == ["bounced", "active", "active"]
    assert [r["status"] for r in ledger_rows(config, "w1")] == ["bounced", "sent", "sent"]
