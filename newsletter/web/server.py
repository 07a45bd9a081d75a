"""Serving the app with waitress: in the foreground (`newsletter serve`) or in a background thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask
from waitress import wasyncore
from waitress.server import BaseWSGIServer, create_server

from ..config import Config
from ..errors import ConfigError
from .app import create_app
from .context import EXTENSION
from .sending import SENDS
from .inbox_fetch import EXTENSION as INBOX_FETCH

log = logging.getLogger(__name__)

THREADS = 4     # waitress worker threads: sign-ups and archive pages are short requests
MAX_HEADER_BYTES = 32 * 1024    # request line and headers: our URLs and cookies are short


def waitress_settings(config: Config) -> dict[str, object]:
    """Return waitress's settings for [web]: body, header and connection limits, idle timeout,
    and whether the X-Forwarded-* headers reach the app (ProxyFix in create_app reads them)."""
    web = config.web
    return {
        "threads": THREADS,
        "ident": "newsletter",
        # A larger body is refused (413) from its Content-Length, before waitress reads or
        # buffers it to a temporary file; Flask's MAX_CONTENT_LENGTH then limits each form.
        "max_request_body_size": web.max_body_bytes,
        "max_request_header_size": MAX_HEADER_BYTES,
        "connection_limit": web.max_connections,
        # Idle and stalled connections are closed after idle_timeout seconds (checked every
        # cleanup_interval), so a crowd of silent connections cannot hold every slot for long.
        "channel_timeout": web.idle_timeout,
        "cleanup_interval": max(1, min(web.idle_timeout // 2, 30)),
        "asyncore_use_poll": True,      # select() stops at file descriptor 1024
        # waitress 3 deletes X-Forwarded-* unless told that a trusted proxy sent them; with
        # proxy_hops the app's ProxyFix takes the right-most proxy_hops values (no more, or clients
        # could forge their address), so waitress must hand them on.
        "clear_untrusted_proxy_headers": web.proxy_hops == 0,
    }


def _bind(app: Flask, config: Config, host: str, port: int, socket_map: dict) -> BaseWSGIServer:
    """Return a waitress server bound to host:port serving app; raises ConfigError."""
    try:
        server = create_server(app, map=socket_map, host=host, port=port, **waitress_settings(config))
    except (OSError, ValueError) as err:
        raise ConfigError(f"web: cannot listen on {host}:{port}: {err}") from err
    if not isinstance(server, BaseWSGIServer):
        # A host name that resolves to several addresses gives several sockets; ask for one.
        wasyncore.close_all(socket_map)
        raise ConfigError(f"web.host {host!r} resolves to several addresses; give one IP address")
    return server


def serve(config: Config, host: str, port: int,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the app on host:port until interrupted; raises ConfigError when it cannot listen.

    on_ready, when given, is called with the listening URL once the socket is bound.
    """
    app = create_app(config)
    server = _bind(app, config, host, port, {})
    url = _url(str(server.effective_host), int(server.effective_port))
    log.debug("web app listening on %s", url)     # on_ready (the CLI) tells the user
    if on_ready is not None:
        on_ready(url)
    try:
        server.run()
    finally:
        # Sends started from the editor stop at their next safe point; the next send resumes them.
        app.extensions[SENDS].stop()


def _url(host: str, port: int) -> str:
    """Return http://host:port, bracketing IPv6 addresses."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class WebServer:
    """A running background server: its address, and stop() to shut it down."""

    host: str
    port: int
    app: Flask = field(repr=False)
    _server: BaseWSGIServer = field(repr=False)
    _map: dict = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        """Return the base URL the server answers on (http://host:port)."""
        return _url(self.host, self.port)

    def stop(self, timeout: float = 10.0) -> None:
        """Close the listening socket and every connection, wait for the thread, finish queued sign-ups."""
        if self._thread.is_alive():
            # Closing sockets from another thread races with the poll loop: let the loop close them.
            socket_map = self._map
            try:
                self._server.trigger.pull_trigger(lambda: wasyncore.close_all(socket_map))
            except OSError:     # the loop closed its trigger already (it is ending): close from here
                wasyncore.close_all(socket_map)
            self._thread.join(timeout)
            self._server.task_dispatcher.shutdown(timeout=timeout)
        self.app.extensions[EXTENSION].jobs.shutdown(wait=True)
        self.app.extensions[SENDS].stop()
        fetcher = self.app.extensions.get(INBOX_FETCH)
        if fetcher is not None:
            # Queued inbox fetches are dropped (the next start fetches them); a running one finishes.
            fetcher.jobs.shutdown(wait=True, cancel=True)

    def __enter__(self) -> "WebServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(config: Config, host: str | None = None, port: int | None = None) -> WebServer:
    """Start the app in a daemon thread (port 0 picks a free one); return the running WebServer.

    Defaults come from [web] host and port. Raises ConfigError when it cannot listen.
    """
    host = config.web.host if host is None else host
    port = config.web.port if port is None else port

    socket_map: dict = {}
    app = create_app(config)
    server = _bind(app, config, host, port, socket_map)

    def run() -> None:
        try:
            server.run()
        except Exception:  # the loop must not die silently: the operator needs to know
            log.exception("the web server stopped on an error")

    thread = threading.Thread(target=run, name="newsletter-web", daemon=True)
    thread.start()
    log.info("web app listening on %s", _url(str(server.effective_host), int(server.effective_port)))
    return WebServer(str(server.effective_host), int(server.effective_port), app, server, socket_map, thread)
