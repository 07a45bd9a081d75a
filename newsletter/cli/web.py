"""`newsletter serve`: the web app (unsubscribe, sign-up, archive) under waitress."""

from __future__ import annotations

import click

from .. import signing
from .common import AppContext, pass_app, say, warn
from .group import cli


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: [web] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port to listen on (default: [web] port, 8000).")
@pass_app
def serve(app: AppContext, host: str | None, port: int | None) -> None:
    """Serve the unsubscribe, sign-up and archive pages until interrupted."""
    from ..web import serve as serve_app

    config = app.config
    key_warning = signing.key_warning(config)
    if key_warning:
        warn(key_warning)
    host = config.web.host if host is None else host
    port = config.web.port if port is None else port

    def ready(url: str) -> None:
        say(f"Serving {config.newsletter.name} on {url}/ "
            f"(links in emails point to {config.newsletter.base_url}); Ctrl+C stops.")

    serve_app(config, host, port, on_ready=ready)
