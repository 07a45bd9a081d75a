"""sources.fetch / read_feed / parse_since against a real HTTP server on loopback and real files."""

from __future__ import annotations

import gzip
import io
import re
import socket
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsletter.config import FetchSection
from newsletter.errors import SourceError
from newsletter.articles.feeds import FeedEntry, parse_since, read_feed
from newsletter.articles.sources import fetch

DATA = Path(__file__).parent / "data"
PAGES = Path(__file__).resolve().parent.parent / "articles"   # the project's sample pages
ARTICLE = (PAGES / "cubesat-aurora.html").read_bytes()
RSS = (DATA / "feeds" / "rss.xml").read_bytes()
LATIN1_PAGE = ('<html><head><meta charset="iso-8859-1"><title>Caf\xe9</title></head>'
               '<body><p>Un caf\xe9 na\xefve \x93quoted\x94 \xe0 la cr\xe8me.</p></body></html>')
STREAM_TOTAL = 64 * 1024 * 1024     # what /stream would send if nobody stopped reading


class Handler(BaseHTTPRequestHandler):
    """Routes of the test site; records what it saw on the server object."""

    disable_nagle_algorithm = True      # else every response waits ~40 ms for delayed ACKs
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", ctype="text/html; charset=utf-8", headers=()):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.seen.append((self.path, dict(self.headers)))
        path = self.path
        if path == "/ok":
            self._send(200, ARTICLE)
        elif m := re.fullmatch(r"/hop/(\d+)", path):
            left = int(m.group(1))
            if left:
                self._send(302, b"", headers=[("Location", f"/hop/{left - 1}")])
            else:
                self._send(200, ARTICLE)
        elif path == "/missing":
            self._send(404, b"<h1>Not found</h1>")
        elif path == "/broken":
            self._send(503, b"<h1>Down for maintenance</h1>")
        elif path == "/report.pdf":
            self._send(200, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", ctype="application/pdf")
        elif path == "/photo":
            self._send(200, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ctype="image/png")
        elif path == "/notes.txt":
            self._send(200, "A headline\n\nA paragraph of plain text, long enough to read.".encode(),
                       ctype="text/plain; charset=utf-8")
        elif path == "/latin1":
            self._send(200, LATIN1_PAGE.encode("latin-1"), ctype="text/html")
        elif path == "/untyped":
            self._send(200, b"<!DOCTYPE html><html><body><p>Hello</p></body></html>", ctype="")
        elif path == "/gzipped":
            self._send(200, gzip.compress(ARTICLE), headers=[("Content-Encoding", "gzip")])
        elif path == "/declared-huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
        elif path == "/stream":
            self._stream()
        elif path == "/trickle":
            self._trickle()
        elif path == "/slow":
            time.sleep(2)
            self._send(200, ARTICLE)
        elif path == "/feed.xml":
            self._send(200, RSS.replace(b"<link>/2025", b"<link>/relative/2025"),
                       ctype="application/rss+xml")
        else:
            self._send(404, b"")

    def _trickle(self):
        """Send a byte every 50 ms for up to 10 s: each read is quick, the whole body never ends."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        try:
            for _ in range(200):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    def _stream(self):
        """Send a huge body without Content-Length; record how much went out before the client quit."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        chunk = b"<p>" + b"x" * 65530 + b"</p>"
        sent = 0
        try:
            while sent < STREAM_TOTAL:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        finally:
            self.server.streamed = sent
            self.server.stream_done.set()


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when a client gave up (the /slow
    page answers after the client's timeout): it would land in a later test's captured output."""

    def handle_error(self, request, client_address):  # noqa: ANN001 - socketserver's signature
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def site():
    """Return the base URL of a live test site on 127.0.0.1 and the server object."""
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.seen = []
    server.stream_done = threading.Event()
    server.streamed = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def cfg():
    return FetchSection(connect_timeout=2.0, read_timeout=5.0, max_bytes=1_000_000, max_redirects=5)


# ---------------------------------------------------------------- HTTP

def test_fetches_a_page_with_final_url_and_kind(site, cfg):
    base, _ = site
    doc = fetch(f"{base}/ok", cfg)
    assert doc.kind == "html" and doc.source == f"{base}/ok" and doc.url == f"{base}/ok"
    assert "ArcLight, a three-unit CubeSat" in doc.body


def test_follows_redirects_up_to_the_limit(site, cfg):
    base, _ = site
    doc = fetch(f"{base}/hop/5", cfg)
    assert doc.url == f"{base}/hop/0"


def test_too_many_redirects_is_an_error_naming_the_url(site, cfg):
    base, _ = site
    with pytest.raises(SourceError, match=r"/hop/6: more than 5 redirects"):
        fetch(f"{base}/hop/6", cfg)


@pytest.mark.parametrize("path, message", [
    ("/missing", r"/missing: HTTP 404 Not Found"),
    ("/broken", r"/broken: HTTP 503 Service Unavailable"),
    ("/report.pdf", r"/report.pdf: not an HTML page \(content type application/pdf\)"),
    ("/photo", r"/photo: not an HTML page \(content type image/png\)"),
    ("/declared-huge", r"/declared-huge: page larger than 1000000 bytes"),
])
def test_bad_responses_give_one_clear_line(site, cfg, path, message):
    base, _ = site
    with pytest.raises(SourceError, match=message) as caught:
        fetch(base + path, cfg)
    assert "\n" not in str(caught.value)
    assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, Exception)


def test_size_cap_is_enforced_while_streaming(site, cfg):
    base, server = site
    server.stream_done.clear()
    with pytest.raises(SourceError, match=r"/stream: page larger than 1000000 bytes"):
        fetch(f"{base}/stream", cfg)
    assert server.stream_done.wait(10)
    # The client hung up long before the server could push the whole body.
    assert server.streamed < STREAM_TOTAL / 2


def test_read_timeout(site):
    base, _ = site
    tight = FetchSection(connect_timeout=2.0, read_timeout=0.3)
    with pytest.raises(SourceError, match=r"/slow: no data for 0.3 s \(limit fetch.read_timeout\)"):
        fetch(f"{base}/slow", tight)


def test_a_trickling_body_hits_the_deadline(site):
    base, _ = site
    tight = FetchSection(connect_timeout=2.0, read_timeout=0.5)
    with pytest.raises(SourceError, match=r"/trickle: body not received within 0.5 s"):
        fetch(f"{base}/trickle", tight)


def test_unreachable_host_names_the_host(cfg):
    with socket.socket() as probe:      # a port that was just free: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match=rf"127.0.0.1:{port}/a: cannot reach 127.0.0.1: .*refused"):
        fetch(f"http://127.0.0.1:{port}/a", cfg)


def test_charset_from_meta_when_header_has_none(site, cfg):
    base, _ = site
    doc = fetch(f"{base}/latin1", cfg)
    # iso-8859-1 is read as windows-1252, as browsers do: 0x93/0x94 are curly quotes.
    assert "Un café naïve “quoted” à la crème." in doc.body


def test_plain_text_url_is_a_text_document(site, cfg):
    base, _ = site
    assert fetch(f"{base}/notes.txt", cfg).kind == "text"


def test_missing_content_type_is_sniffed(site, cfg):
    base, _ = site
    assert fetch(f"{base}/untyped", cfg).kind == "html"


def test_gzip_body_is_decompressed(site, cfg):
    base, _ = site
    assert "ArcLight" in fetch(f"{base}/gzipped", cfg).body


def test_user_agent_names_the_tool_unless_configured(site, cfg):
    base, server = site
    fetch(f"{base}/ok", cfg)
    agent = server.seen[-1][1]["User-Agent"]
    assert re.match(r"newsletter/\d+\.\d+", agent)
    fetch(f"{base}/ok", FetchSection(user_agent="DigestBot/2.0 (+mailto:ops@example.org)"))
    assert server.seen[-1][1]["User-Agent"] == "DigestBot/2.0 (+mailto:ops@example.org)"


# ---------------------------------------------------------------- files and stdin

def test_local_html_and_text_files(cfg):
    assert fetch(str(PAGES / "cubesat-aurora.html"), cfg).kind == "html"
    doc = fetch(str(DATA / "articles" / "space-diplomacy.txt"), cfg)
    assert doc.kind == "text" and doc.url is None and doc.body.startswith("Space Diplomacy")


def test_markdown_file_is_text(tmp_path, cfg):
    (tmp_path / "note.md").write_text("# Title\n\nBody text here.", encoding="utf-8")
    assert fetch("note.md", cfg).kind == "text"


@pytest.mark.parametrize("name, content, message", [
    ("gone.html", None, r"gone.html: file not found"),
    ("gone.pdf", None, r"gone.pdf: file not found"),
    ("paper.pdf", b"%PDF-1.7", r"paper.pdf: unknown file type '.pdf'"),
    ("README", b"text", r"README: unknown file type '\(no extension\)'"),
    ("blob.txt", b"abc\x00\x01\x02def", r"blob.txt: binary content"),
])
def test_bad_files_give_one_clear_line(tmp_path, cfg, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceError, match=message):
        fetch(name, cfg)


def test_directory_and_oversized_file(tmp_path):
    (tmp_path / "folder.html").mkdir()
    with pytest.raises(SourceError, match=r"folder.html: is a directory"):
        fetch("folder.html", FetchSection())
    (tmp_path / "big.txt").write_text("word " * 100, encoding="utf-8")
    with pytest.raises(SourceError, match=r"big.txt: file larger than 100 bytes"):
        fetch("big.txt", FetchSection(max_bytes=100))


def test_file_encodings(tmp_path, cfg):
    (tmp_path / "bom.txt").write_bytes("\ufeffCafé au lait".encode("utf-8"))
    assert fetch("bom.txt", cfg).body == "Café au lait"
    text = "Le café était très animé, près de la fenêtre, où l'on parlait d'été. " * 5
    (tmp_path / "latin.txt").write_bytes(text.encode("latin-1"))
    assert "café était très animé" in fetch("latin.txt", cfg).body
    russian = "Спутник передал первые снимки полярного сияния. Команда студентов довольна. " * 4
    (tmp_path / "ru.txt").write_bytes(russian.encode("cp1251"))
    assert "Спутник передал первые снимки" in fetch("ru.txt", cfg).body


def test_stdin_is_sniffed(cfg):
    html = fetch("-", cfg, stdin=io.BytesIO(b"\n  <!doctype html><html><body><p>Hi</p></body></html>"))
    assert html.kind == "html" and html.source == "-"
    text = fetch("-", cfg, stdin=io.BytesIO("A title\n\nSome words, and a < sign.".encode()))
    assert text.kind == "text"
    with pytest.raises(SourceError, match=r"stdin: input larger than 10 bytes"):
        fetch("-", FetchSection(max_bytes=10), stdin=io.BytesIO(b"x" * 11))


# ---------------------------------------------------------------- feeds

def test_rss_entries_newest_first_with_metadata(cfg):
    entries = read_feed(str(DATA / "feeds" / "rss.xml"), cfg)
    assert [e.title for e in entries] == [
        "A shoebox-sized satellite is watching the northern lights from the side",
        "Radar network maps the upper atmosphere in three dimensions",
        "How space weather forecasts are made",
        "Ask us anything about the aurora",         # undated: after the dated ones
    ]                                               # and the entry without a link is gone
    first = entries[0]
    assert isinstance(first, FeedEntry)
    assert first.published == datetime(2025, 9, 16, 8, 30, tzinfo=timezone.utc)
    assert first.summary == "Built by undergraduates, the ArcLight CubeSat images auroras edge-on."
    assert first.author == "Priya Raman"
    # A relative link in a saved feed points into the feed's web site.
    assert entries[2].url == "https://www.orbitalnotes.example/2025/08/14/space-weather-forecasts-explained"


def test_feed_since_and_limit(cfg):
    path = str(DATA / "feeds" / "rss.xml")
    since = datetime(2025, 9, 1, tzinfo=timezone.utc)
    assert [e.url.rsplit("/", 1)[1] for e in read_feed(path, cfg, since=since)] == [
        "arclight-cubesat-aurora-edge-on", "radar-maps-upper-atmosphere"]
    assert len(read_feed(path, cfg, limit=1)) == 1
    naive = datetime(2025, 9, 10)
    assert len(read_feed(path, cfg, since=naive)) == 1
    assert read_feed(path, cfg, since=timedelta(days=1)) == []      # everything is older


def test_atom_feed(cfg):
    entries = read_feed(str(DATA / "feeds" / "atom.xml"), cfg)
    assert [e.title for e in entries] == [
        "Volunteers measured 40,000 street trees. Their data is redrawing a city's heat map",
        "Cool roofs trial cuts classroom temperatures"]
    assert entries[1].published == datetime(2025, 8, 2, 6, 0, tzinfo=timezone.utc)
    assert entries[0].author == "Tomás Herrera"
    assert entries[0].summary == "A two-summer citizen-science survey of the urban canopy."


def test_feed_over_http_resolves_relative_links(site, cfg):
    base, _ = site
    entries = read_feed(f"{base}/feed.xml", cfg)
    assert f"{base}/relative/2025/08/14/space-weather-forecasts-explained" in [e.url for e in entries]


@pytest.mark.parametrize("source", [DATA / "feeds/malformed.xml", PAGES / "cubesat-aurora.html",
                                    DATA / "articles/space-diplomacy.txt"])
def test_not_a_feed_is_an_error_naming_it(cfg, source):
    with pytest.raises(SourceError, match=rf"{re.escape(str(source))}: not a valid RSS/Atom feed"):
        read_feed(str(source), cfg)


def test_feed_http_errors(site, cfg):
    base, _ = site
    with pytest.raises(SourceError, match=r"/missing: HTTP 404"):
        read_feed(f"{base}/missing", cfg)
    with pytest.raises(SourceError, match=r"/photo: not a feed \(content type image/png\)"):
        read_feed(f"{base}/photo", cfg)
    with pytest.raises(SourceError, match=r"nofeed.xml: file not found"):
        read_feed("nofeed.xml", cfg)


# ---------------------------------------------------------------- parse_since

@pytest.mark.parametrize("text, expected", [
    ("7d", timedelta(days=7)),
    ("12h", timedelta(hours=12)),
    ("2w", timedelta(weeks=2)),
    (" 3D ", timedelta(days=3)),
    ("2025-07-01", datetime(2025, 7, 1, tzinfo=timezone.utc)),
    ("2025-07-01T12:00:00+02:00", datetime(2025, 7, 1, 10, tzinfo=timezone.utc)),
    ("2025-07-01T12:00:00", datetime(2025, 7, 1, 12, tzinfo=timezone.utc)),
])
def test_parse_since(text, expected):
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "7", "week", "7y", "2025-13-01", "yesterday"])
def test_parse_since_rejects_with_a_hint(text):
    with pytest.raises(SourceError, match=r"expected a duration such as 12h, 7d or 2w"):
        parse_since(text)


LOCAL_LINK_FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Saved feed</title>
<item><title>Notes</title><link>{notes}</link></item>
<item><title>File URL</title><link>file://{notes}</link></item>
<item><title>Script</title><link>javascript:alert(1)</link></item>
<item><title>Relative</title><link>notes.txt</link></item>
<item><title>Web</title><link>https://news.example.org/story</link></item>
</channel></rss>
"""


def test_feed_items_link_only_to_the_web(tmp_path, cfg):
    notes = tmp_path / "notes.txt"
    notes.write_text("Private notes that must never reach an issue.", encoding="utf-8")
    feed = tmp_path / "saved.xml"
    feed.write_text(LOCAL_LINK_FEED.format(notes=notes), encoding="utf-8")
    assert [e.url for e in read_feed(str(feed), cfg)] == ["https://news.example.org/story"]


def test_a_saved_feed_never_pulls_a_local_file_into_an_issue(tmp_path):
    from config_support import build_config
    from newsletter import issues
    from newsletter.pipeline import add_feed

    notes = tmp_path / "notes.txt"
    notes.write_text("Private notes that must never reach an issue.", encoding="utf-8")
    feed = tmp_path / "saved.xml"
    feed.write_text(LOCAL_LINK_FEED.format(notes=notes).replace(
        "<item><title>Web</title><link>https://news.example.org/story</link></item>\n", ""), encoding="utf-8")
    config = build_config(tmp_path)
    issues.create_issue(config.paths.issues, "w1", "Week 1")
    report = add_feed(config, "w1", str(feed))
    assert report.added == [] and report.failed == []
    assert "Private notes" not in issues.issue_path(config.paths.issues, "w1").read_text(encoding="utf-8")
