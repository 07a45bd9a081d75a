"""The web app: one-click unsubscribe, double opt-in sign-up and the public archive (Flask).

`create_app(config)` (app.py) is the WSGI app for any server; `serve` runs it under waitress.
"""

from .app import create_app
from .server import WebServer, serve, serve_in_thread

__all__ = ["create_app", "serve", "serve_in_thread", "WebServer"]
