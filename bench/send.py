"""Benchmark `send` end to end on real built issues: SMTP against Postfix's smtp-source, and an HTTP batch API.

    python bench/send.py [--smtp N] [--rss N] [--http N ...] [--repeat R] [--keep DIR]

Issues: the sample issue (the demo's: every article in articles/, built with templates/) and a
12-item issue (the articles' HTML pages twelve times over, as bench/compose.py builds it), both
composed and built by the real pipeline, and N subscribers imported from a CSV.

SMTP: each issue is sent to N subscribers (default 20,000) through the real ledger, every message
personalised, to Postfix's smtp-sink (Debian package postfix; the daemon need not run) with 4
connections; in the same run, before and after, Postfix's smtp-source pushes N messages of the
same size to the same sink over 4 sessions that each reuse their connection (-d), the reference
the ratio is taken against. --rss sends the sample issue once more to a list of that size
(default 100,000) for the peak RSS. HTTP: the SendGrid batch shape (1,000 recipients a call) to
a local stand-in in another process that counts every call's recipients, checks every tenth call
in full and fails the run unless each subscriber arrived exactly once.

Every send runs in a fresh process, after another one imported the subscribers, so its peak RSS
is the send's own. The last line is the main figure: the SMTP ratio to smtp-source per issue.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This checkout's package, not whichever one `pip install -e` last pointed at.
sys.path[:0] = [str(ROOT)]
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
API_KEY_ENV = "BENCH_MAIL_API_KEY"
ISSUES = {"sample": "the sample issue", "twelve": "a 12-item issue"}
CONNECTIONS = 4


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, delivery: str) -> Path:
    """Write config.toml for a benchmark folder (the project's templates); returns its path."""
    path = folder / "config.toml"
    path.write_text(f"""
[newsletter]
name = "Bench Weekly"
sender = "Bench Weekly <news@example.org>"
base_url = "https://news.example.org"
postal_address = "Bench Weekly, 1 Example Street, 12345 Example City"
[paths]
templates = "{ROOT / 'templates'}"
[signing]
secret_env = "{API_KEY_ENV}"
[delivery]
concurrency = {CONNECTIONS}
{delivery}
""", encoding="utf-8")
    return path


# -- child processes -------------------------------------------------------------------------

def child_setup(config_file: str, n: int) -> None:
    """Import n subscribers, compose and build both issues; print each message's size as JSON."""
    from newsletter import issues, pipeline
    from newsletter.config import load_config
    from newsletter.db import get_engine
    from newsletter.personalize.message import sample_message
    from newsletter.subscribers.store import SubscriberStore

    config = load_config(config_file)
    folder = Path(config_file).parent
    csv_file = folder / "subscribers.csv"
    with open(csv_file, "w", encoding="utf-8") as f:
        f.write("email,name,city\n")
        for i in range(n):
            f.write(f"reader{i}@example.org,Reader {i},City {i % 50}\n")
    report = SubscriberStore(get_engine(config)).import_csv(csv_file, "default")
    assert report.added == n and not report.errors, report
    articles = sorted(p for p in (ROOT / "articles").iterdir() if p.suffix in (".html", ".txt", ".md"))
    sources = {"sample": [str(p) for p in articles], "twelve": twelve_pages(folder, articles)}
    sizes = {}
    for issue_id, paths in sources.items():
        issues.create_issue(config.paths.issues, issue_id, "This week in science and space",
                            intro="The stories we enjoyed this week, each in a few sentences.")
        added = pipeline.add_sources(config, issue_id, paths, force=True)
        assert len(added.added) == len(paths), added.failed
        built = pipeline.build_issue(config, issue_id)
        message = sample_message(built.rendered, config, "default")
        sizes[issue_id] = {"size": len(message), "body": len(message) - message.index(b"\r\n\r\n") - 4,
                           "items": len(paths)}
    print(json.dumps(sizes))


def twelve_pages(folder: Path, articles: list[Path]) -> list[str]:
    """Write the articles' HTML pages twelve times over, each with its own canonical URL; return them."""
    pages = [p for p in articles if p.suffix == ".html"]
    out = []
    for i in range(12):
        html = pages[i % len(pages)].read_text(encoding="utf-8")
        dst = folder / f"page{i:02d}.html"
        dst.write_text(html.replace("https://", f"https://r{i}.", 1), encoding="utf-8")
        out.append(str(dst))
    return out


def child_send(config_file: str, issue_id: str) -> None:
    """Send issue_id and print {sent, failed, elapsed, rss_mb} as JSON."""
    from newsletter.config import load_config
    from newsletter.pipeline import send_issue

    report = send_issue(load_config(config_file), issue_id)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"sent": report.sent, "failed": report.failed + report.bounced + report.deferred,
                      "elapsed": report.elapsed, "rss_mb": rss_mb}))


