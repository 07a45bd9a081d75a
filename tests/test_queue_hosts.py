"""Workers on different hosts (each its own state folder, one PostgreSQL): a chunk whose worker
was killed is finished by a worker that cannot read anything the dead one left on its disk, and
only the killed worker's messages on the wire become unknown."""

from __future__ import annotations

import collections
import signal

import pytest
from sqlalchemy import func, select

from mail_servers import SMTPTestServer
from newsletter.db import deliveries, dispose_engines, get_engine
from newsletter.ledger import Ledger
from newsletter.models import ChunkState
from newsletter.pipeline import send_issue
from newsletter.queue.enqueue import open_chunks
from newsletter.queue.progress import live_workers
from newsletter.queue.tables import queue_chunks
from queue_support import Workers, populate, wait_for, write_config

pytestmark = pytest.mark.postgres

SUBSCRIBERS = 3000
CONNECTIONS = 2          # [delivery.smtp] connections in write_config: one message on the wire each


def test_a_chunk_killed_on_one_host_is_finished_on_another_with_only_its_wire_unknown(tmp_path, pg_url):
    with SMTPTestServer() as server:
        hosts = []
        for name in ("a", "b", "c"):
            folder = tmp_path / f"host-{name}"
            folder.mkdir()
            hosts.append(write_config(folder, pg_url, smtp_port=server.port, queue="chunk_size = 300",
                                      delivery="rate_per_second = 700"))
        config = populate(hosts[0], SUBSCRIBERS)
        engine = get_engine(config)
        workers = [Workers(cfg) for cfg in hosts]
        try:
            for host in workers:
                host.start(1)
            output = lambda: "\n".join(h.output() for h in workers)   # noqa: E731 - a test's log reader
            wait_for(lambda: len(live_workers(engine, 5)) == 3, 30, "three live workers", output)
            send_issue(config, "w1")
            wait_for(lambda: len(server.messages) >= 900, 60, "a third of the send", output)

            def running_chunk():
                """A running chunk in its middle: some of its rows sent, a third still to send."""
                with engine.connect() as conn:
                    for chunk in conn.execute(select(queue_chunks).where(queue_chunks.c.state == ChunkState.RUNNING)):
                        states = dict(conn.execute(select(deliveries.c.status, func.count()).where(
                            deliveries.c.id.between(chunk.first_row, chunk.last_row)).group_by(deliveries.c.status)).all())
                        left = states.get("pending", 0) + states.get("sending", 0)
                        if states.get("sent", 0) >= 30 and left >= chunk.rows // 3:
                            return chunk
                return None
            victim_chunk = wait_for(running_chunk, 20, "a chunk in its middle", output)
            pid = int(victim_chunk.worker.rsplit(":", 1)[1])
            victim = next(p for h in workers for p in h.procs if p.pid == pid)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            assert len(server.messages) < SUBSCRIBERS - 300, "the kill came too late to test anything"
            wait_for(lambda: open_chunks(engine, "w1") == 0, 120, "the others to finish", output)
        finally:
            for host in workers:
                host.stop()
        with server.lock:
            counts = collections.Counter(r for m in server.messages for r in m.rcpt_tos)
    with engine.connect() as conn:
        rows = {email: (rid, status) for rid, email, status in conn.execute(
            select(deliveries.c.id, deliveries.c.email, deliveries.c.status).where(deliveries.c.issue_id == "w1"))}
    states = collections.Counter(state for _rid, state in rows.values())
    unknown = {email for email, (_rid, state) in rows.items() if state == "unknown"}
    assert max(counts.values()) == 1                                    # 0 duplicates
    assert states["sent"] + states["unknown"] == SUBSCRIBERS, states
    assert set(counts) - {e for e, (_r, s) in rows.items() if s == "sent"} <= unknown
    # At most what was on the wire when it died: one message per SMTP connection.
    assert len(unknown) <= CONNECTIONS, unknown
    assert all(victim_chunk.first_row <= rows[e][0] <= victim_chunk.last_row for e in unknown)
    with engine.connect() as conn:
        chunk = conn.execute(select(queue_chunks).where(queue_chunks.c.id == victim_chunk.id)).one()
    assert chunk.state == ChunkState.DONE and chunk.runs >= 2 and chunk.worker != victim_chunk.worker
    assert Ledger(engine).issue_state("w1") == "sent"
    dispose_engines()
