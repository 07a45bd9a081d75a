"""The Flask app: its services, settings, blueprints and security headers, built by create_app(config)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, redirect, render_template, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Config
from ..db import get_engine
from ..ledger import Ledger
from ..signing import Signer
from ..subscribers.store import SubscriberStore
from . import archive, signup, unsubscribe
from .hooks import init_hooks
from .background import BackgroundJobs
from .context import EXTENSION, RateLimits, Services
from .errorpages import init_error_pages
from .security import init_security
from .admin import init_admin
from .api import init_api
from .inbox_fetch import init_inbox_fetch
from .theme import make_theme
from .validate import language, mask_address

MAX_FORM_BYTES = 16 * 1024      # our forms hold an address, a name and a token
# Answered by default besides newsletter.base_url's host: checks from the machine itself.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def trusted_hosts(config: Config) -> tuple[str, ...]:
    """Return the Host names the app answers to: web.trusted_hosts (or the loopback names when
    none are set) and always the host of newsletter.base_url, lower-cased."""
    base_host = urlsplit(config.newsletter.base_url).hostname or ""
    if ":" in base_host:
        base_host = f"[{base_host}]"        # urlsplit drops an IPv6 literal's brackets
    hosts = config.web.trusted_hosts or LOOPBACK_HOSTS
    return tuple(dict.fromkeys(h.lower() for h in (*hosts, base_host) if h))


def create_app(config: Config) -> Flask:
    """Return the Flask app for config; raises ConfigError when the database or signing key is unusable."""
    app = Flask(__name__, static_folder=None)
    signer = Signer.from_config(config)
    engine = get_engine(config)
    app.extensions[EXTENSION] = Services(
        config=config, engine=engine, subscribers=SubscriberStore(engine), ledger=Ledger(engine),
        signer=signer, limits=RateLimits.per_hour(config.web.rate_limit_per_hour), jobs=BackgroundJobs())
    base_url = config.newsletter.base_url.rstrip("/")
    app.config.update(
        # Derived from the signing key (never stored): it changes when the signing key does.
        SECRET_KEY=signer.derive("newsletter.web.session"),
        SESSION_COOKIE_NAME="newsletter_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=base_url.startswith("https://"),
        MAX_CONTENT_LENGTH=MAX_FORM_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_BYTES,
        MAX_FORM_PARTS=20,
        NEWSLETTER_BASE_URL=base_url,
        NEWSLETTER_TRUSTED_HOSTS=trusted_hosts(config),
    )
    theme = make_theme(config.newsletter.accent_color)
    lang = language(config.newsletter.language)

    @app.context_processor
    def _page_context() -> dict[str, object]:
        """Return what every page template may use: the newsletter settings, language, colours."""
        return {"nl": config.newsletter, "lang": lang, "theme": theme}

    app.jinja_env.filters["masked"] = mask_address
    init_security(app)
    init_error_pages(app)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(signup.bp)
    app.register_blueprint(archive.bp)
    init_hooks(app, config)         # /hooks/<provider>: bounce and complaint webhooks
    init_admin(app)             # the editors' workspace (/admin/) and its JSON API (/api/v1/)
    init_api(app)
    init_inbox_fetch(app, config, engine)   # new inbox links are fetched in the background

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
