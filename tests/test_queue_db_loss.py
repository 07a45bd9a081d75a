"""A worker whose PostgreSQL connection the server drops (pg_terminate_backend, a restarted
server, a proxy timing out) keeps its chunk: the send still ends `sent`, each subscriber once."""

from __future__ import annotations

import collections

import pytest
from sqlalchemy import select, text

from mail_servers import SMTPTestServer
from newsletter.db import dispose_engines, get_engine
from newsletter.delivery.lock import _chunk_key
from newsletter.ledger import Ledger
from newsletter.models import ChunkState
from newsletter.pipeline import send_issue
from newsletter.queue.enqueue import open_chunks
from newsletter.queue.tables import queue_chunks
from queue_support import Workers, populate, wait_for, write_config

pytestmark = pytest.mark.postgres

ROWS = 600


def _terminate_lock_holder(engine, chunk_id: int) -> int:
    """Terminate the server session holding chunk_id's advisory lock; return how many were ended."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = :key"), {"key": _chunk_key(chunk_id)}).scalar_one()


def test_the_chunk_lock_session_dropped_mid_chunk_the_send_still_ends_sent(tmp_path, pg_url):
    with SMTPTestServer() as server:
        cfg_file = write_config(tmp_path, pg_url, smtp_port=server.port, queue=f"chunk_size = {ROWS}",
                                delivery="rate_per_second = 150")
        config = populate(cfg_file, ROWS)
        engine = get_engine(config)
        workers = Workers(cfg_file)
        try:
            workers.start(1)
            send_issue(config, "w1")
            wait_for(lambda: Ledger(engine).counts("w1")["sent"] >= 100, 30, "the send to start", workers.output)
            [chunk_id] = engine.connect().execute(select(queue_chunks.c.id)).scalars().all()
            assert _terminate_lock_holder(engine, chunk_id) == 1
            wait_for(lambda: open_chunks(engine, "w1") == 0 and Ledger(engine).counts("w1")["sent"] == ROWS,
                     60, "the worker to finish", workers.output)
            wait_for(lambda: Ledger(engine).issue_state("w1") == "sent", 20, "the issue to be sent",
                     lambda: f"{Ledger(engine).issue_state('w1')}\n{workers.output()}")
        finally:
            workers.stop()
        with server.lock:
            counts = collections.Counter(r for m in server.messages for r in m.rcpt_tos)
    assert len(counts) == ROWS and set(counts.values()) == {1}
    with engine.connect() as conn:
        assert conn.execute(select(queue_chunks.c.state)).scalars().all() == [ChunkState.DONE]
    dispose_engines()
