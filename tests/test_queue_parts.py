"""The send queue's parts: its config, chunk ranges in the ledger, enqueueing in one transaction,
the rate limit shared through the database, and a paused chunk halting the whole send."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from config_support import build_config
from mail_servers import SMTPTestServer
from newsletter.cli import cli
from newsletter.db import dispose_engines, get_engine
from newsletter.errors import ConfigError, SubscriberError
from newsletter.ledger import Ledger
from newsletter.models import ChunkState
from newsletter.pipeline import send_issue
from newsletter.queue.enqueue import open_chunks
from newsletter.queue.progress import send_progress
from newsletter.queue.ratelimit import BLOCK_SECONDS, SharedRateLimiter
from newsletter.queue.tables import queue_chunks, queue_sends
from newsletter.subscribers.store import SubscriberStore
from queue_support import Workers, populate, wait_for, write_config
from store_support import write_csv, write_issue


def test_queue_needs_postgresql(tmp_path):
    with pytest.raises(ConfigError, match="'queue.enabled' needs a PostgreSQL 'database.url'"):
        build_config(tmp_path, queue={"enabled": True})
    with pytest.raises(ConfigError, match="'queue.chunk_size' must be at least 1"):
        build_config(tmp_path, queue={"chunk_size": 0})
    with pytest.raises(ConfigError, match="stalled_seconds"):
        build_config(tmp_path, queue={"heartbeat_seconds": 10.0, "stalled_seconds": 15.0})
    assert build_config(tmp_path).queue.enabled is False


def test_claims_stay_within_a_chunk_and_recovery_too(db_url, tmp_path):
    config = build_config(tmp_path, database={"url": db_url})
    engine = get_engine(config)
    SubscriberStore(engine).import_csv(write_csv(tmp_path / "l.csv", 30), "default")
    ledger = Ledger(engine)
    ledger.plan("w1", "default")
    with engine.connect() as conn:
        first = conn.execute(text("SELECT min(id) FROM deliveries")).scalar()
    chunk = (first + 10, first + 19)
    assert ledger.claimable("w1", "default", rows=chunk) == 10
    claimed, skipped, last = ledger.claim("w1", "default", after_id=chunk[0] - 1, limit=100, until_id=chunk[1])
    assert [c.row_id for c in claimed] == list(range(chunk[0], chunk[1] + 1)) and last == chunk[1]
    ledger.claim("w1", "default", after_id=first - 1, limit=5)      # rows of another chunk, in flight
    assert ledger.recover_range("w1", "default", chunk).unknown == 10
    counts = ledger.counts("w1")
    assert (counts["unknown"], counts["sending"], counts["pending"]) == (10, 5, 15)
    dispose_engines()


@pytest.mark.postgres
def test_enqueue_is_one_transaction(tmp_path, pg_url):
    config = populate(write_config(tmp_path, pg_url), 10)
    engine = get_engine(config)
    store = SubscriberStore(engine)
    store.import_csv(write_csv(tmp_path / "empty.csv", 1), "empty")
    store.set_status("user0@example.org", "empty", "unsubscribed")     # a list, but nobody to send to
    with pytest.raises(SubscriberError, match="no active subscriber"):
        send_issue(config, "w1", list_name="empty")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(queue_sends)).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 0
    queued = send_issue(config, "w1")
    assert (queued.rows, queued.chunks, queued.enqueued, queued.state) == (10, 1, 1, "sending")
    with engine.connect() as conn:
        job = conn.execute(text("SELECT status::text, lock, queueing_lock, args FROM procrastinate_jobs")).one()
    assert job.status == "todo" and job.lock == job.queueing_lock
    assert job.args["issue_id"] == "w1" and job.args["last_row"] - job.args["first_row"] == 9
    assert send_issue(config, "w1").enqueued == 0                 # waiting already: not twice
    dispose_engines()


@pytest.mark.postgres
def test_the_shared_rate_limit_holds_across_limiters(pg_url, tmp_path):
    config = build_config(tmp_path, database={"url": pg_url})
    engine = get_engine(config)
    rate, each = 200.0, 100
    limiters = [SharedRateLimiter(engine, "smtp://relay:25", rate) for _ in range(3)]
    stamps: list[float] = []
    lock = threading.Lock()

    def spend(limiter: SharedRateLimiter) -> None:
        for _ in range(each):
            assert limiter.acquire(1)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=spend, args=(lim,)) for lim in limiters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    # 300 messages at 200/s take at least 1.5 s less each limiter's first block (sent at once).
    slack = 3 * max(1, rate * BLOCK_SECONDS) / rate
    assert stamps[-1] - stamps[0] >= (3 * each - 1) / rate - slack
    # In any one second no more than the rate (plus one block per limiter) went out.
    for i, start in enumerate(stamps):
        within = sum(1 for s in stamps[i:] if s - start < 1.0)
        assert within <= rate + 3 * rate * BLOCK_SECONDS + 1
    dispose_engines()


@pytest.mark.postgres
def test_a_paused_chunk_halts_the_send_until_sent_again(tmp_path, pg_url):
    rejecting = True
    with SMTPTestServer(lambda _addr: 550 if rejecting else 250) as server:
        cfg_file = write_config(tmp_path, pg_url, smtp_port=server.port, queue="chunk_size = 40",
                                delivery="pause_window = 10\nmax_attempts = 1")
        config = populate(cfg_file, 160)
        engine = get_engine(config)
        workers = Workers(cfg_file)
        runner = CliRunner()
        try:
            workers.start(1)
            result = runner.invoke(cli, ["--config", str(cfg_file), "send", "w1", "--wait"])
            assert result.exit_code == 1, result.output
            assert "the workers stopped this send: paused:" in result.output
            progress = send_progress(engine, "w1", "default")
            assert progress.chunks[ChunkState.PAUSED] == 1 and progress.chunks[ChunkState.HELD] == 3
            counts = Ledger(engine).counts("w1")
            assert counts["bounced"] <= 40 and counts["pending"] >= 120, counts
            status = runner.invoke(cli, ["--config", str(cfg_file), "status", "w1"]).output
            assert "halted: paused:" in status and "chunk 1: paused:" in status
            rejecting = False
            result = runner.invoke(cli, ["--config", str(cfg_file), "send", "w1", "--wait"])
            assert result.exit_code == 0, result.output
            assert "queued 4 of 4 chunks" in result.output or "queued 3 of 4 chunks" in result.output
        finally:
            workers.stop()
    counts = Ledger(engine).counts("w1")
    assert counts["sent"] + counts["bounced"] == 160 and counts["pending"] == 0, counts
    assert open_chunks(engine, "w1") == 0
    dispose_engines()


def test_sending_without_the_queue_is_unchanged(tmp_path):
    config = build_config(tmp_path)
    SubscriberStore(get_engine(config)).import_csv(write_csv(tmp_path / "l.csv", 3), "default")
    write_issue(config)
    report = send_issue(config, "w1")
    assert report.sent == 3 and report.state == "sent"
    assert not hasattr(report, "enqueued")
    dispose_engines()


@pytest.mark.postgres
def test_workers_command_without_the_queue_says_so(tmp_path):
    build_config(tmp_path, write=True)
    result = CliRunner().invoke(cli, ["--config", str(Path(tmp_path) / "config.toml"), "workers"])
    assert result.exit_code == 1 and "the send queue is off" in result.output


@pytest.mark.postgres
def test_a_chunk_locked_elsewhere_is_not_sent_until_released(tmp_path, pg_url):
    from newsletter.delivery.lock import chunk_lock

    cfg_file = write_config(tmp_path, pg_url, queue="chunk_size = 50")
    config = populate(cfg_file, 100)
    engine = get_engine(config)
    send_issue(config, "w1")
    with engine.connect() as conn:
        first, second = conn.execute(select(queue_chunks).order_by(queue_chunks.c.seq)).all()
    workers = Workers(cfg_file)
    try:
        # As if a worker thought dead still ran chunk 1: its session holds the chunk's lock.
        with chunk_lock(engine, "w1", first.id):
            workers.start(1)
            wait_for(lambda: Ledger(engine).counts("w1")["sent"] == 50, 30, "chunk 2", workers.output)
            wait_for(lambda: "is being sent by another worker; trying again" in workers.output(), 10,
                     "the worker to find chunk 1 busy", workers.output)
            assert Ledger(engine).claimable("w1", "default", rows=(first.first_row, first.last_row)) == 50
        wait_for(lambda: open_chunks(engine, "w1") == 0, 30, "chunk 1 after the lock was released",
                 workers.output)
    finally:
        workers.stop()
    assert Ledger(engine).counts("w1")["sent"] == 100 and Ledger(engine).issue_state("w1") == "sent"
    dispose_engines()


@pytest.mark.postgres
def test_a_scheduled_send_is_handed_to_the_workers_and_done_when_they_finish(tmp_path, pg_url):
    from newsletter.schedule import autodigest, jobs
    from newsletter.schedule.records import JobRecord, claim_digest, get_digest, get_job, save_job, set_digest

    cfg_file = write_config(tmp_path, pg_url, queue="chunk_size = 4")
    config = populate(cfg_file, 10)
    engine = get_engine(config)
    save_job(engine, JobRecord("send-w1", "send", "w1", "", "", "", time.time(), "scheduled", ""))
    jobs.send_job(str(cfg_file), "w1", "", "send-w1")
    record = get_job(engine, "send-w1")
    assert record.state == "queued" and record.detail.startswith("3 chunks (10 messages) queued for the workers")
    assert open_chunks(engine, "w1") == 3
    assert Ledger(engine).counts("w1")["pending"] == 10        # nothing sent by the scheduler
    # An automatic digest handed to the workers the way the scheduler's firing sends it.
    write_issue(config, "w2")
    claim_digest(engine, "w2", time.time())
    set_digest(engine, "w2", "sending", items=3)
    fired = autodigest.send(config, "w2", 3, jobs._send_digest)
    assert (fired.state, fired.detail) == ("sending", "queued for the workers")
    assert get_digest(engine, "w2").state == "sending"
    workers = Workers(cfg_file)
    try:
        workers.start(2)
        # Nothing restarted: the chunk that ends each send finishes the scheduler's record of it.
        wait_for(lambda: get_job(engine, "send-w1").state == "done" and get_digest(engine, "w2").state == "sent",
                 60, "the workers to finish both sends", workers.output)
    finally:
        workers.stop()
    assert Ledger(engine).issue_state("w1") == "sent" and Ledger(engine).issue_state("w2") == "sent"
    assert get_job(engine, "send-w1").detail == "sent by the queue's workers"
    dispose_engines()


@pytest.mark.postgres
def test_the_queue_schema_knows_its_procrastinate_version(tmp_path, pg_url):
    from newsletter.errors import QueueError
    from newsletter.queue import schema

    assert [p.name[:8] for p in schema.pending_migrations((3, 3, 0))] == ["03.04.00", "03.04.00"]
    assert schema.pending_migrations(schema.installed_version()) == []
    engine = get_engine(build_config(tmp_path, database={"url": pg_url}))
    schema.ensure(engine)
    with engine.begin() as conn:
        assert schema.schema_version(conn) == schema.installed_version()
        conn.exec_driver_sql("COMMENT ON TABLE procrastinate_jobs IS 'procrastinate 3.3.0'")
    schema._checked.clear()                 # as a new process would
    with pytest.raises(QueueError, match="run `newsletter db upgrade`"):
        schema.ensure(engine)
    dispose_engines()


def test_a_chunk_whose_database_connection_broke_is_tried_again_a_few_times():
    from procrastinate.jobs import Job
    from sqlalchemy.exc import IntegrityError, OperationalError

    from newsletter.worker.task import DB_RETRIES, ChunkRetry

    def job(attempts: int) -> Job:
        return Job(id=1, queue="newsletter", lock=None, queueing_lock=None, task_name="t", attempts=attempts)

    lost = OperationalError("UPDATE deliveries ...", {}, Exception("server closed the connection unexpectedly"))
    assert ChunkRetry().get_retry_decision(exception=lost, job=job(0)) is not None
    assert ChunkRetry().get_retry_decision(exception=lost, job=job(DB_RETRIES)) is None   # then it fails
    wrong = IntegrityError("INSERT ...", {}, Exception("duplicate key"))                  # not the connection
    assert ChunkRetry().get_retry_decision(exception=wrong, job=job(0)) is None


def test_waiting_on_a_send_no_worker_takes_says_so(tmp_path, pg_url):
    import subprocess
    import sys

    cfg_file = write_config(tmp_path, pg_url, smtp_port=1, queue="chunk_size = 40")
    populate(cfg_file, 10)
    dispose_engines()
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", "--config", str(cfg_file), "send", "w1", "--wait"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        for line in proc.stdout:             # bounded: the warning comes with the first progress line
            seen.append(line)
            if "no live worker" in line or len(seen) > 4:
                break
        assert any("no live worker: the chunks wait until `newsletter worker` runs" in s for s in seen), seen
    finally:
        proc.kill()
        proc.wait()
