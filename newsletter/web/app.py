"""The Flask app: its services, settings, blueprints and security headers, built by create_app(config)."""

from __future__ import annotations

import hashlib

from flask import Flask, Response, redirect, render_template, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Config
from ..db import get_engine
from ..ledger import Ledger
from ..signing import Signer
from ..subscribers.store import SubscriberStore
from . import archive, signup, unsubscribe
from .background import BackgroundJobs
from .context import EXTENSION, Services
from .errorpages import init_error_pages
from .ratelimit import SlidingWindowLimit
from .security import init_security
from .admin import init_admin
from .api import init_api
from .theme import make_theme
from .validate import language

MAX_FORM_BYTES = 16 * 1024      # our forms hold an address, a name and a token


def _session_secret(signer: Signer) -> bytes:
    """Return the key for Flask's session cookie, derived from the signing key (never stored)."""
    # The Signer keeps its key private; a deterministic signature over a fixed, purpose-named
    # payload is a keyed hash of it (HMAC-SHA256), so the session key changes with the signing key.
    marker = signer.unsubscribe_token("session@web.newsletter.invalid", "newsletter.web.session-key")
    return hashlib.sha256(b"newsletter.web.session\0" + marker.encode("ascii")).digest()


def create_app(config: Config) -> Flask:
    """Return the Flask app for config; raises ConfigError when the database or signing key is unusable."""
    app = Flask(__name__, static_folder=None)
    signer = Signer.from_config(config)
    engine = get_engine(config)
    per_hour = max(0, config.web.rate_limit_per_hour)
    app.extensions[EXTENSION] = Services(
        config=config, engine=engine, subscribers=SubscriberStore(engine), ledger=Ledger(engine),
        signer=signer, per_address=SlidingWindowLimit(per_hour), per_ip=SlidingWindowLimit(per_hour),
        jobs=BackgroundJobs())
    base_url = config.newsletter.base_url.rstrip("/")
    app.config.update(
        SECRET_KEY=_session_secret(signer),
        SESSION_COOKIE_NAME="newsletter_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=base_url.startswith("https://"),
        MAX_CONTENT_LENGTH=MAX_FORM_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_BYTES,
        MAX_FORM_PARTS=20,
        NEWSLETTER_BASE_URL=base_url,
    )
    theme = make_theme(config.newsletter.accent_color)
    lang = language(config.newsletter.language)

    @app.context_processor
    def _page_context() -> dict[str, object]:
        """Return what every page template may use: the newsletter settings, language, colours."""
        return {"nl": config.newsletter, "lang": lang, "theme": theme}

    init_security(app)
    init_error_pages(app)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(signup.bp)
    app.register_blueprint(archive.bp)
    init_admin(app)             # the editors' workspace (/admin/) and its JSON API (/api/v1/)
    init_api(app)

    @app.get("/site.css")
    def site_css() -> Response:
        """Return the stylesheet, coloured with the newsletter's accent."""
        resp = Response(render_template("site.css"), mimetype="text/css")
        resp.headers["Cache-Control"] = "public, max-age=3600"
        return resp

    @app.get("/")
    def home() -> Response:
        """Send visitors to the sign-up form."""
        return redirect(url_for("signup.form"))

    if config.web.proxy_hops > 0:
        # Behind reverse proxies the client's address and scheme come from X-Forwarded-* headers,
        # trusted for exactly this many hops (more would let clients forge their address).
        hops = config.web.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
    return app
