"""Helpers for the send-queue tests: a project on a private PostgreSQL schema with [queue] on, and
real `newsletter worker` processes started, stopped and killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from newsletter.config import Config, load_config
from newsletter.db import get_engine
from newsletter.subscribers.store import SubscriberStore
from store_support import write_csv, write_issue

DRIVER = "import sys; from newsletter.cli import main; main(sys.argv[1:])"
SECRET_ENV = "TEST_QUEUE_SECRET"
SECRET = "queue-tests-secret-0123456789abcdef"


def write_config(folder: Path, url: str, *, smtp_port: int | None = None, delivery: str = "",
                 queue: str = "") -> Path:
    """Write folder/config.toml: [queue] on, fast heartbeats, SMTP to smtp_port (else the file backend)."""
    backend = (f'backend = "smtp"\n{delivery}\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\n'
               "timeout = 10\nconnections = 2\n") if smtp_port else f'backend = "file"\n{delivery}\n'
    path = folder / "config.toml"
    path.write_text(f"""
[newsletter]
sender = "Test Weekly <news@example.org>"
[signing]
secret_env = "{SECRET_ENV}"
[database]
url = "{url}"
[queue]
enabled = true
heartbeat_seconds = 0.5
stalled_seconds = 2.0
{queue}
[delivery]
backoff_seconds = 0.01
concurrency = 2
{backend}
""", encoding="utf-8")
    return path


def populate(config_file: Path, n: int, issue_id: str = "w1") -> Config:
    """Import n subscribers (user0@example.org …) and save a built issue; return the config."""
    os.environ[SECRET_ENV] = SECRET
    config = load_config(config_file)
    SubscriberStore(get_engine(config)).import_csv(write_csv(config_file.parent / "list.csv", n), "default")
    write_issue(config, issue_id)
    return config


class Workers:
    """`newsletter worker` processes on one config file, each logging to its own file."""

    def __init__(self, config_file: Path):
        self.config_file = config_file
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self, n: int = 1, *args: str) -> list[subprocess.Popen]:
        """Start n workers; return their processes."""
        env = {**os.environ, SECRET_ENV: SECRET}
        started = []
        for _ in range(n):
            log = self.config_file.parent / f"worker{len(self.procs) + 1}.log"
            with open(log, "wb") as handle:
                proc = subprocess.Popen([sys.executable, "-c", DRIVER, "--config", str(self.config_file),
                                         "worker", *args], stdout=handle, stderr=subprocess.STDOUT,
                                        cwd=self.config_file.parent, env=env)
            self.procs.append(proc)
            self.logs.append(log)
            started.append(proc)
        return started

    def by_pid(self, pid: int) -> subprocess.Popen:
        """Return the worker process pid."""
        return next(p for p in self.procs if p.pid == pid)

    def output(self) -> str:
        """Return every worker's log."""
        return "\n".join(f"--- {log.name}\n" + log.read_text(errors="replace") for log in self.logs if log.exists())

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every live worker and wait for it (SIGKILL after timeout)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(condition: Callable[[], object], limit: float, what: str, on_fail: Callable[[], str] = str) -> object:
    """Poll condition until it returns something true; fail naming what after limit seconds."""
    end = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}\n{on_fail()}")
        time.sleep(0.05)
