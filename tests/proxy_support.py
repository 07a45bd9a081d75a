"""Reverse proxies in front of the web app, as production runs it: nginx from Debian's package (a
child process with a temporary config) or a small Python one; both terminate TLS and send
X-Forwarded-For/-Proto/-Host. And an HTTP client that can speak from any 127.0.0.x address."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mail_servers import free_port, make_certs

HOST_NAME = "news.test"         # the public name: newsletter.base_url is https://news.test
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "content-length"}


@dataclass
class Answer:
    """One HTTP response: status, headers (lower-case names, repeated ones joined) and body text."""

    status: int
    headers: dict[str, str]
    body: str
    cookies: list[str] = field(default_factory=list)


class Proxy:
    """A running TLS-terminating reverse proxy on 127.0.0.1:port; request() talks to it."""

    port: int
    ca: Path

    def request(self, method: str, path: str, *, source: str = "127.0.0.1", host: str = HOST_NAME,
                headers: dict[str, str] | None = None, body: bytes | None = None) -> Answer:
        """Send one request over TLS from the local address source; return the Answer."""
        context = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=20, context=context,
                                           source_address=(source, 0))
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host)
            for key, value in (headers or {}).items():
                conn.putheader(key, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read().decode("utf-8", "replace")
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data,
                          resp.headers.get_all("Set-Cookie") or [])
        finally:
            conn.close()


class _Forward(BaseHTTPRequestHandler):
    """Forwards one request to the upstream app, adding the X-Forwarded-* headers nginx would."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # or every response waits ~40 ms for a delayed ACK
    upstream: tuple[str, int] = ("127.0.0.1", 0)

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        prior = self.headers.get("X-Forwarded-For")
        client = self.client_address[0]
        headers["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
        headers["X-Forwarded-Proto"] = "https"
        headers["X-Forwarded-Host"] = self.headers.get("Host", "")
        conn = http.client.HTTPConnection(*self.upstream, timeout=20)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            conn.close()

    do_GET = do_POST = do_HEAD = do_PUT = _forward

    def log_message(self, *args: object) -> None:
        pass


class PythonProxy(Proxy):
    """A threaded Python reverse proxy with TLS, like nginx's proxy_pass with the usual headers."""

    def __init__(self, upstream_port: int, folder: Path):
        self.ca, cert, key = make_certs(folder / "certs", HOST_NAME)
        handler = type("Forward", (_Forward,), {"upstream": ("127.0.0.1", upstream_port)})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "PythonProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {host};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        client_max_body_size 64k;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}
}}
"""


class NginxProxy(Proxy):
    """nginx (Debian's package) as a child process with a config of its own; stopped on exit."""

    def __init__(self, upstream_port: int, folder: Path):
        assert NGINX, "nginx is not installed"
        self.dir = folder / "nginx"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca, cert, key = make_certs(folder / "certs", HOST_NAME)
        self.port = free_port()
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port, host=HOST_NAME, cert=cert,
                                               key=key, upstream=upstream_port), encoding="utf-8")
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "NginxProxy":
        self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(self.conf), "-e",
                                      str(self.dir / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("nginx did not start listening")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc.stderr.close()
            self.proc = None
