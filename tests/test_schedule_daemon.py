"""`newsletter run` as real processes on a real SQLite job store, delivering to a real SMTP server."""

from __future__ import annotations

import http.client
import time
from datetime import datetime, timedelta, timezone

import pytest

from mail_servers import SMTPTestServer, free_port
from newsletter.db import get_engine
from newsletter.ledger import Ledger
from newsletter.schedule.lease import Lease
from newsletter.schedule.records import get_job, set_job_state
from newsletter.schedule.scheduler import add_send_job, job_scheduler, list_jobs, schedule_send
from schedule_support import Daemon, add_subscribers, per_address, wait_for, write_built_issue, write_config

READERS = 5


@pytest.fixture
def server():
    with SMTPTestServer() as srv:
        yield srv


@pytest.fixture
def project(tmp_path, server):
    config = write_config(tmp_path, server.port)
    addresses = add_subscribers(config, READERS)
    write_built_issue(config, "w1")
    return config, addresses


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(config, name="daemon"):
        d = Daemon(config, name)
        started.append(d)
        return d
    yield start
    for d in started:
        d.close()


def _at(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def test_an_issue_scheduled_two_seconds_ahead_arrives_on_time_once(project, server, daemons):
    config, addresses = project
    daemon = daemons(config)
    assert daemon.wait_log("scheduler active"), daemon.log()
    due = _at(2)
    info = schedule_send(config, "w1", due.isoformat())
    assert info.next_run == due
    wait_for(lambda: time.time() >= due.timestamp() - 0.3, 5)
    assert server.messages == []                          # not early
    assert wait_for(lambda: len(server.messages) == READERS, 8), daemon.log()
    assert time.time() - due.timestamp() <= 2.0           # and not late
    assert per_address(server) == {a: 1 for a in addresses}
    assert list_jobs(config) == []                      # a one-off job is gone once it ran
    assert wait_for(lambda: get_job(get_engine(config), "send-w1").state == "done", 3)
    assert daemon.terminate() == 0
    assert "job send-w1: issue w1: 5 sent; issue sent" in daemon.log()


def test_killed_before_the_time_and_restarted_after_it_sends_once(project, server, daemons):
    config, addresses = project
    first = daemons(config, "first")
    assert first.wait_log("scheduler active"), first.log()
    due = _at(1)
    schedule_send(config, "w1", due.isoformat())
    assert wait_for(lambda: "next: send-w1" in first.log() or len(list_jobs(config)) == 1, 2)
    first.kill()
    assert wait_for(lambda: time.time() > due.timestamp() + 0.5, 4)
    assert server.messages == []
    second = daemons(config, "second")
    # The lease of the killed process is taken at once: its pid is gone.
    assert wait_for(lambda: len(server.messages) == READERS, 10), second.log()
    assert per_address(server) == {a: 1 for a in addresses}
    assert second.terminate() == 0
    third = daemons(config, "third")
    assert third.wait_log("scheduler active"), third.log()
    time.sleep(0.6)
    assert len(server.messages) == READERS
    assert third.terminate() == 0


def test_two_daemons_started_together_send_once(tmp_path, server, daemons, db_url):
    config = write_config(tmp_path, server.port, database={"url": db_url})
    addresses = add_subscribers(config, READERS)
    write_built_issue(config, "w1")
    a, b = daemons(config, "a"), daemons(config, "b")
    assert wait_for(lambda: "scheduler active" in a.log() + b.log(), 15), a.log() + b.log()
    assert wait_for(lambda: "standby" in a.log() + b.log(), 5), a.log() + b.log()
    due = _at(1)
    schedule_send(config, "w1", due.isoformat())
    assert wait_for(lambda: len(server.messages) == READERS, 8), a.log() + b.log()
    time.sleep(0.6)                                       # room for a second copy, were there one
    assert per_address(server) == {x: 1 for x in addresses}
    assert (a.log() + b.log()).count("sending issue w1") == 1
    assert a.terminate() == 0 and b.terminate() == 0, a.log() + "\n=====\n" + b.log()


def test_a_standby_takes_over_when_the_active_daemon_dies(project, server, daemons):
    config, addresses = project
    a = daemons(config, "a")
    assert a.wait_log("scheduler active"), a.log()
    b = daemons(config, "b")
    assert b.wait_log("standby"), b.log()
    a.kill()
    assert b.wait_log("scheduler active", 5), b.log()
    schedule_send(config, "w1", _at(1).isoformat())
    assert wait_for(lambda: len(server.messages) == READERS, 8), b.log()
    assert per_address(server) == {x: 1 for x in addresses}
    assert b.terminate() == 0


def test_sigterm_stops_cleanly_and_releases_the_lock(project, daemons):
    config, _ = project
    daemon = daemons(config)
    assert daemon.wait_log("scheduler active"), daemon.log()
    assert Lease(get_engine(config)).holder() is not None
    assert daemon.terminate() == 0
    assert "scheduler stopped" in daemon.log()
    assert Lease(get_engine(config)).holder() is None


def test_a_send_interrupted_after_its_job_left_the_store_is_resumed(project, server, daemons):
    config, addresses = project
    # APScheduler deletes a one-off job from its store as it hands it to a worker: a SIGKILL right
    # then leaves only our record, "running". The next daemon must run it again, once.
    due = datetime.now(timezone.utc) - timedelta(seconds=30)
    add_send_job(config, "w1", due)
    with job_scheduler(config) as scheduler:
        scheduler.remove_job("send-w1")
    set_job_state(get_engine(config), "send-w1", "running")
    daemon = daemons(config)
    assert wait_for(lambda: len(server.messages) == READERS, 10), daemon.log()
    assert "was interrupted: scheduling it again" in daemon.log()
    assert per_address(server) == {a: 1 for a in addresses}
    # The last message arrives before the daemon records it: the issue turns "sent" just after.
    assert wait_for(lambda: Ledger(get_engine(config)).issue_state("w1") == "sent", 5), daemon.log()
    assert daemon.terminate() == 0


def test_a_job_missed_beyond_the_grace_time_is_not_run(tmp_path, server, daemons):
    config = write_config(tmp_path, server.port, schedule={"misfire_grace_time": "10s"})
    add_subscribers(config, 2)
    write_built_issue(config, "w1")
    add_send_job(config, "w1", datetime.now(timezone.utc) - timedelta(minutes=5))
    daemon = daemons(config)
    assert daemon.wait_log("missed its time"), daemon.log()
    time.sleep(0.5)
    assert server.messages == []
    assert wait_for(lambda: get_job(get_engine(config), "send-w1").state == "missed", 3)
    assert "send it with `newsletter send w1`" in daemon.log()
    assert daemon.terminate() == 0


def test_with_web_enabled_run_also_serves_the_web_app(tmp_path, daemons):
    port = free_port()
    config = write_config(tmp_path, web={"enabled": True, "port": port})
    daemon = daemons(config)
    assert daemon.wait_log(f"web app listening on http://127.0.0.1:{port}"), daemon.log()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/subscribe")
    assert conn.getresponse().status == 200
    conn.close()
    assert daemon.terminate() == 0


def test_sigterm_during_a_send_stops_it_and_the_next_run_resumes_it(tmp_path, server, daemons):
    # 20 messages a second: SIGTERM lands while most of the 40 are still to go.
    config = write_config(tmp_path, server.port, delivery={"rate_per_second": 20.0})
    addresses = add_subscribers(config, 40)
    write_built_issue(config, "w1")
    first = daemons(config, "first")
    assert first.wait_log("scheduler active"), first.log()
    schedule_send(config, "w1", _at(0.3).isoformat())
    assert wait_for(lambda: len(server.messages) >= 3, 8), first.log()
    assert first.terminate(timeout=10) == 0
    assert len(server.messages) < 40 and "send stopped by the shutdown" in first.log()
    assert get_job(get_engine(config), "send-w1").state == "running"
    second = daemons(config, "second")
    assert wait_for(lambda: len(server.messages) == 40, 15), second.log()
    assert wait_for(lambda: get_job(get_engine(config), "send-w1").state == "done", 3)
    assert per_address(server) == {a: 1 for a in addresses}
    assert Ledger(get_engine(config)).counts("w1")["sent"] == 40
    assert second.terminate() == 0
