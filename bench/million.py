"""Benchmark a million subscribers on PostgreSQL with the send queue: import, plan and enqueue, and a worker.

    python bench/million.py [--subscribers 1000000] [--worker-seconds 60] [--pg URL]

In a database it creates (nl_bench_million) and drops afterwards: `newsletter subscribers import`
of a CSV of N subscribers, then `newsletter send` with [queue] on (plans N ledger rows and
enqueues them as chunks of 1,000 in one transaction), then one `newsletter worker` sending to
Postfix's smtp-sink for --worker-seconds, then `newsletter status`. Each is a child process whose
wall time and peak RSS (wait4) are printed; the last line gives the peak RSS of `send` and of the
worker (the goal: at most 150 MB each, whatever N).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_support import PG_DEFAULT, SECRET_ENV, scratch_database, write_queue_config

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
DRIVER = "import sys; from newsletter.cli import main; main(sys.argv[1:])"
DB = "nl_bench_million"


def child(work: Path, *args: str, stop_after: float | None = None) -> tuple[float, float, str]:
    """Run `newsletter ARGS` in work; return (seconds, peak RSS in MB, output).

    With stop_after, the child gets SIGTERM after that many seconds (a worker)."""
    log = work / f"{args[0]}.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, "--config", str(work / "config.toml"), *args],
                                cwd=work, stdout=out, stderr=subprocess.STDOUT)
    if stop_after is not None:
        time.sleep(stop_after)
        proc.send_signal(signal.SIGTERM)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"`newsletter {' '.join(args)}` failed ({proc.returncode}):\n{text}")
    return elapsed, usage.ru_maxrss / 1024, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--worker-seconds", type=float, default=60.0)
    parser.add_argument("--pg", default=os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", PG_DEFAULT))
    args = parser.parse_args()
    if not os.path.exists(SINK):
        raise SystemExit("smtp-sink not found: apt-get install postfix (the daemon need not run)")
    from mail_servers import free_port

    n = args.subscribers
    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-million-"))
    os.environ[SECRET_ENV] = "bench-secret-0123456789abcdef"
    port = free_port()
    with open(work / "subscribers.csv", "w", encoding="utf-8") as f:
        f.write("email,name,city\n")
        for i in range(n):
            f.write(f"reader{i}@example.org,Reader {i},Town {i % 97}\n")
    try:
        with scratch_database(args.pg, DB) as url:
            write_queue_config(work, url, port, queue="chunk_size = 1000")
            send_rss, worker_rss = measure(work, n, port, args.worker_seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{n:,} subscribers: peak RSS of send (plan + enqueue) {send_rss:.0f} MB, "
          f"of a worker {worker_rss:.0f} MB")


def measure(work: Path, n: int, port: int, worker_seconds: float) -> tuple[float, float]:
    """Run import, send, a worker (for worker_seconds) and status in work against smtp-sink on
    port; print a line each; return the peak RSS in MB of send and of the worker."""
    sink = subprocess.Popen([SINK, "-u", "nobody", f"127.0.0.1:{port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        secs, rss, out = child(work, "subscribers", "import", "subscribers.csv")
        print(f"import {n:,} subscribers: {secs:.0f} s ({n / secs:,.0f}/s), peak RSS {rss:.0f} MB "
              f"[{out.strip().splitlines()[-1]}]", flush=True)
        from newsletter.config import load_config
        from newsletter.db import dispose_engines
        from store_support import write_issue

        write_issue(load_config(work / "config.toml"), "m1")
        dispose_engines()
        send_secs, send_rss, out = child(work, "send", "m1")
        print(f"send m1 (plan {n:,} ledger rows, enqueue their chunks, one transaction): {send_secs:.1f} s, "
              f"peak RSS {send_rss:.0f} MB [{next(l for l in out.splitlines() if 'queued' in l)}]", flush=True)
        secs, worker_rss, out = child(work, "worker", "--concurrency", "2", stop_after=worker_seconds)
        chunks = out.count(": done:")
        print(f"one worker (2 chunks at a time) for {worker_seconds:.0f} s: {chunks} chunks done, "
              f"peak RSS {worker_rss:.0f} MB", flush=True)
        secs, rss, out = child(work, "status", "m1")
        sent = next(line.split()[1] for line in out.splitlines() if line.startswith("sent "))
        print(f"status m1: {secs:.1f} s, peak RSS {rss:.0f} MB ({sent} sent so far)", flush=True)
    finally:
        sink.kill()
        sink.wait()
    return send_rss, worker_rss


if __name__ == "__main__":
    main()
