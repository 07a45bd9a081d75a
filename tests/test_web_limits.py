"""waitress's limits, on a real server: oversized bodies refused unread, idle connections closed,
so that a crowd of silent connections cannot lock everybody out for long."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from newsletter.web import serve_in_thread
from web_support import SECRET, make_config


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    running = serve_in_thread(make_config(tmp_path, base_url="http://127.0.0.1", max_connections=4,
                                          idle_timeout=1, max_body_bytes=64 * 1024), "127.0.0.1", 0)
    yield running
    running.stop()


def raw(port: int, head: str, body: bytes = b"", timeout: float = 10) -> str:
    """Send a request head (and body) on a new connection; return the response's first line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def test_a_huge_body_is_refused_from_its_length_before_it_is_sent(server):
    # 512 MB announced, nothing sent: waitress answers 413 at once instead of reading (and
    # spooling to a temp file) what Flask would refuse later.
    started = time.monotonic()
    line = raw(server.port, "POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                            "application/x-www-form-urlencoded\r\nContent-Length: 536870912\r\n\r\n")
    assert line.startswith("HTTP/1.1 413"), line
    assert time.monotonic() - started < 5


def test_a_chunked_body_over_the_limit_is_refused(server):
    chunk = b"x" * 16384
    body = b"".join(b"4000\r\n" + chunk + b"\r\n" for _ in range(6)) + b"0\r\n\r\n"
    line = raw(server.port, "POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                            "Content-Type: application/x-www-form-urlencoded\r\n\r\n", body)
    assert line.startswith("HTTP/1.1 413"), line


def test_oversized_headers_are_refused(server):
    line = raw(server.port, "GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + "a" * 40_000 + "\r\n\r\n")
    assert line.split()[1] in ("400", "413", "431"), line


def test_idle_connections_are_closed_and_free_their_slots(server):
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(12)]
    try:
        # Three times the connection limit sit silent; a real visitor still gets an answer once
        # the idle ones time out (1 s here).
        started = time.monotonic()
        resp = requests.get(f"{server.url}/subscribe", timeout=15)
        assert resp.status_code == 200
        assert time.monotonic() - started < 10
        # And the server hung up on the silent ones.
        for sock in idle[:4]:
            assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
