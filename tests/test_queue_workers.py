"""Several senders on one PostgreSQL: real `newsletter worker` processes send an issue handed to
the queue through a real SMTP server, exactly once per subscriber, also when one is killed."""

from __future__ import annotations

import collections
import re
import signal
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mail_servers import SMTPTestServer
from newsletter.backends.smtp import SMTPBackend
from newsletter.cli import cli
from newsletter.db import deliveries, dispose_engines, get_engine
from newsletter.delivery.loop import FLUSH_ROWS
from newsletter.ledger import Ledger
from newsletter.models import ChunkState
from newsletter.pipeline import send_issue
from newsletter.queue.enqueue import QueuedSend, open_chunks
from newsletter.queue.progress import live_workers, send_progress
from newsletter.queue.tables import queue_chunks
from queue_support import Workers, populate, wait_for, write_config

pytestmark = pytest.mark.postgres

SUBSCRIBERS = 3000


def _rcpt_counts(server: SMTPTestServer) -> collections.Counter:
    """Return how many messages each address received."""
    with server.lock:
        return collections.Counter(r for m in server.messages for r in m.rcpt_tos)


def _rows(config) -> dict[str, tuple[int, str]]:
    """Return {address: (row id, state)} of issue w1's ledger."""
    with get_engine(config).connect() as conn:
        return {email: (rid, status) for rid, email, status in conn.execute(
            select(deliveries.c.id, deliveries.c.email, deliveries.c.status).where(deliveries.c.issue_id == "w1"))}


def test_three_workers_send_each_subscriber_once(tmp_path, pg_url):
    with SMTPTestServer() as server:
        cfg_file = write_config(tmp_path, pg_url, smtp_port=server.port, queue="chunk_size = 250")
        config = populate(cfg_file, SUBSCRIBERS)
        workers = Workers(cfg_file)
        try:
            workers.start(3)
            engine = get_engine(config)
            wait_for(lambda: len(live_workers(engine, 5)) == 3, 30, "three live workers", workers.output)
            result = CliRunner().invoke(cli, ["--config", str(cfg_file), "workers"])
            assert result.exit_code == 0 and result.output.count("idle") == 3, result.output
            queued = send_issue(config, "w1")
            assert isinstance(queued, QueuedSend)
            assert (queued.rows, queued.chunks, queued.enqueued) == (SUBSCRIBERS, 12, 12)
            # Sending again while the chunks wait or run queues nothing twice.
            again = send_issue(config, "w1")
            assert again.enqueued == 0 and again.open_chunks + _done_chunks(config) == 12
            wait_for(lambda: open_chunks(engine, "w1") == 0, 90, "the workers to finish", workers.output)
        finally:
            workers.stop()
        counts = _rcpt_counts(server)
    assert len(counts) == SUBSCRIBERS and set(counts.values()) == {1}
    assert Ledger(get_engine(config)).counts("w1")["sent"] == SUBSCRIBERS
    assert Ledger(get_engine(config)).issue_state("w1") == "sent"
    progress = send_progress(get_engine(config), "w1", "default")
    assert progress.chunks == {ChunkState.DONE: 12}
    assert sum(w.rows_done for w in progress.workers) == SUBSCRIBERS
    assert len(progress.workers) >= 2, "the chunks were not shared between workers"
    status = CliRunner().invoke(cli, ["--config", str(cfg_file), "status", "w1"])
    assert "queue (list default): chunks: 12 done" in status.output
    assert re.search(r"worker \S+:\d+: \d+ chunks done", status.output), status.output
    dispose_engines()


def _done_chunks(config) -> int:
    """Return how many chunks of w1 are done already."""
    with get_engine(config).connect() as conn:
        return len(conn.execute(select(queue_chunks.c.id).where(queue_chunks.c.state == ChunkState.DONE)).all())


