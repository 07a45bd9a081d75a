"""What the views share, built once per app by create_app: the config and the stores it opens."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import flask
from flask import Response, current_app, make_response, render_template

from ..inputs import printable

from .background import BackgroundJobs
from .ratelimit import SlidingWindowLimit

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ..config import Config
    from ..ledger import Ledger
    from ..signing import Signer
    from ..subscribers.store import SubscriberStore

EXTENSION = "newsletter"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimits:
    """The sliding-window limits of sign-ups and confirmations: per client network and per mailbox
    (the exact address and the mailbox it reaches, +tags removed, share one limit's keys)."""

    signup_client: SlidingWindowLimit
    signup_mailbox: SlidingWindowLimit
    confirm_client: SlidingWindowLimit
    confirm_mailbox: SlidingWindowLimit

    @classmethod
    def per_hour(cls, n: int) -> "RateLimits":
        """Return limits of n attempts per hour each."""
        return cls(*(SlidingWindowLimit(n) for _ in range(4)))


@dataclass(frozen=True)
class Services:
    """The app's collaborators; one instance per app lives in app.extensions["newsletter"]."""

    config: "Config"
    engine: "Engine"
    subscribers: "SubscriberStore"
    ledger: "Ledger"
    signer: "Signer"
    limits: RateLimits
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


def flash(message: str, category: str = "info") -> None:
    """Flash message for the next page with every character a page or the session cookie cannot
    hold escaped (inputs.printable): an error may quote bytes of a user's file or a server's
    reply, and a lone surrogate would make the session unsavable (a 500 instead of the message)."""
    flask.flash(printable(message), category)
