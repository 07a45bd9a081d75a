"""Benchmark several senders: throughput of 1, 2 and 4 `newsletter worker` processes against a slow relay.

    python bench/workers.py [--subscribers N] [--delay 0.05] [--workers 1 2 4] [--pg URL]

A relay answers each message 50 ms after its data (an SMTP server on aiosmtpd, in a process of
its own: real relays and mail APIs take 50-300 ms a message). Each worker sends one chunk at a
time over 4 SMTP connections. For each worker count the workers are started first, then the
send is handed to the queue and timed until its last chunk is done; the relay logs each
message's Message-ID and the run fails unless every subscriber got exactly one copy of each
issue. Runs in a PostgreSQL database it creates (nl_bench_workers) and drops afterwards. One
line per worker count; the last line is the speed-up from the fewest to the most workers.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
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
DRIVER = "import sys; from newsletter.cli import main; main(sys.argv[1:])"


def serve(port: int, delay: float, log: str) -> None:
    """Child: a relay on 127.0.0.1:port that answers each message's data after delay seconds."""
    from aiosmtpd.controller import Controller

    out = open(log, "a", encoding="ascii", buffering=1)

    class Slow:
        async def handle_DATA(self, server, session, envelope):  # noqa: ANN001 - aiosmtpd's API
            await asyncio.sleep(delay)
            head = envelope.content.split(b"\r\n\r\n", 1)[0]
            mid = next((line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                        if line.lower().startswith(b"message-id:")), b"-")
            out.write(mid.decode("ascii", "replace") + "\n")
            return "250 2.0.0 queued"

    controller = Controller(Slow(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()
    out.close()


def run(counts: list[int], n: int, delay: float, pg: str) -> None:
    """Run the benchmark for each worker count; print one line each and the speed-up last."""
    from mail_servers import free_port
    from newsletter.db import dispose_engines

    os.environ[SECRET_ENV] = "bench-secret-0123456789abcdef"
    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-workers-"))
    port = free_port()
    relay_log = work / "relay.log"
    with scratch_database(pg, "nl_bench_workers") as url:
        relay = subprocess.Popen([sys.executable, __file__, "serve", str(port), str(delay), str(relay_log)])
        try:
            rates = measure(work, url, port, counts, n, delay)
        finally:
            relay.send_signal(signal.SIGTERM)
            relay.wait(30)
            dispose_engines()
    ids = collections.Counter(relay_log.read_text().split())
    duplicates = sum(c - 1 for c in ids.values() if c > 1)
    if duplicates or len(ids) != n * len(counts):
        raise SystemExit(f"the relay got {len(ids)} distinct messages ({duplicates} duplicates), "
                         f"expected {n * len(counts)}")
    shutil.rmtree(work, ignore_errors=True)
    print(f"each subscriber got exactly one copy of each issue ({len(ids):,} messages, 0 duplicates)")
    lo, hi = min(counts), max(counts)
    print(f"speed-up from {lo} to {hi} workers: {rates[hi] / rates[lo]:.2f}x")


def measure(work: Path, url: str, port: int, counts: list[int], n: int, delay: float) -> dict[int, float]:
    """Import n subscribers into the database at url, then send an issue with each count of workers
    to the relay on port; print a line each; return {workers: messages per second}."""
    from newsletter.config import load_config
    from newsletter.db import dispose_engines, get_engine
    from newsletter.ledger import Ledger
    from newsletter.pipeline import send_issue
    from newsletter.queue.enqueue import open_chunks
    from newsletter.queue.progress import live_workers
    from newsletter.subscribers.store import SubscriberStore
    from store_support import write_csv, write_issue

    rates: dict[int, float] = {}
    config_file = write_queue_config(work, url, port, smtp="timeout = 30", queue="""\
chunk_size = 200                     # 4 tasks of 50 messages: one per connection
concurrency = 1
heartbeat_seconds = 1.0
stalled_seconds = 5.0""")
    config = load_config(config_file)
    engine = get_engine(config)
    SubscriberStore(engine).import_csv(write_csv(work / "list.csv", n), "default")
    for k in counts:
        write_issue(config, f"b{k}")
        procs = [subprocess.Popen([sys.executable, "-c", DRIVER, "--config", str(config_file), "worker"],
                                  cwd=work, stdout=open(work / f"w{k}-{i}.log", "wb"),
                                  stderr=subprocess.STDOUT) for i in range(k)]
        try:
            end = time.monotonic() + 60
            while len(live_workers(engine, 5)) < k:
                if time.monotonic() > end:
                    raise SystemExit(f"{k} workers did not start; see {work}")
                time.sleep(0.1)
            started = time.monotonic()
            send_issue(config, f"b{k}")
            while open_chunks(engine, f"b{k}"):
                time.sleep(0.05)
            elapsed = time.monotonic() - started
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(60)
        sent = Ledger(engine).counts(f"b{k}")["sent"]
        if sent != n:
            raise SystemExit(f"{k} workers: {sent} of {n} sent; see {work}")
        rates[k] = sent / elapsed
        print(f"{k} worker(s) x 4 connections, relay answering in {delay * 1000:.0f} ms: {n:,} messages "
              f"in {elapsed:.1f} s, {rates[k]:,.0f} messages/s", flush=True)
    dispose_engines()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=4000)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds the relay takes per message")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--pg", default=os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", PG_DEFAULT),
                        help="a PostgreSQL URL on the server to use (a database is created there)")
    args = parser.parse_args()
    run(args.workers, args.subscribers, args.delay, args.pg)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    else:
        main()
