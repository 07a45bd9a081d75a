"""The send loop over a real SMTP server (aiosmtpd): once per address, retries, bounces, bad input."""

from __future__ import annotations

import collections
import re
import threading
import time

import pytest

from mail_servers import DeferFirst, HTTPMailAPIServer, SMTPTestServer, free_port
from newsletter.backends.base import Backend
from newsletter.pipeline import send_issue, send_test
from newsletter.errors import (
    ConfigError,
    DeliveryError,
    IssueError,
    StopRun,
    SubscriberError,
    TransientDeliveryError,
)
from newsletter.ledger import Ledger, parse_reply
from newsletter.models import Delivery
from newsletter.delivery.pacing import RateLimiter
from newsletter.delivery.lock import send_lock
from newsletter.db import get_engine
from newsletter.subscribers.store import SubscriberStore
from store_support import make_config, smtp_delivery, write_csv, write_issue  # noqa: F401

TOKEN = re.compile(r"NLT[0-9a-f]{16}_")


@pytest.fixture
def server():
    with SMTPTestServer() as srv:
        yield srv


def setup_list(config, tmp_path, n: int) -> SubscriberStore:
    """Import n subscribers into the default list and build issue w1."""
    store = SubscriberStore(get_engine(config))
    assert store.import_csv(write_csv(tmp_path / "list.csv", n), "default").added == n
    write_issue(config)
    return store


def per_address(server) -> collections.Counter:
    """Return how many messages each address received."""
    return collections.Counter(rcpt for m in server.messages for rcpt in m.rcpt_tos)


def test_thousand_subscribers_get_one_message_each_and_a_rerun_sends_none(tmp_path, server, db_url):
    config = make_config(tmp_path, db_url, **smtp_delivery(server.port, smtp=server.smtp_config()))
    setup_list(config, tmp_path, 1000)
    report = send_issue(config, "w1")
    assert (report.sent, report.to_send, report.state) == (1000, 1000, "sent")
    counts = per_address(server)
    assert len(server.messages) == 1000 and set(counts.values()) == {1}
    assert set(counts) == {f"user{i}@example.org" for i in range(1000)}
    ids = {m.message["Message-ID"] for m in server.messages}
    assert len(ids) == 1000
    sample = next(m.message for m in server.messages if m.rcpt_tos == ["user7@example.org"])
    assert sample["To"] == "User 7 <user7@example.org>" and sample["Subject"] == "Weekly digest"
    assert "Hello User 7 from Town 0" in sample.get_body(("plain",)).get_content()
    assert not any(TOKEN.search(m.data.decode("utf-8", "replace")) for m in server.messages)
    assert Ledger(get_engine(config)).counts("w1")["sent"] == 1000

    again = send_issue(config, "w1")
    assert (again.to_send, again.sent) == (0, 0) and len(server.messages) == 1000


def test_a_550_bounces_that_subscriber_and_the_others_go_on(tmp_path):
    with SMTPTestServer(lambda a: 550 if a == "user3@example.org" else 250) as server:
        config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config()))
        store = setup_list(config, tmp_path, 20)
        report = send_issue(config, "w1")
    assert (report.sent, report.bounced, report.state) == (19, 1, "sent")
    assert "user3@example.org" not in per_address(server) and len(server.messages) == 19
    assert store.get("user3@example.org", "default").status == "bounced"
    [(email, _mid, reply)] = Ledger(get_engine(config)).rows("w1", "bounced")
    assert email == "user3@example.org" and parse_reply(reply) == ("recipient", "550 5.1.1 Mailbox unavailable")
    sent = Ledger(get_engine(config)).rows("w1", "sent", limit=1)[0][2]
    assert parse_reply(sent) == ("delivered", "250 2.0.0 Ok: queued")


def test_temporary_failures_are_retried_with_backoff(tmp_path):
    with SMTPTestServer(DeferFirst("user2@example.org", "user5@example.org", times=2)) as server:
        config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config(), max_attempts=3))
        setup_list(config, tmp_path, 10)
        report = send_issue(config, "w1")
    assert (report.sent, report.deferred, report.retries) == (10, 0, 4)
    assert set(per_address(server).values()) == {1} and len(server.messages) == 10


