"""The send journal: what a dead run handed over and what came back, trusted only in the boot it was written."""

from __future__ import annotations

import pytest

from mail_servers import SMTPTestServer
from newsletter.db import get_engine
from newsletter.delivery.journal import JOURNAL_FILE, Journal, boot_id, read_journal
from newsletter.errors import TransientDeliveryError
from newsletter.ledger import Ledger
from newsletter.models import Delivery, Recipient
from newsletter.pipeline import send_issue
from newsletter.render.saved import render_dir
from newsletter.subscribers.store import SubscriberStore
from store_support import make_config, smtp_delivery, write_csv, write_issue

pytestmark = pytest.mark.skipif(boot_id() is None, reason="this system does not tell its boot id")


def person(sid: int) -> Recipient:
    return Recipient(email=f"r{sid}@example.org", message_id=f"<m{sid}@example.org>", subscriber_id=sid)


def test_the_last_event_of_each_subscriber_counts(tmp_path):
    journal = Journal(tmp_path)
    journal.handed([person(1), person(2), person(3), person(4)])
    journal.settled([(person(1), Delivery("r1@example.org", "<m1@example.org>")),
                     (person(2), TransientDeliveryError("451 later")),
                     (person(3), None)])                      # ambiguous: stays handed over
    journal.handed([person(2)])
    journal.settled([(person(2), Delivery("r2@example.org", "<m2@example.org>"))])
    journal.close(remove=False)
    assert read_journal(tmp_path) == (journal.run_id, {1: ("S", "<m1@example.org>"), 2: ("S", "<m2@example.org>"),
                                                       3: ("W", ""), 4: ("W", "")})
    assert Journal(tmp_path).run_id != journal.run_id              # each run its own


def test_a_journal_from_another_boot_or_none_at_all_is_not_trusted(tmp_path):
    assert read_journal(tmp_path) is None
    (tmp_path / JOURNAL_FILE).write_text("B 00000000-another-boot r1\nS 1 <m1@x>\n", encoding="utf-8")
    assert read_journal(tmp_path) is None                     # its tail may have been lost
    (tmp_path / JOURNAL_FILE).write_text(f"B {boot_id()} r1\nS 1 <m1@x>\ngarbage\nW 2", encoding="utf-8")
    assert read_journal(tmp_path) == ("r1", {1: ("S", "<m1@x>"), 2: ("W", "")})


def test_a_clean_run_removes_its_journal_and_an_untrusted_one_leaves_rows_unknown(tmp_path):
    with SMTPTestServer() as server:
        config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config()))
        SubscriberStore(get_engine(config)).import_csv(write_csv(tmp_path / "list.csv", 20), "default")
        write_issue(config)
        ledger = Ledger(get_engine(config))
        ledger.plan("w1", "default")
        ledger.claim("w1", "default", after_id=0, limit=5, run_id="r1")   # a run that died: 5 "sending"
        folder = render_dir(config.paths.state, "w1")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / JOURNAL_FILE).write_text("B written-before-a-reboot r1\n", encoding="utf-8")
        report = send_issue(config, "w1")
    assert (report.recovered_unknown, report.recovered_pending, report.sent) == (5, 0, 15)
    assert not (folder / JOURNAL_FILE).exists()


def test_rows_claimed_but_never_handed_over_are_sent_normally(tmp_path):
    with SMTPTestServer() as server:
        config = make_config(tmp_path, **smtp_delivery(server.port, smtp=server.smtp_config()))
        SubscriberStore(get_engine(config)).import_csv(write_csv(tmp_path / "list.csv", 20), "default")
        write_issue(config)
        ledger = Ledger(get_engine(config))
        ledger.plan("w1", "default")
        folder = render_dir(config.paths.state, "w1")
        journal = Journal(folder)                                      # the dead run's journal:
        claimed, _, _ = ledger.claim("w1", "default", after_id=0, limit=5, run_id=journal.run_id)
        first = Recipient(claimed[0].email, "<w1.first@example.org>", subscriber_id=claimed[0].subscriber_id)
        second = Recipient(claimed[1].email, "", subscriber_id=claimed[1].subscriber_id)
        journal.handed([first, second])                                # two handed over,
        journal.settled([(first, Delivery(first.email, first.message_id))])   # one delivered
        journal.close(remove=False)
        report = send_issue(config, "w1")
    assert (report.recovered_sent, report.recovered_unknown, report.recovered_pending) == (1, 1, 3)
    assert report.sent == 18 and len(server.messages) == 18
    assert {r for m in server.messages for r in m.rcpt_tos}.isdisjoint({first.email, second.email})
    assert Ledger(get_engine(config)).rows("w1", "sent", limit=1)[0][:2] == (first.email, first.message_id)
