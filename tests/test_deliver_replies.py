"""Whole sends against servers that misbehave the way real ones do: nobody bounced for a fault of
the server or our settings, the run stopped before it does harm, no second copy of a message the
server may have taken, international domains in their ASCII form."""

from __future__ import annotations

import collections
import threading

import pytest

from mail_servers import DROP, HTTPMailAPIServer, SMTPTestServer
from newsletter.db import get_engine
from newsletter.errors import StopRun
from newsletter.ledger import Ledger, parse_reply
from newsletter.pipeline import send_issue
from newsletter.subscribers.store import SubscriberStore
from store_support import make_config, smtp_delivery, write_csv, write_issue


class Asked:
    """A per-recipient reply that counts the recipients the server was asked about (touched)."""

    def __init__(self, reply):
        self.reply, self.asked, self.lock = reply, [], threading.Lock()

    def __call__(self, address: str):
        with self.lock:
            self.asked.append(address)
            return self.reply(address, len(self.asked))


def setup_list(config, tmp_path, n: int) -> SubscriberStore:
    store = SubscriberStore(get_engine(config))
    assert store.import_csv(write_csv(tmp_path / "list.csv", n), "default").added == n
    write_issue(config)
    return store


def smtp_config(tmp_path, server, **delivery):
    return make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config(connections=4),
                                                 concurrency=4, **delivery))


def statuses(store: SubscriberStore, n: int) -> collections.Counter:
    return collections.Counter(store.get(f"user{i}@example.org", "default").status for i in range(n))