# -- the HTTP API stand-in -------------------------------------------------------------------

class _SendGridSink(BaseHTTPRequestHandler):
    """Accepts every /v3/mail/send call the way SendGrid does (202, X-Message-Id, empty body) and
    checks and counts what it was sent; GET /stats returns the counts."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # else every reply waits ~40 ms for a delayed ACK
    lock = threading.Lock()
    calls = 0
    received: collections.Counter = collections.Counter()   # recipient address -> copies
    problems: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        cls = type(self)
        with cls.lock:
            cls.calls += 1
            call = cls.calls
        # Every call's recipients are counted; every tenth call is also parsed and checked in
        # full, as the provider would (parsing them all would slow the sender sharing the cores).
        addresses = [a.decode() for a in _TO.findall(body)]
        problem = _check_sendgrid(body, addresses) if call % 10 == 1 else ""
        with cls.lock:
            cls.received.update(addresses)
            if problem:
                cls.problems.append(f"call {call}: {problem}")
        self.send_response(202)
        self.send_header("X-Message-Id", f"bench-{call}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            stats = {"calls": cls.calls, "recipients": sum(cls.received.values()),
                     "unique": len(cls.received), "max_copies": max(cls.received.values(), default=0),
                     "digest": _digest(cls.received), "problems": cls.problems[:5]}
        data = json.dumps(stats).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


_MARKER = re.compile(r"NLS[0-9a-f]{8}_[a-z0-9_]+?_SLN")
_TO = re.compile(rb'"to":\[\{"email":"([^"]*)"')       # how the sender writes each personalization


def _check_sendgrid(body: bytes, addresses: list[str]) -> str:
    """Return "" when body is a complete SendGrid v3 /mail/send payload for addresses, else what is wrong."""
    try:
        data = json.loads(body)
        content = {c["type"]: c["value"] for c in data["content"]}
        text, html = content["text/plain"], content["text/html"]
        people = data["personalizations"]
        parsed = [p["to"][0]["email"] for p in people]
        if not data["from"]["email"] or not data["subject"]:
            return "no sender or subject"
    except (ValueError, KeyError, IndexError, TypeError) as err:
        return f"not a SendGrid payload: {err!r}"
    if parsed != addresses or not 1 <= len(people) <= 1000:
        return f"{len(people)} personalizations, {len(addresses)} counted"
    # Every placeholder in the bodies must have a value for every recipient.
    markers = set(_MARKER.findall(text)) | set(_MARKER.findall(html))
    for p in people:
        missing = markers - p.get("substitutions", {}).keys()
        if missing:
            return f"{p['to'][0]['email']} has no value for {sorted(missing)[0]}"
    return ""


def _digest(addresses: Iterable[str]) -> str:
    """Return a SHA-256 over the sorted, distinct addresses (compares who was sent to)."""
    return hashlib.sha256("\n".join(sorted(addresses)).encode()).hexdigest()


def child_http_server(port: int) -> None:
    """Serve the SendGrid stand-in on port until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _SendGridSink)
    server.daemon_threads = True
    server.serve_forever()


