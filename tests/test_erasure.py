"""Erasing a subscriber: the address and its data go (ledger copies too), a hashed suppression stays."""

from __future__ import annotations


import pytest
from sqlalchemy import select

from newsletter.db import deliveries, engine_for_url, erased_addresses
from newsletter.errors import SubscriberError
from newsletter.ledger import Ledger
from newsletter.subscribers.store import SubscriberStore


def test_erase_removes_everything_but_a_hash_and_blocks_coming_back(db_url, tmp_path):
    engine = engine_for_url(db_url)
    store, ledger = SubscriberStore(engine), Ledger(engine)
    store.add("Gone.Person@Example.org", name="Gone Person", fields={"city": "Leeds"})
    store.add("stays@example.org")
    assert ledger.plan("w1", "default") == 2

    assert store.erase("gone.person@example.org", "default") is True
    assert store.erase("gone.person@example.org", "default") is False
    assert store.get("gone.person@example.org") is None
    with engine.connect() as conn:
        emails = sorted(conn.execute(select(deliveries.c.email)).scalars())
        hashes = list(conn.execute(select(erased_addresses)).all())
    assert "stays@example.org" in emails and not any("gone" in e.lower() for e in emails)
    assert len(hashes) == 1 and "gone" not in str(hashes[0]).lower()
    assert ledger.counts("w1")["pending"] == 2          # the history's numbers stay true

    with pytest.raises(SubscriberError, match="erased"):
        store.add("GONE.PERSON@example.org")
    path = tmp_path / "again.csv"
    path.write_text("email,name\ngone.person@example.org,Back\nnew@example.org,New\n")
    report = store.import_csv(path, "default")
    assert (report.added, report.kept_suppressed) == (1, 1)
    assert store.get("gone.person@example.org") is None
    # Another list never had it erased.
    assert store.add("gone.person@example.org", list_name="other").status == "active"
