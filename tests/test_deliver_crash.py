"""SIGKILL `newsletter send` at random moments and resume: nobody gets two copies, nobody is missed."""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from mail_servers import HANG, SMTPTestServer
from newsletter.config import load_config
from newsletter.ledger import Ledger
from newsletter.db import deliveries, dispose_engines, get_engine
from newsletter.subscribers.store import SubscriberStore
from store_support import write_csv, write_issue

SUBSCRIBERS = 300
KILLS = 6
RECOVERED = re.compile(r"(\d+) messages were in flight when an earlier run stopped \(now unknown\)")
DRIVER = "import sys; from newsletter.cli import main; main(sys.argv[1:])"


def _config_file(folder: Path, port: int, *, rate: float = 100.0, connections: int = 2) -> Path:
    path = folder / "config.toml"
    path.write_text(f"""
[newsletter]
sender = "Test Weekly <news@example.org>"
[signing]
secret_env = ""
[delivery]
backend = "smtp"
rate_per_second = {rate}     # 100: slow enough that every kill lands in the middle of the send
concurrency = {connections}
[delivery.smtp]
host = "127.0.0.1"
port = {port}
connections = {connections}
""", encoding="utf-8")
    return path


class Runs:
    """Starts `newsletter send` as a child process and keeps what every run printed."""

    def __init__(self, folder: Path, config: Path):
        self.folder, self.config, self.n = folder, config, 0

    def start(self, *extra: str) -> tuple[subprocess.Popen, Path]:
        self.n += 1
        out = self.folder / f"run{self.n}.log"
        handle = open(out, "wb")
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, "--config", str(self.config), "send", "w1", *extra],
                                stdout=handle, stderr=subprocess.STDOUT, cwd=self.folder)
        handle.close()
        return proc, out

    def output(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(self.folder.glob("run*.log")))


def _wait_for(condition, proc: subprocess.Popen, limit: float = 20.0) -> None:
    """Poll until condition() holds or proc exits (bounded, so a hang fails the test)."""
    end = time.monotonic() + limit
    while not condition() and proc.poll() is None:
        assert time.monotonic() < end, "the send neither progressed nor ended"
        time.sleep(0.002)


def test_sigkill_at_random_moments_then_resume(tmp_path):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    with SMTPTestServer() as server:
        cfg_path = _config_file(tmp_path, server.port)
        config = load_config(cfg_path)
        SubscriberStore(get_engine(config)).import_csv(write_csv(tmp_path / "list.csv", SUBSCRIBERS), "default")
        write_issue(config)
        dispose_engines()                     # the child processes own the database from here
        runs = Runs(tmp_path, cfg_path)

        def copies() -> collections.Counter:
            with server.lock:
                return collections.Counter(r for m in server.messages for r in m.rcpt_tos)

        kills = 0
        while kills < KILLS:
            proc, _log = runs.start()
            if kills == 0:
                # once at start-up: while it opens the database, plans or connects
                time.sleep(rng.uniform(0.05, 0.6))
            else:
                target = len(server.messages) + rng.randint(1, 25)
                _wait_for(lambda: len(server.messages) >= target, proc)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                duplicated = [a for a, n in copies().items() if n > 1]
                assert not duplicated, f"seed {seed}: second copies after kill {kills}: {duplicated[:5]}"
            assert len(server.messages) < SUBSCRIBERS, f"seed {seed}: finished before {KILLS} kills"

        proc, log = runs.start()
        assert proc.wait(timeout=60) == 0, log.read_text()
        got = copies()
        ledger = Ledger(get_engine(config))
        counts = ledger.counts("w1")
        unknown = {email for email, _mid, _reply in ledger.rows("w1", "unknown", limit=SUBSCRIBERS)}
        everyone = {f"user{i}@example.org" for i in range(SUBSCRIBERS)}
        assert set(got.values()) == {1}, f"seed {seed}: somebody got two copies"
        assert everyone - set(got) <= unknown, f"seed {seed}: missed without being reported unknown"
        assert counts["sent"] + counts["unknown"] == SUBSCRIBERS and counts["sending"] == 0
        # every row found in flight was reported, once, by the run that found it
        assert sum(map(int, RECOVERED.findall(runs.output()))) == counts["unknown"]
        # the ledger's Message-ID is the one the subscriber received
        with server.lock:
            received_ids = {m.rcpt_tos[0]: m.message["Message-ID"] for m in server.messages}
        with ledger.engine.connect() as conn:
            for email, mid in conn.execute(select(deliveries.c.email, deliveries.c.message_id)
                                           .where(deliveries.c.status == "sent")):
                assert received_ids[email] == mid

        # `newsletter status` lists the unknown rows with the Message-ID they would have had
        status = subprocess.run([sys.executable, "-c", DRIVER, "--config", str(cfg_path), "status", "w1"],
                                capture_output=True, text=True, cwd=tmp_path, check=True).stdout
        listed = dict(line.strip().split("\t") for line in status.splitlines() if line.startswith("  ") and "\t" in line)
        assert len(listed) == min(len(unknown), 20) and set(listed) <= unknown
        for email, mid in listed.items():
            assert mid.startswith("<w1.") and received_ids.get(email, mid) == mid

        # a plain re-run sends nothing; --retry-unknown resends exactly the unknown rows
        before = len(server.messages)
        proc, log = runs.start()
        assert proc.wait(timeout=60) == 0 and len(server.messages) == before, log.read_text()
        proc, log = runs.start("--retry-unknown")
        assert proc.wait(timeout=60) == 0, log.read_text()
        final = copies()
        assert set(final) == everyone, f"seed {seed}: somebody never got the issue"
        assert {a for a, n in final.items() if n > 1} <= unknown
        assert len(server.messages) - before == len(unknown)
        assert Ledger(get_engine(config)).counts("w1")["sent"] == SUBSCRIBERS


