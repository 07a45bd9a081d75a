"""Benchmark `send` end to end: messages/second and peak RSS, over SMTP and an HTTP batch API.

    python bench/send.py [--smtp N] [--http N ...] [--keep DIR]

SMTP: N subscribers (default 20,000) to Postfix's smtp-sink (Debian package postfix; the daemon
need not run) on 127.0.0.1: every message is personalised, built and sent through the real
ledger. HTTP: the http backend with the SendGrid batch shape (1,000 recipients a call) to a
local HTTP server in another process, at each N given (default 20,000 and 100,000: peak RSS
should stay flat as the list grows); the server counts every call's recipients and checks every
tenth call in full, and the run fails unless each subscriber arrived exactly once. Each send runs
in a fresh process, after the subscribers were imported by another one, so its peak RSS is the
send's own. One line per benchmark; the last line is the main figure (SMTP messages/second).
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
API_KEY_ENV = "BENCH_MAIL_API_KEY"


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, delivery: str) -> Path:
    """Write config.toml for a benchmark folder; returns its path."""
    path = folder / "config.toml"
    path.write_text(f"""
[newsletter]
name = "Bench Weekly"
sender = "Bench Weekly <news@example.org>"
base_url = "https://news.example.org"
[signing]
secret_env = "{API_KEY_ENV}"
[delivery]
concurrency = 4
{delivery}
""", encoding="utf-8")
    return path


# -- child processes -------------------------------------------------------------------------

def child_setup(config_file: str, n: int) -> None:
    """Import n subscribers and save a built issue (personalisation tokens in both bodies)."""
    from newsletter.render import placeholders as tokens
    from newsletter.config import load_config
    from newsletter.render.saved import save_rendered
    from newsletter.models import Rendered
    from newsletter.db import get_engine
    from newsletter.subscribers.store import SubscriberStore

    config = load_config(config_file)
    csv_file = Path(config_file).parent / "subscribers.csv"
    with open(csv_file, "w", encoding="utf-8") as f:
        f.write("email,name,city\n")
        for i in range(n):
            f.write(f"reader{i}@example.org,Reader {i},City {i % 50}\n")
    report = SubscriberStore(get_engine(config)).import_csv(csv_file, "default")
    assert report.added == n and not report.errors, report
    nonce = tokens.new_nonce()
    t = lambda f: tokens.token(nonce, f)  # noqa: E731
    article = "<p>" + "A paragraph of a typical digest with a link and some words. " * 12 + "</p>"
    html = (f"<html><body><p>Hello {t('name')} in {t('city')},</p>{article * 8}"
            f"<p><a href=\"{t('view_url')}\">View online</a> · "
            f"<a href=\"{t('unsubscribe_url')}\">Unsubscribe</a></p></body></html>")
    text = f"Hello {t('name')} in {t('city')},\n\n{'Some digest text. ' * 200}\n\nUnsubscribe: {t('unsubscribe_url')}\n"
    save_rendered(config.paths.state, Rendered("bench", "Bench digest", "This week", html, text, nonce))


def child_send(config_file: str) -> None:
    """Send issue "bench" and print {sent, elapsed, rss_mb} as JSON."""
    from newsletter.config import load_config
    from newsletter.pipeline import send_issue

    report = send_issue(load_config(config_file), "bench")
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
        # full, as the provider would. Parsing them all costs this 2-core machine a few percent
        # of the sender's speed (the stand-in shares the cores with it).
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
            copies = max(cls.received.values(), default=0)
            stats = {"calls": cls.calls, "recipients": sum(cls.received.values()),
                     "unique": len(cls.received), "max_copies": copies,
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

def run_child(*args: str, env: dict[str, str] | None = None) -> str:
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


def bench(folder: Path, n: int, delivery: str, env: dict[str, str]) -> dict:
    """Set up n subscribers in folder, send once, return the child's figures."""
    folder.mkdir(parents=True)
    config = write_config(folder, delivery)
    run_child("setup", str(config), str(n), env=env)
    result = json.loads(run_child("send", str(config), env=env).strip().splitlines()[-1])
    if result["sent"] != n:
        raise SystemExit(f"expected {n} sent, got {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtp", type=int, default=20_000, help="subscribers for the SMTP run (0: skip)")
    parser.add_argument("--http", type=int, nargs="*", default=[20_000, 100_000], help="subscribers for HTTP runs")
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folders here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    env = dict(os.environ, **{API_KEY_ENV: "bench-key-0123456789abcdef"})
    main_line = ""
    try:
        for n in args.http:
            port = free_port()
            server = subprocess.Popen([sys.executable, __file__, "http-server", str(port)])
            try:
                wait_port(port)
                delivery = (f'backend = "http"\n[delivery.http]\nprovider = "sendgrid"\n'
                            f'url = "http://127.0.0.1:{port}/v3/mail/send"\napi_key_env = "{API_KEY_ENV}"\n')
                r = bench(work / f"http-{n}", n, delivery, env)
                check_received(port, n)
            finally:
                server.kill()
                server.wait()
            print(f"http sendgrid batch, {n:,} subscribers: {n / r['elapsed']:,.0f} recipients/s, "
                  f"{r['elapsed']:.2f} s, peak RSS {r['rss_mb']:.0f} MB", flush=True)
        if args.smtp:
            if not os.path.exists(SINK):
                raise SystemExit("smtp-sink not found: apt-get install postfix (the daemon need not run)")
            port = free_port()
            sink = subprocess.Popen([SINK, "-u", "nobody", f"127.0.0.1:{port}", "256"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_port(port)
                delivery = (f'backend = "smtp"\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                            "connections = 4\n")
                r = bench(work / "smtp", args.smtp, delivery, env)
            finally:
                sink.kill()
                sink.wait()
            rate = args.smtp / r["elapsed"]
            print(f"smtp to smtp-sink, {args.smtp:,} subscribers: {rate:,.0f} messages/s, "
                  f"{r['elapsed']:.2f} s, peak RSS {r['rss_mb']:.0f} MB", flush=True)
            main_line = f"{rate:,.0f} messages/s (SMTP, personalised, end to end; peak RSS {r['rss_mb']:.0f} MB)"
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if main_line:
        print(main_line)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "setup":
        child_setup(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "send":
        child_send(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "http-server":
        child_http_server(int(sys.argv[2]))
    else:
        main()
