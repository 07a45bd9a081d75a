"""Serving the app: `newsletter serve` in a real process, and serve_in_thread for `newsletter run`."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time

import pytest
import requests

from newsletter.errors import ConfigError
from newsletter.web import serve_in_thread
from mail_servers import free_port
from web_support import SECRET, make_config, status_of, store, unsubscribe_token

CONFIG = """\
[newsletter]
name = "Served Weekly"
base_url = "http://127.0.0.1:{port}"
[database]
url = "sqlite:///state/newsletter.db"
[web]
port = {port}
"""


def test_serve_in_thread_answers_and_stops(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    server = serve_in_thread(make_config(tmp_path), "127.0.0.1", 0)
    try:
        assert server.port > 0
        resp = requests.get(f"{server.url}/subscribe", timeout=10)
        assert resp.status_code == 200 and "Subscribe to Test Weekly" in resp.text
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/subscribe", timeout=5)


def test_serve_in_thread_on_a_busy_port_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ConfigError, match="cannot listen"):
            serve_in_thread(make_config(tmp_path), "127.0.0.1", busy.getsockname()[1])


def _start_cli(tmp_path, port: int) -> subprocess.Popen:
    """Start `newsletter serve` on port in its own process, with its config under tmp_path."""
    (tmp_path / "config.toml").write_text(CONFIG.format(port=port), encoding="utf-8")
    env = dict(os.environ, NEWSLETTER_SECRET_KEY=SECRET, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-c", "from newsletter.cli import main; main()",
         "--config", str(tmp_path / "config.toml"), "serve", "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path, text=True)


def _first_line(stream, deadline: float) -> str:
    """Return the first line the process writes on stream, waiting until deadline."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                return stream.readline()
    return ""


def test_serve_command_serves_one_click_unsubscribe(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)     # this process makes the token
    port = free_port()
    proc = _start_cli(tmp_path, port)
    try:
        line = _first_line(proc.stdout, time.monotonic() + 30)
        assert line.startswith(f"Serving Served Weekly on http://127.0.0.1:{port}/"), line
        config = make_config(tmp_path, base_url=f"http://127.0.0.1:{port}")
        store(config).add("cli@example.org", status="active")
        url = f"http://127.0.0.1:{port}/u/" + unsubscribe_token(config, "cli@example.org")
        resp = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
        assert resp.status_code == 200
        assert status_of(config, "cli@example.org") == "unsubscribed"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_serve_command_reports_a_busy_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = _start_cli(tmp_path, busy.getsockname()[1])
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.startswith("error: web: cannot listen on 127.0.0.1:")
    assert "Traceback" not in err and out == ""