def test_persistent_temporary_failure_is_left_deferred_for_the_next_run(tmp_path):
    refuse = {"user1@example.org"}
    with SMTPTestServer(lambda a: 452 if a in refuse else 250) as server:
        config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config(), max_attempts=2))
        setup_list(config, tmp_path, 5)
        first = send_issue(config, "w1")
        assert (first.sent, first.deferred, first.state) == (4, 1, "sending")
        assert first.counts["deferred"] == 1
        refuse.clear()
        second = send_issue(config, "w1")
    assert (second.to_send, second.sent, second.state) == (1, 1, "sent")
    assert set(per_address(server).values()) == {1} and len(server.messages) == 5


def test_bad_credentials_stop_before_anything_is_marked(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    with SMTPTestServer(auth=("news", "right")) as server:
        smtp = server.smtp_config(username="news", password_env="TEST_SMTP_PASSWORD")
        config = make_config(tmp_path, **smtp_delivery(server.port, smtp=smtp))
        setup_list(config, tmp_path, 5)
        with pytest.raises(ConfigError, match="refused the login"):
            send_issue(config, "w1")
    assert server.messages == []
    assert not Ledger(get_engine(config)).is_frozen("w1")


def test_unreachable_server_is_a_clear_error_and_nothing_is_marked(tmp_path):
    config = make_config(tmp_path, **smtp_delivery(free_port()))
    setup_list(config, tmp_path, 3)
    with pytest.raises(ConfigError, match=r"cannot reach SMTP server 127\.0\.0\.1:\d+"):
        send_issue(config, "w1")
    assert not Ledger(get_engine(config)).is_frozen("w1")


def test_too_many_failures_pause_the_send_and_a_rerun_resumes(tmp_path):
    broken = [True]
    asked = []

    def reply(address):
        asked.append(address)
        return 451 if broken[0] else 250

    with SMTPTestServer(reply) as server:
        delivery = smtp_delivery(server.port, smtp=server.smtp_config(), max_attempts=1, pause_window=10,
                                 pause_failure_ratio=0.5, pause_consecutive=20)
        config = make_config(tmp_path, **delivery)
        setup_list(config, tmp_path, 300)
        first = send_issue(config, "w1")
        assert first.paused.startswith("10 of the last 10 messages failed (last reply: 451 4.7.1")
        assert first.counts["pending"] > 0 and first.counts["sending"] == 0 and first.state == "sending"
        assert server.messages == [] and len(asked) == 10      # the first 20 go out alone: 10 touched
        broken[0] = False
        second = send_issue(config, "w1")
    assert (second.paused, second.state, second.counts["sent"]) == ("", "sent", 300)
    assert set(per_address(server).values()) == {1} and len(server.messages) == 300


def test_dry_run_sends_and_marks_nothing(tmp_path, server):
    config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config()))
    setup_list(config, tmp_path, 7)
    report = send_issue(config, "w1", dry_run=True)
    assert (report.would_send, report.sent) == (7, 0) and report.would_send_bytes > 7 * 500
    assert server.messages == [] and not Ledger(get_engine(config)).is_frozen("w1")


def test_test_copy_goes_outside_the_ledger(tmp_path, server):
    config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config()))
    setup_list(config, tmp_path, 3)
    delivery = send_test(config, "w1", "User1@Example.org")
    [received] = server.messages
    assert received.rcpt_tos == ["User1@example.org"] and delivery.recipient == "User1@example.org"
    assert received.message["Subject"] == "[TEST] Weekly digest"
    assert "Hello User 1" in received.message.get_body(("plain",)).get_content()  # their own fields
    assert not Ledger(get_engine(config)).is_frozen("w1")
    with pytest.raises(SubscriberError, match="invalid email address"):
        send_test(config, "w1", "nobody")


def test_issue_never_built_and_unknown_list(tmp_path, server):
    config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config()))
    setup_list(config, tmp_path, 3)
    with pytest.raises(IssueError, match="'w2' was never built"):
        send_issue(config, "w2")
    with pytest.raises(SubscriberError, match="unknown list 'nope' \\(known lists: default\\)"):
        send_issue(config, "w1", list_name="nope")
    assert server.messages == []


def test_subscriber_who_unsubscribes_mid_send_is_skipped(tmp_path, server):
    config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config()))
    store = setup_list(config, tmp_path, 4)
    Ledger(get_engine(config)).plan("w1", "default")           # as if a run had started
    store.set_status("user2@example.org", "default", "unsubscribed")
    report = send_issue(config, "w1")
    assert (report.sent, report.skipped) == (3, 1) and "user2@example.org" not in per_address(server)


def test_a_second_sender_of_the_same_issue_is_refused(tmp_path, server):
    config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config()))
    setup_list(config, tmp_path, 2)
    with send_lock(config.paths.state, get_engine(config), "w1"):
        with pytest.raises(IssueError, match="being sent by another process"):
            send_issue(config, "w1")
    assert send_issue(config, "w1").sent == 2