def check_received(port: int, n: int) -> None:
    """Ask the stand-in what it received; exit unless every subscriber was sent to exactly once."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=30) as reply:
        stats = json.load(reply)
    expected = _digest(f"reader{i}@example.org" for i in range(n))
    if stats["problems"] or stats["recipients"] != n or stats["unique"] != n or stats["digest"] != expected:
        raise SystemExit(f"the API stand-in did not get every subscriber exactly once: {stats}")


# -- the parent ------------------------------------------------------------------------------

def run_child(*args: str, env: dict[str, str]) -> str:
    """Run this script as a child with args; return its stdout (raise on failure)."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"bench child {args[0]} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def wait_port(port: int) -> None:
    """Wait until something listens on 127.0.0.1:port."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def prepare(folder: Path, n: int, delivery: str, env: dict[str, str]) -> tuple[Path, dict]:
    """Set up n subscribers and both issues in folder; return the config file and the message sizes."""
    folder.mkdir(parents=True)
    config = write_config(folder, delivery)
    return config, json.loads(run_child("setup", str(config), str(n), env=env).strip().splitlines()[-1])


def send(config: Path, issue_id: str, n: int, env: dict[str, str]) -> dict:
    """Send issue_id in a fresh process; return its figures (exit unless all n were sent)."""
    result = json.loads(run_child("send", str(config), issue_id, env=env).strip().splitlines()[-1])
    if result["sent"] != n:
        raise SystemExit(f"expected {n} sent, got {result}")
    return result


def smtp_source(port: int, n: int, body: int) -> float:
    """Return the messages/second smtp-source pushes to the sink: n messages with a body of
    body bytes (its own headers make up the rest), CONNECTIONS sessions that reuse their connection."""
    started = time.monotonic()
    subprocess.run([SOURCE, "-s", str(CONNECTIONS), "-d", "-m", str(n), "-l", str(body), "-f", "news@example.org",
                    "-t", "reader@example.org", f"127.0.0.1:{port}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return n / (time.monotonic() - started)


def bench_smtp(work: Path, n: int, rss_n: int, repeat: int, env: dict[str, str]) -> list[str]:
    """Run the SMTP benchmarks; print a line each; return the summary parts for the last line."""
    for tool in (SINK, SOURCE):
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} not found: apt-get install postfix (the daemon need not run)")
    port = free_port()
    sink = subprocess.Popen([SINK, "-u", "nobody", f"127.0.0.1:{port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = []
    try:
        wait_port(port)
        delivery = (f'backend = "smtp"\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                    f"connections = {CONNECTIONS}\n")
        ratios: dict[str, list[float]] = collections.defaultdict(list)
        for r in range(repeat):
            config, sizes = prepare(work / f"smtp-{r}", n, delivery, env)
            for issue_id, what in ISSUES.items():
                size = sizes[issue_id]
                before = smtp_source(port, n, size["body"])
                ours = send(config, issue_id, n, env)
                after = smtp_source(port, n, size["body"])
                rate, reference = n / ours["elapsed"], (before + after) / 2
                ratios[issue_id].append(rate / reference)
                print(f"smtp, {what} ({size['items']} items, {size['size'] / 1024:.0f} KB), {n:,} subscribers: "
                      f"{rate:,.0f} msg/s; smtp-source (same size, {CONNECTIONS} sessions) {before:,.0f} before, "
                      f"{after:,.0f} after: ratio {rate / reference:.2f}; peak RSS {ours['rss_mb']:.0f} MB",
                      flush=True)
        for issue_id in ISSUES:
            summary.append(f"{statistics.median(ratios[issue_id]):.2f} × smtp-source ({ISSUES[issue_id]})")
        if rss_n:
            config, sizes = prepare(work / "smtp-rss", rss_n, delivery, env)
            ours = send(config, "sample", rss_n, env)
            print(f"smtp, the sample issue, {rss_n:,} subscribers: {rss_n / ours['elapsed']:,.0f} msg/s, "
                  f"{ours['elapsed']:.1f} s, peak RSS {ours['rss_mb']:.0f} MB", flush=True)
            summary.append(f"peak RSS {ours['rss_mb']:.0f} MB at {rss_n:,}")
    finally:
        sink.kill()
        sink.wait()
    return summary


def bench_http(work: Path, n: int, env: dict[str, str]) -> None:
    """Send the sample issue to n subscribers through the SendGrid shape; print one line."""
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "http-server", str(port)])
    try:
        wait_port(port)
        delivery = (f'backend = "http"\n[delivery.http]\nprovider = "sendgrid"\n'
                    f'url = "http://127.0.0.1:{port}/v3/mail/send"\napi_key_env = "{API_KEY_ENV}"\n')
        config, _sizes = prepare(work / f"http-{n}", n, delivery, env)
        r = send(config, "sample", n, env)
        check_received(port, n)
    finally:
        server.kill()
        server.wait()
    print(f"http sendgrid batch, the sample issue, {n:,} subscribers: {n / r['elapsed']:,.0f} recipients/s, "
          f"{r['elapsed']:.2f} s, peak RSS {r['rss_mb']:.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtp", type=int, default=20_000, help="subscribers for the SMTP runs (0: skip)")
    parser.add_argument("--rss", type=int, default=100_000, help="subscribers for the SMTP RSS run (0: skip)")
    parser.add_argument("--http", type=int, nargs="*", default=[20_000, 100_000], help="subscribers for HTTP runs")
    parser.add_argument("--repeat", type=int, default=1, help="SMTP runs per issue (the ratio's median is printed)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folders here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    env = dict(os.environ, **{API_KEY_ENV: "bench-key-0123456789abcdef"})
    summary: list[str] = []
    try:
        for n in args.http:
            bench_http(work, n, env)
        if args.smtp:
            summary = bench_smtp(work, args.smtp, args.rss, max(1, args.repeat), env)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if summary:
        print("SMTP send, end to end: " + "; ".join(summary))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "setup":
        child_setup(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "send":
        child_send(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "http-server":
        child_http_server(int(sys.argv[2]))
    else:
        main()
