"""The delivery ledger: plan, claim, record, recover, finish (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from newsletter.errors import SubscriberError
from newsletter.ledger import Ledger, Outcome, format_reply, parse_reply
from newsletter.db import engine_for_url
from newsletter.subscribers.store import SubscriberStore


@pytest.fixture
def ledger(db_url) -> Ledger:
    return Ledger(engine_for_url(db_url))


@pytest.fixture
def store(ledger) -> SubscriberStore:
    store = SubscriberStore(ledger.engine)
    for i in range(6):
        store.add(f"s{i}@example.org", name=f"S{i}", fields={"city": f"C{i}"})
    store.set_status("s5@example.org", "default", "unsubscribed")
    return store


def test_plan_freezes_the_active_subscribers_once(ledger, store):
    assert ledger.is_frozen("w1") is False and ledger.issue_state("w1") is None
    assert ledger.plan("w1", "default") == 5
    store.add("late@example.org")
    assert ledger.plan("w1", "default") == 5            # idempotent: a re-run adds nobody
    assert ledger.counts("w1")["pending"] == 5
    assert ledger.is_frozen("w1") and ledger.issue_state("w1") == "sending"
    assert ledger.lists_of("w1") == ["default"]


def test_plan_refuses_a_list_without_active_subscribers(ledger, store):
    with pytest.raises(SubscriberError, match="no active subscriber"):
        ledger.plan("w1", "empty")
    assert ledger.issue_state("w1") is None


def test_claim_in_chunks_and_record(ledger, store):
    ledger.plan("w1", "default")
    first, skipped, last = ledger.claim("w1", "default", after_id=0, limit=3)
    assert [c.subscriber.email for c in first] == ["s0@example.org", "s1@example.org", "s2@example.org"]
    assert first[0].subscriber.fields == {"city": "C0"} and skipped == 0
    assert ledger.counts("w1")["sending"] == 3
    rest, _, last2 = ledger.claim("w1", "default", after_id=last, limit=3)
    assert len(rest) == 2 and last2 > last
    assert ledger.claim("w1", "default", after_id=last2, limit=3) == ([], 0, last2)
    ledger.record([Outcome(c.row_id, "sent", f"<{c.row_id}@x>", "p1", "250 ok") for c in first + rest])
    assert ledger.counts("w1")["sent"] == 5
    assert ledger.finish("w1", "default") == "sent"
    assert [issue for issue, _ in ledger.sent_issues()] == ["w1"]
    assert ledger.sent_issues()[0][1].tzinfo is not None


def test_bounce_suppresses_the_subscriber(ledger, store):
    ledger.plan("w1", "default")
    claimed, _, _ = ledger.claim("w1", "default", after_id=0, limit=1)
    ledger.record([Outcome(claimed[0].row_id, "bounced", reply="550 no such user",
                           subscriber_id=claimed[0].subscriber.id)])
    assert store.get("s0@example.org", "default").status == "bounced"
    assert ledger.rows("w1", "bounced") == [("s0@example.org", "", "550 no such user")]


def test_subscriber_who_leaves_after_planning_is_skipped(ledger, store):
    ledger.plan("w1", "default")
    store.set_status("s1@example.org", "default", "unsubscribed")
    store.remove("s2@example.org", "default")
    claimed, skipped, _ = ledger.claim("w1", "default", after_id=0, limit=10)
    assert skipped == 2 and [c.subscriber.email for c in claimed] == ["s0@example.org", "s3@example.org",
                                                                       "s4@example.org"]
    # the removed subscriber's row keeps its address (history)
    assert {r[0] for r in ledger.rows("w1", "skipped")} == {"s1@example.org", "s2@example.org"}


def test_recover_turns_in_flight_rows_into_unknown(ledger, store):
    ledger.plan("w1", "default")
    claimed, _, _ = ledger.claim("w1", "default", after_id=0, limit=2)
    # the process dies here: two rows are "sending", and no journal tells what became of them
    assert ledger.recover("w1") == (2, 0, 0)
    counts = ledger.counts("w1")
    assert (counts["unknown"], counts["pending"], counts["sending"]) == (2, 3, 0)
    assert ledger.claimable("w1", "default") == 3
    assert ledger.claimable("w1", "default", retry_unknown=True) == 5
    again, _, _ = ledger.claim("w1", "default", after_id=0, limit=10)
    assert {c.row_id for c in again}.isdisjoint({c.row_id for c in claimed})
    ledger.record([Outcome(c.row_id, "sent") for c in again])
    assert ledger.finish("w1", "default") == "sent"     # unknown rows do not hold the issue open
    retried, _, _ = ledger.claim("w1", "default", after_id=0, limit=10, retry_unknown=True)
    assert {c.row_id for c in retried} == {c.row_id for c in claimed}


def test_recover_settles_in_flight_rows_by_the_journal(ledger, store):
    ledger.plan("w1", "default")
    claimed, _, _ = ledger.claim("w1", "default", after_id=0, limit=4, run_id="run-1")
    sids = [c.subscriber_id for c in claimed]
    # delivered; handed over without a result; refused; never handed over (absent)
    journal = {sids[0]: ("S", "<a@x>"), sids[1]: ("W", ""), sids[2]: ("N", "")}
    assert ledger.recover("w1", journal, "run-1") == (1, 1, 2)
    assert [(e, m) for e, m, _r in ledger.rows("w1", "sent")] == [(claimed[0].email, "<a@x>")]
    assert [e for e, _m, _r in ledger.rows("w1", "unknown")] == [claimed[1].email]
    counts = ledger.counts("w1")
    assert (counts["pending"], counts["sending"]) == (3, 0)
    again = {c.row_id for c in ledger.claim("w1", "default", after_id=0, limit=10, run_id="run-2")[0]}
    assert {claimed[2].row_id, claimed[3].row_id} <= again and not {claimed[0].row_id, claimed[1].row_id} & again
    assert ledger.recover("w1", {}, "run-2") == (0, 0, 3)    # a journal without them: never handed over
    ledger.claim("w1", "default", after_id=0, limit=10, run_id="run-3")
    # a journal speaks only for its own run's rows: run-3's rows may have gone out
    assert ledger.recover("w1", {sid: ("N", "") for sid in sids}, "run-2") == (3, 0, 0)


def test_replies_keep_their_class():
    stored = format_reply("recipient", "550 5.1.1 [no such user]")
    assert stored == "[recipient] 550 5.1.1 [no such user]"
    assert parse_reply(stored) == ("recipient", "550 5.1.1 [no such user]")
    assert parse_reply("550 from an earlier release") == (None, "550 from an earlier release")
    assert parse_reply("[nonsense] 550") == (None, "[nonsense] 550")


def test_deferred_rows_are_claimed_again_and_released_rows_keep_their_attempts(ledger, store):
    ledger.plan("w1", "default")
    claimed, _, _ = ledger.claim("w1", "default", after_id=0, limit=2)
    ledger.record([Outcome(claimed[0].row_id, "deferred", reply="451 try later"),
                   Outcome(claimed[1].row_id, "pending")])
    assert ledger.finish("w1", "default") == "sending"
    again = ledger.claim_rows([claimed[0].row_id, claimed[1].row_id])
    assert [c.row_id for c in again] == [claimed[0].row_id]       # only deferred rows
    ledger.record([Outcome(again[0].row_id, "sent")])
    from sqlalchemy import select
    from newsletter.db import deliveries
    with ledger.engine.connect() as conn:
        attempts = dict(conn.execute(select(deliveries.c.id, deliveries.c.attempts)).all())
    assert attempts[claimed[0].row_id] == 2 and attempts[claimed[1].row_id] == 0


def test_same_issue_to_two_lists(ledger, store):
    store.add("other@example.org", list_name="other")
    ledger.plan("w1", "default")
    ledger.plan("w1", "other")
    assert ledger.counts("w1", "other")["pending"] == 1 and ledger.counts("w1")["pending"] == 6
    claimed, _, _ = ledger.claim("w1", "other", after_id=0, limit=10)
    ledger.record([Outcome(c.row_id, "sent") for c in claimed])
    assert ledger.finish("w1", "other") == "sent"
    assert ledger.issue_state("w1") == "sending"          # the default list is not done yet
    assert [i for i, _ in ledger.sent_issues()] == ["w1"]


def test_record_keeps_each_rows_own_result_and_cuts_long_replies(ledger, store):
    ledger.plan("w1", "default")
    claimed, _, _ = ledger.claim("w1", "default", after_id=0, limit=5)
    assert claimed[0].subscriber.fields == {"city": "C0"} and claimed[0].subscriber.status == "active"
    long_reply = "5.1.1 " + "é" * 3000
    ledger.record([Outcome(claimed[0].row_id, "sent", "<a@x>", "p-1", "250 ok"),
                   Outcome(claimed[1].row_id, "bounced", "<b@x>", reply=long_reply,
                           subscriber_id=claimed[1].subscriber_id),
                   Outcome(claimed[2].row_id, "sent", "<c@x>", "p-2", "250 ok")])
    assert ledger.rows("w1", "sent") == [(claimed[0].email, "<a@x>", "250 ok"), (claimed[2].email, "<c@x>", "250 ok")]
    ((email, mid, reply),) = ledger.rows("w1", "bounced")
    assert (email, mid, reply) == (claimed[1].email, "<b@x>", long_reply[:2000])
    assert store.get(claimed[1].email, "default").status == "bounced"
