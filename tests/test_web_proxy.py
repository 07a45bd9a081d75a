"""The web app under waitress behind a real reverse proxy (nginx, and a small Python one): each
client keeps its own sign-up limit, https answers carry HSTS, and unknown Host names are refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import urlencode

import pytest

from mail_servers import free_port
from newsletter.web import serve_in_thread
from proxy_support import HOST_NAME, NGINX, Answer, NginxProxy, Proxy, PythonProxy
from web_support import SECRET, make_config

LIMIT = 3
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def proxied_config(root, **web):
    """Return the config of a newsletter published at https://news.test behind one proxy."""
    return make_config(root, base_url=f"https://{HOST_NAME}", delivery={"backend": "file"},
                       **{"proxy_hops": 1, "rate_limit_per_hour": LIMIT, **web})


def make_proxy(kind: str, upstream_port: int, folder) -> Proxy:
    """Return the proxy of the given kind in front of upstream_port (not started)."""
    if kind == "nginx":
        if NGINX is None:
            pytest.skip("nginx is not installed (apt-get install -y nginx)")
        return NginxProxy(upstream_port, folder)
    return PythonProxy(upstream_port, folder)


@pytest.fixture(params=["nginx", "python"])
def proxy(request, tmp_path, monkeypatch):
    """Yield a reverse proxy in front of the app served by waitress in a thread."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    server = serve_in_thread(proxied_config(tmp_path), "127.0.0.1", 0)
    try:
        with make_proxy(request.param, server.port, tmp_path) as running:
            running.app_server = server
            yield running
    finally:
        server.stop()


def sign_up(proxy: Proxy, source: str, email: str, forwarded_for: str | None = None) -> Answer:
    """Load the form and post it from the client address source, as a browser would."""
    form = proxy.request("GET", "/subscribe", source=source)
    assert form.status == 200, form.body
    cookie = form.cookies[0].split(";", 1)[0]
    body = urlencode({"csrf_token": _CSRF.search(form.body).group(1), "email": email, "name": ""}).encode()
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return proxy.request("POST", "/subscribe", source=source, headers=headers, body=body)


def test_each_client_behind_the_proxy_has_its_own_limit(proxy):
    # Before: waitress dropped X-Forwarded-For, every visitor was the proxy, and after LIMIT
    # sign-ups in an hour everybody got 429.
    for i in range(2 * LIMIT + 2):
        assert sign_up(proxy, f"127.0.0.{20 + i}", f"reader{i}@example.org").status == 200
    for i in range(1, LIMIT):
        assert sign_up(proxy, "127.0.0.20", f"again{i}@example.org").status == 200
    # The same client over its limit, even when it sends a made-up X-Forwarded-For of its own.
    refused = sign_up(proxy, "127.0.0.20", "more@example.org", forwarded_for="203.0.113.9")
    assert refused.status == 429 and "Too many" in refused.body
    assert sign_up(proxy, "127.0.0.21", "other@example.org").status == 200


def test_https_through_the_proxy_gets_hsts_and_secure_cookies(proxy):
    answer = proxy.request("GET", "/subscribe")
    assert answer.status == 200
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert "Secure" in answer.cookies[0] and "HttpOnly" in answer.cookies[0]


def test_unknown_host_is_refused_and_redirects_stay_on_the_public_name(proxy):
    evil = proxy.request("GET", "/archive", host="evil.example")
    assert evil.status == 400 and "evil.example" not in evil.headers.get("location", "")
    home = proxy.request("GET", "/archive")
    assert home.status in (301, 308)
    assert home.headers["location"] == f"https://{HOST_NAME}/archive/"
    # Straight to waitress (bypassing the proxy) the Host header is checked as well.
    direct = PlainClient(proxy.app_server.port).get("/archive", host="evil.example")
    assert direct.startswith("HTTP/1.1 400")


class PlainClient:
    """Raw HTTP/1.1 to waitress itself, for requests a library would not send as written."""

    def __init__(self, port: int):
        self.port = port

    def get(self, path: str, host: str) -> str:
        """Return the raw response head of GET path with the given Host header."""
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return data.decode("latin-1")


def test_proxy_hops_work_under_the_serve_command(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    port = free_port()
    (tmp_path / "config.toml").write_text(
        f'[newsletter]\nbase_url = "https://{HOST_NAME}"\n[database]\nurl = "sqlite:///state/newsletter.db"\n'
        f'[delivery]\nbackend = "file"\n[web]\nport = {port}\nproxy_hops = 1\nrate_limit_per_hour = 1\n',
        encoding="utf-8")
    env = dict(os.environ, NEWSLETTER_SECRET_KEY=SECRET, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", "--config", str(tmp_path / "config.toml"),
                             "serve", "--host", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=tmp_path, text=True)
    try:
        assert proc.stdout.readline().startswith("Serving"), proc.stderr.read()
        with PythonProxy(port, tmp_path) as front:
            assert sign_up(front, "127.0.0.31", "one@example.org").status == 200
            assert sign_up(front, "127.0.0.32", "two@example.org").status == 200
            assert sign_up(front, "127.0.0.31", "three@example.org").status == 429
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
