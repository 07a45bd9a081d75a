"""What the views share, built once per app by create_app: the config and the stores it opens."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Response, current_app, make_response, render_template

from .background import BackgroundJobs
from .ratelimit import SlidingWindowLimit

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ..config import Config
    from ..ledger import Ledger
    from ..models import Subscriber
    from ..signing import Signer
    from ..subscribers.store import SubscriberStore

EXTENSION = "newsletter"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """The app's collaborators; one instance per app lives in app.extensions["newsletter"]."""

    config: "Config"
    engine: "Engine"
    subscribers: "SubscriberStore"
    ledger: "Ledger"
    signer: "Signer"
    per_address: SlidingWindowLimit
    per_ip: SlidingWindowLimit
    jobs: BackgroundJobs        # sign-ups are processed here, after the answer went out

    @property
    def base_url(self) -> str:
        """Return the public base URL without a trailing slash (links in emails and feeds)."""
        return self.config.newsletter.base_url.rstrip("/")

    @property
    def list_name(self) -> str:
        """Return the list that web sign-ups join."""
        return self.config.delivery.default_list


def services() -> Services:
    """Return the Services of the app handling the current request."""
    return current_app.extensions[EXTENSION]


def page(template: str, status: int = 200, **context: object) -> Response:
    """Return a response rendering template with context and the given status."""
    return make_response(render_template(template, **context), status)


def subscriber_from_token(token: str, read: "Callable[[str], tuple[str, str]]", bad_link: str) -> "Subscriber":
    """Return the subscriber a signed token names (read() decodes it); abort 400 with bad_link otherwise."""
    from flask import abort

    from ..errors import NewsletterError
    from ..signing import TokenError
    from .validate import is_token

    if not is_token(token):
        abort(400, description=bad_link)
    try:
        email, list_name = read(token)
        subscriber = services().subscribers.get(email, list_name)
    except TokenError:
        abort(400, description=bad_link)
    except NewsletterError as err:
        # A correctly signed token naming an address the store rejects: log it, tell nothing.
        log.warning("a signed link names an unusable address: %s", err)
        abort(400, description=bad_link)
    if subscriber is None:
        abort(400, description=bad_link)
    return subscriber
