"""`newsletter extract` and `newsletter summarize`, run through click with no config file around."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli

ARTICLES = Path(__file__).parent / "data" / "articles"
SEED = ARTICLES / "space-diplomacy.txt"
PAGE = Path(__file__).resolve().parent.parent / "articles" / "cubesat-aurora.html"


def run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


class Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/story":
            body = PAGE.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
        else:
            body = b"gone"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_extract_a_file_without_any_config(tmp_path):
    assert not (tmp_path / "config.toml").exists()
    result = run("extract", str(SEED))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Upon his return from the United States")
    assert "Nathan Thorne" not in result.output and "Medical news" not in result.output


def test_extract_html_from_stdin():
    result = run("extract", "-", input=PAGE.read_bytes())
    assert result.exit_code == 0, result.output
    assert result.output.startswith("For decades, most pictures of the aurora")
    assert "skywatcher_58" not in result.output


def test_extract_json_has_the_metadata():
    result = run("extract", "--json", str(PAGE))
    data = json.loads(result.output)
    assert data["title"] == "A shoebox-sized satellite is watching the northern lights from the side"
    assert data["author"] == "Priya Raman" and data["date"] == "2025-09-16"
    assert data["site_name"] == "Orbital Notes"
    assert data["text"].startswith("For decades")


def test_extract_a_url(site):
    result = run("extract", f"{site}/story")
    assert result.exit_code == 0 and "ArcLight" in result.output


@pytest.mark.parametrize("source, message", [
    ("missing.html", "error: missing.html: file not found\n"),
    ("slides.pdf", "error: slides.pdf: file not found\n"),
])
def test_extract_errors_are_one_line(source, message):
    result = run("extract", source)
    assert result.exit_code == 1
    assert result.stderr == message and result.stdout == ""


def test_extract_http_error_names_the_url(site):
    result = run("extract", f"{site}/nope")
    assert result.exit_code == 1
    assert result.stderr == f"error: {site}/nope: HTTP 404 Not Found\n"


def test_extract_empty_stdin():
    result = run("extract", "-", input="")
    assert result.exit_code == 1 and result.stderr == "error: no article text found in -\n"


def test_a_broken_config_file_is_reported(tmp_path):
    (tmp_path / "config.toml").write_text("[fetch]\nspeed = 3\n", encoding="utf-8")
    result = run("extract", str(SEED))
    assert result.exit_code == 1 and "unknown key 'fetch.speed'" in result.stderr


def test_config_file_settings_are_used(tmp_path):
    (tmp_path / "config.toml").write_text("[fetch]\nmax_bytes = 100\n", encoding="utf-8")
    result = run("extract", str(SEED))
    assert result.exit_code == 1 and "larger than 100 bytes (limit fetch.max_bytes)" in result.stderr


def test_summarize_prints_a_blurb():
    result = run("summarize", str(SEED))
    assert result.exit_code == 0, result.stderr
    blurb = result.stdout.strip()
    assert blurb and len(blurb.split()) <= 60
    for unwanted in ("Medical news", "Nathan Thorne", "Bristol Royal Infirmary", "•"):
        assert unwanted not in blurb


def test_summarize_json_from_stdin_with_options():
    result = run("summarize", "-", "--json", "--summarizer", "lead", "--max-words", "25",
                 input=SEED.read_text(encoding="utf-8"))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"title", "url", "author", "date", "text", "summary"}
    assert data["title"] == "Space Diplomacy: Roscosmos, NASA, and the Evolving Cosmos of Cooperation"
    assert data["author"] == "Nathan Thorne" and data["date"] == "2025-07-31" and data["url"] is None
    assert 0 < len(data["summary"].split()) <= 25


def test_summarize_html_from_stdin_is_sniffed():
    result = run("summarize", "-", "--summarizer", "lead", input=PAGE.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert "aurora" in result.stdout.lower() and "<p>" not in result.stdout


def test_summarize_unknown_summarizer_is_an_error():
    result = run("summarize", str(SEED), "--summarizer", "no-such-summarizer")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