def test_sigkill_one_worker_the_others_finish_its_chunk(tmp_path, pg_url):
    rate = 700.0        # the limit all workers share: the send lasts several seconds
    with SMTPTestServer() as server:
        cfg_file = write_config(tmp_path, pg_url, smtp_port=server.port, queue="chunk_size = 300",
                                delivery=f"rate_per_second = {rate}")
        config = populate(cfg_file, SUBSCRIBERS)
        engine = get_engine(config)
        workers = Workers(cfg_file)
        try:
            workers.start(3)
            wait_for(lambda: len(live_workers(engine, 5)) == 3, 30, "three live workers", workers.output)
            started = time.monotonic()
            send_issue(config, "w1")
            wait_for(lambda: sum(_rcpt_counts(server).values()) >= 900, 60, "a third of the send", workers.output)

            def running_chunk():
                with engine.connect() as conn:
                    return conn.execute(select(queue_chunks).where(queue_chunks.c.state == ChunkState.RUNNING)
                                        .order_by(queue_chunks.c.seq)).first()
            victim_chunk = wait_for(running_chunk, 10, "a running chunk", workers.output)
            victim = workers.by_pid(int(victim_chunk.worker.rsplit(":", 1)[1]))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            sent_at_kill = sum(_rcpt_counts(server).values())
            assert sent_at_kill < SUBSCRIBERS - 300, "the kill came too late to test anything"
            wait_for(lambda: open_chunks(engine, "w1") == 0, 120, "the others to finish", workers.output)
            elapsed = time.monotonic() - started
        finally:
            workers.stop()
        counts = _rcpt_counts(server)
    rows = _rows(config)
    states = collections.Counter(state for _rid, state in rows.values())
    unknown = {email for email, (_rid, state) in rows.items() if state == "unknown"}
    # 0 duplicates; everyone recorded sent got exactly one copy; unknown ones got at most one.
    assert max(counts.values()) == 1
    assert states["sent"] + states["unknown"] == SUBSCRIBERS, states
    assert all(counts[email] == 1 for email, (_rid, state) in rows.items() if state == "sent")
    assert set(counts) - {e for e, (_r, s) in rows.items() if s == "sent"} <= unknown
    # At most the killed worker's in flight: the rows its send loop had claimed and not yet
    # recorded: concurrency + 1 = 3 tasks of a tenth of a second's sending per connection
    # (rate / 10 / 2 rows each), plus results waiting for the next flush (at most FLUSH_ROWS).
    assert len(unknown) <= 3 * min(SMTPBackend.max_batch, int(rate / (10 * 2))) + FLUSH_ROWS, len(unknown)
    assert all(victim_chunk.first_row <= rows[e][0] <= victim_chunk.last_row for e in unknown)
    # Its chunk was taken over and finished by another worker.
    with get_engine(config).connect() as conn:
        chunk = conn.execute(select(queue_chunks).where(queue_chunks.c.id == victim_chunk.id)).one()
    assert chunk.state == ChunkState.DONE and chunk.runs >= 2 and chunk.worker != victim_chunk.worker
    # The shared rate limit held across the three workers (less what the kill cost).
    assert elapsed >= (SUBSCRIBERS - len(unknown)) / rate * 0.9
    assert Ledger(get_engine(config)).issue_state("w1") == "sent"
    dispose_engines()


def test_sigterm_hands_the_chunk_back_without_unknown_rows(tmp_path, pg_url):
    cfg_file = write_config(tmp_path, pg_url, queue="chunk_size = 400", delivery="rate_per_second = 400")
    config = populate(cfg_file, 800)
    engine = get_engine(config)
    workers = Workers(cfg_file)
    try:
        [first] = workers.start(1)
        send_issue(config, "w1")
        wait_for(lambda: Ledger(engine).counts("w1")["sent"] >= 100, 30, "the send to start", workers.output)
        first.send_signal(signal.SIGTERM)
        assert first.wait(20) == 0, workers.output()
        counts = Ledger(engine).counts("w1")
        assert counts["sending"] == 0 and 0 < counts["sent"] < 800, counts
        assert open_chunks(engine, "w1") >= 1              # queued again, not lost
        workers.start(1)
        wait_for(lambda: open_chunks(engine, "w1") == 0, 60, "a new worker to finish", workers.output)
    finally:
        workers.stop()
    counts = Ledger(engine).counts("w1")
    assert (counts["sent"], counts["unknown"]) == (800, 0), counts
    assert len(list((tmp_path / "state" / "outbox").rglob("*.eml"))) == 800
    assert "stopped with this worker; it is queued again" in workers.output()
    dispose_engines()