def test_sigterm_finishes_what_is_on_the_wire(tmp_path):
    with SMTPTestServer() as server:
        cfg_path = _config_file(tmp_path, server.port)
        config = load_config(cfg_path)
        SubscriberStore(get_engine(config)).import_csv(write_csv(tmp_path / "list.csv", 100), "default")
        write_issue(config)
        dispose_engines()
        runs = Runs(tmp_path, cfg_path)
        proc, log = runs.start()
        _wait_for(lambda: len(server.messages) >= 10, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 130, log.read_text()
        assert "interrupted" in log.read_text()
        counts = Ledger(get_engine(config)).counts("w1")
        # what went out is recorded as sent; nothing is left in flight or unknown
        assert counts["sent"] == len(server.messages) and counts["sending"] == counts["unknown"] == 0
        proc, log = runs.start()
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert sorted(r for m in server.messages for r in m.rcpt_tos) == sorted(
            f"user{i}@example.org" for i in range(100))


def test_a_second_sigterm_stops_at_once_while_a_server_hangs(tmp_path):
    # The first SIGTERM waits for the messages on the wire; a server that never answers would
    # hold them for the RFC 5321 timeouts. A second SIGTERM ends the run now, and the next run
    # counts the hung message unknown: nobody gets two copies.
    hang = {"on": True}
    reply = (lambda address: HANG if hang["on"] and address == "user20@example.org" else 250)
    with SMTPTestServer(data_reply=reply) as server:
        cfg_path = _config_file(tmp_path, server.port, connections=1)
        config = load_config(cfg_path)
        SubscriberStore(get_engine(config)).import_csv(write_csv(tmp_path / "list.csv", 60), "default")
        write_issue(config)
        dispose_engines()
        runs = Runs(tmp_path, cfg_path)
        proc, log = runs.start()
        _wait_for(lambda: len(server.messages) >= 21, proc)      # user20's message is on the wire
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None, log.read_text()             # still waiting for the reply
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == -signal.SIGTERM, log.read_text()
        assert "stopping now" in log.read_text()
        hang["on"] = False
        proc, log = runs.start()
        assert proc.wait(timeout=60) == 0, log.read_text()
        with server.lock:
            got = collections.Counter(r for m in server.messages for r in m.rcpt_tos)
    counts = Ledger(get_engine(config)).counts("w1")
    assert set(got.values()) == {1} and len(got) == 60
    assert counts["unknown"] == 1 and counts["sent"] == 59 and counts["sending"] == 0


def test_five_sigkills_at_full_speed_leave_few_unknown_and_no_duplicate(tmp_path):
    # 4 connections, no rate limit: hundreds of rows are claimed at any moment, yet only the
    # messages really on the wire (at most one per connection) may be reported unknown; the
    # journal tells the next run which claimed rows never left and which were delivered.
    n, kills = 3000, 5
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    with SMTPTestServer() as server:
        cfg_path = _config_file(tmp_path, server.port, rate=0, connections=4)
        config = load_config(cfg_path)
        SubscriberStore(get_engine(config)).import_csv(write_csv(tmp_path / "list.csv", n), "default")
        write_issue(config)
        dispose_engines()
        runs = Runs(tmp_path, cfg_path)
        done = 0
        while done < kills:
            proc, log = runs.start()
            target = len(server.messages) + rng.randint(30, 250)
            _wait_for(lambda: len(server.messages) >= target, proc, limit=60)
            assert proc.poll() is None, f"seed {seed}: the send ended before kill {done + 1}: {log.read_text()}"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            done += 1
        proc, log = runs.start()
        assert proc.wait(timeout=120) == 0, log.read_text()
        with server.lock:
            got = collections.Counter(r for m in server.messages for r in m.rcpt_tos)
        counts = Ledger(get_engine(config)).counts("w1")
        unknown = {email for email, _mid, _reply in Ledger(get_engine(config)).rows("w1", "unknown", limit=n)}
    assert not [a for a, c in got.items() if c > 1], f"seed {seed}: duplicates"
    assert len(unknown) <= kills * 4, f"seed {seed}: {len(unknown)} unknown after {kills} kills"
    assert counts["sent"] + counts["unknown"] == n and counts["sending"] == counts["pending"] == 0
    everyone = {f"user{i}@example.org" for i in range(n)}
    assert everyone - unknown <= set(got), f"seed {seed}: somebody not unknown never got the issue"
    assert sum(map(int, RECOVERED.findall(runs.output()))) == counts["unknown"]