# -- plugin backends that fail in the middle of a send -------------------------------------

class _Plugin:
    """State shared with the plugin backends below (they are built by name from the config)."""

    accepted: list[str] = []
    fail_after = 0
    error: BaseException = RuntimeError("socket closed unexpectedly")
    lock = threading.Lock()



class FlakyBackend(Backend):
    """Accepts fail_after messages, then raises _Plugin.error for every later batch."""

    max_batch = 5

    def send(self, source, batch):
        with _Plugin.lock:
            if len(_Plugin.accepted) >= _Plugin.fail_after:
                raise _Plugin.error
            _Plugin.accepted.extend(r.email for r in batch)
        return [Delivery(r.email, r.message_id, reply="250 ok") for r in batch]


@pytest.mark.parametrize("error, raised, unknown", [
    (RuntimeError("socket closed unexpectedly"), DeliveryError, 5),
    (ConfigError("API key revoked"), ConfigError, 0),
    (StopRun("the API refused the sender", reply="HTTP 400: sender domain not verified"), StopRun, 0),
])
def test_backend_failing_mid_send_loses_nothing(tmp_path, error, raised, unknown):
    _Plugin.accepted, _Plugin.fail_after, _Plugin.error = [], 20, error
    config = make_config(tmp_path, backend="test_deliver:FlakyBackend", concurrency=1)
    setup_list(config, tmp_path, 60)
    with pytest.raises(raised):
        send_issue(config, "w1")
    counts = Ledger(get_engine(config)).counts("w1")
    assert counts["sent"] == len(_Plugin.accepted) == 20
    # a broken batch may have gone out (unknown); a refused one did not (it stays pending)
    assert counts["unknown"] == unknown and counts["sending"] == counts["bounced"] == 0
    assert counts["pending"] == 60 - 20 - unknown       # sent by the next run
    _Plugin.fail_after = 10_000
    report = send_issue(config, "w1")
    # unknown rows are sent again only with retry_unknown (they may have gone out)
    assert report.sent == 40 - unknown and report.counts["unknown"] == unknown
    assert len(_Plugin.accepted) == len(set(_Plugin.accepted)) == 20 + report.sent


def test_rate_limiter_never_lets_messages_out_early():
    limiter = RateLimiter(200.0)
    start = time.monotonic()
    for _ in range(20):
        assert limiter.acquire(1)
    # 20 messages at 200/s: the 20th may leave 19/200 s after the first, never sooner.
    assert time.monotonic() - start >= 19 / 200
    stop = threading.Event()
    stop.set()
    assert limiter.acquire(5, stop) is False


def test_server_gone_mid_send_pauses_and_nothing_is_lost(tmp_path):
    _Plugin.accepted, _Plugin.fail_after = [], 20
    _Plugin.error = TransientDeliveryError("cannot reach the server: connection refused")
    config = make_config(tmp_path, backend="test_deliver:FlakyBackend", concurrency=1, max_attempts=2,
                         backoff_seconds=0.001, pause_window=10, pause_failure_ratio=0.5)
    setup_list(config, tmp_path, 60)
    first = send_issue(config, "w1")
    assert re.match(r"(([6-9]|10) of the last 10 messages failed|10 messages in a row failed) "
                    r"\(last reply: cannot reach", first.paused)
    assert first.counts["sent"] == 20 and first.counts["sending"] == 0
    assert first.counts["deferred"] + first.counts["pending"] == 40
    _Plugin.fail_after = 10_000
    second = send_issue(config, "w1")
    assert second.state == "sent" and second.counts["sent"] == 60
    assert sorted(_Plugin.accepted) == sorted(f"user{i}@example.org" for i in range(60))


def test_batch_http_provider_with_one_rejected_address(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_MAIL_API_KEY", "test-api-key")
    with HTTPMailAPIServer("postmark", reply_for=lambda a: 550 if a == "user42@example.org" else 250) as api:
        config = make_config(tmp_path, backend="http", http=api.http_config())
        store = setup_list(config, tmp_path, 120)
        report = send_issue(config, "w1")
    assert (report.sent, report.bounced, report.state) == (119, 1, "sent")
    assert sorted(m["to"] for m in api.messages) == sorted(f"user{i}@example.org" for i in range(120) if i != 42)
    assert store.get("user42@example.org", "default").status == "bounced"
    assert max(c["recipients"] for c in api.calls) > 1          # it really went in batches
