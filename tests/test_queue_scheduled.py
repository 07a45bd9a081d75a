"""A scheduled send with [queue] on: a real `newsletter run` queues the issue's chunks when the
job fires, real `newsletter worker` processes send them, and the send ends `sent`, once each."""

from __future__ import annotations

import collections
import datetime

import pytest
from click.testing import CliRunner

from mail_servers import SMTPTestServer
from newsletter.cli import cli
from newsletter.db import dispose_engines, get_engine
from newsletter.ledger import Ledger
from queue_support import Workers, populate, wait_for, write_config
from schedule_support import Daemon

pytestmark = pytest.mark.postgres

ROWS = 400


def test_a_scheduled_send_goes_through_the_queue_to_each_subscriber_once(tmp_path, pg_url):
    with SMTPTestServer() as server:
        cfg_file = write_config(tmp_path, pg_url, smtp_port=server.port, queue="chunk_size = 100")
        config = populate(cfg_file, ROWS)
        engine = get_engine(config)
        at = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
        result = CliRunner().invoke(cli, ["--config", str(cfg_file), "schedule", "w1", "--at", at])
        assert result.exit_code == 0, result.output
        workers, daemon = Workers(cfg_file), Daemon(config)
        try:
            workers.start(2)
            assert daemon.wait_log("queued for the workers", 30), daemon.log()
            wait_for(lambda: Ledger(engine).issue_state("w1") == "sent", 60, "the send to end",
                     lambda: daemon.log() + workers.output())
        finally:
            workers.stop()
            daemon.terminate()
            daemon.close()
        with server.lock:
            counts = collections.Counter(r for m in server.messages for r in m.rcpt_tos)
    assert len(counts) == ROWS and set(counts.values()) == {1}
    jobs = CliRunner().invoke(cli, ["--config", str(cfg_file), "jobs"])
    assert jobs.exit_code == 0 and "send-w1" not in jobs.output, jobs.output
    dispose_engines()