@pytest.mark.parametrize("reply", [
    "554 5.7.1 <x>: Relay access denied",             # a policy code: stops at the first reply
    "550 Relaying not permitted",                     # no enhanced code: reads as the address ...
    "550 5.1.1 User unknown",                         # ... or says so: the breaker stops it
])
def test_a_server_refusing_everyone_touches_few_and_bounces_none(tmp_path, reply):
    asked = Asked(lambda address, n: reply)
    with SMTPTestServer(asked) as server:
        config = smtp_config(tmp_path, server)
        store = setup_list(config, tmp_path, 1000)
        if "5.7.1" in reply:
            with pytest.raises(StopRun, match="Relay access denied; the run stopped and nobody was marked"):
                send_issue(config, "w1")
        else:
            report = send_issue(config, "w1")
            assert report.paused.startswith("10 messages in a row failed") and report.bounced == 0
    assert len(asked.asked) <= max(10, 1000 // 100) and server.messages == []
    assert statuses(store, 1000) == {"active": 1000}
    counts = Ledger(get_engine(config)).counts("w1")
    assert counts["pending"] == 1000 and counts["bounced"] == 0
    # the refusal is kept on the rows it came for, with its class
    replies = {parse_reply(r)[1] for _e, _m, r in Ledger(get_engine(config)).rows("w1", "pending", limit=20) if r}
    assert any(r.startswith(reply) for r in replies)


@pytest.mark.parametrize("where", ["rcpt", "data"])
def test_a_policy_refusal_of_one_mailbox_fails_that_row_and_the_run_goes_on(tmp_path, where):
    # A recipient's own filter ("5.7.1 ... Access denied") reads like a policy refusal of us; the
    # breaker tells them apart: the others are accepted, so only this row fails, nobody bounces.
    refused = "user7@example.org"
    reply = "550 5.7.1 <user7@example.org>: Recipient address rejected: Access denied"
    answer = (lambda address: reply if address == refused else 250)
    with SMTPTestServer(**({"reply_for": answer} if where == "rcpt" else {"data_reply": answer})) as server:
        config = smtp_config(tmp_path, server)
        store = setup_list(config, tmp_path, 300)
        report = send_issue(config, "w1")
        assert (report.sent, report.failed, report.bounced, report.paused) == (299, 1, 0, "")
        assert send_issue(config, "w1").sent == 0          # the next run does not stop on it either
    assert refused not in {m.rcpt_tos[0] for m in server.messages} and len(server.messages) == 299
    assert statuses(store, 300) == {"active": 300}
    rows = Ledger(get_engine(config)).rows("w1", "failed")
    assert [(e, parse_reply(r)) for e, _m, r in rows] == [(refused, ("sender", reply))]


def test_real_bounces_are_recorded_once_the_run_shows_the_server_is_fine(tmp_path):
    bad = {"user3@example.org", "user120@example.org", "user199@example.org"}
    with SMTPTestServer(lambda a: "550 5.1.1 User unknown" if a in bad else 250) as server:
        config = smtp_config(tmp_path, server)
        store = setup_list(config, tmp_path, 200)
        report = send_issue(config, "w1")
    assert (report.sent, report.bounced, report.paused, report.state) == (197, 3, "", "sent")
    assert {a for a in bad if store.get(a, "default").status == "bounced"} == bad
    rows = Ledger(get_engine(config)).rows("w1", "bounced")
    assert {e for e, _m, _r in rows} == bad and {parse_reply(r)[0] for _e, _m, r in rows} == {"recipient"}


def test_a_server_that_starts_refusing_everyone_mid_run_stops_it_and_bounces_nobody_after(tmp_path):
    asked = Asked(lambda address, n: 250 if n <= 150 else "550 5.1.1 User unknown")
    with SMTPTestServer(asked) as server:
        config = smtp_config(tmp_path, server)
        store = setup_list(config, tmp_path, 1000)
        report = send_issue(config, "w1")
    assert report.paused.startswith("10 messages in a row failed") and report.sent == 150
    # the streak of ten, which a late success on each of the other three connections may have
    # restarted, plus the message each connection had in flight
    assert len(asked.asked) <= 150 + 4 * 10 + 4
    assert report.bounced == 0 and statuses(store, 1000) == {"active": 1000}
    counts = Ledger(get_engine(config)).counts("w1")
    assert counts["sent"] == 150 and counts["pending"] == 850 and counts["sending"] == 0


def test_a_dropped_reply_gives_one_unknown_row_and_no_second_copy(tmp_path):
    with SMTPTestServer(data_reply=lambda a: DROP if a == "user5@example.org" else 250) as server:
        config = smtp_config(tmp_path, server)
        setup_list(config, tmp_path, 100)
        first = send_issue(config, "w1")
        assert (first.sent, first.unknown, first.state) == (99, 1, "sent")
        [(email, _mid, reply)] = Ledger(get_engine(config)).rows("w1", "unknown")
        assert email == "user5@example.org" and parse_reply(reply)[0] == "ambiguous"
        again = send_issue(config, "w1")
        copies = collections.Counter(r for m in server.messages for r in m.rcpt_tos)
    assert (again.to_send, again.sent) == (0, 0)
    assert len(copies) == 100 and set(copies.values()) == {1}       # the server kept it: once


def test_an_api_refusing_the_sender_bounces_nobody(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_MAIL_API_KEY", "test-api-key")
    refusal = (400, {"message": "'from' parameter is not a valid address. please check documentation"})
    with HTTPMailAPIServer("mailgun", refuse_all=refusal) as api:
        config = make_config(tmp_path, backend="http", http=api.http_config())
        store = setup_list(config, tmp_path, 1000)
        with pytest.raises(StopRun, match=r"refused the request: HTTP 400: .*nobody was marked bounced"):
            send_issue(config, "w1")
    assert [c["recipients"] for c in api.calls] == [10]      # the first ten, alone; never halved
    assert statuses(store, 1000) == {"active": 1000}
    assert Ledger(get_engine(config)).counts("w1")["pending"] == 1000


def test_an_api_answering_after_the_timeout_leaves_its_messages_unknown_never_resent(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_MAIL_API_KEY", "test-api-key")
    with HTTPMailAPIServer("postmark", answer_delay=1.0) as api:
        config = make_config(tmp_path, backend="http", http=api.http_config(timeout=0.3, max_retries=3))
        setup_list(config, tmp_path, 30)
        report = send_issue(config, "w1")
        assert report.paused.startswith("10 messages in a row failed")
        assert len(api.calls) == 1 and len(api.messages) == 10      # accepted, though we never heard
        api.answer_delay = 0
        again = send_issue(config, "w1")
    copies = collections.Counter(m["to"] for m in api.messages)
    assert again.sent == 20 and again.counts["unknown"] == 10 and set(copies.values()) == {1}


def test_an_international_domain_arrives_in_punycode_where_smtputf8_is_not_offered(tmp_path):
    with SMTPTestServer(smtputf8=False) as server:
        config = smtp_config(tmp_path, server)
        store = setup_list(config, tmp_path, 3)
        store.add("reader@bücher.example", name="Leser")
        store.add("zoë@example.org")
        report = send_issue(config, "w1")
    got = sorted(r for m in server.messages for r in m.rcpt_tos)
    assert "reader@xn--bcher-kva.example" in got and len(got) == 4
    # the non-ASCII local part cannot go through this server: that row fails, nobody is bounced
    assert (report.sent, report.failed, report.bounced) == (4, 1, 0)
    assert store.get("zoë@example.org", "default").status == "active"
