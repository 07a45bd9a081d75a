"""A test copy of an issue (`send --test`, the editor's "send me a test"): one message outside the
ledger, through the same render, personalisation and backend as the real send."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from ..models import Delivery

log = logging.getLogger("newsletter.pipeline")


def send_test(config: "Config", issue_id: str, address: str, *, list_name: str | None = None) -> "Delivery":
    """Send one copy of issue_id to address with "[TEST]" before the subject, outside the ledger.

    Uses the subscriber's own name and fields when address is on the list. Returns the Delivery;
    raises SubscriberError (bad address), IssueError (never built), StaleRender (changed since
    `build`), ConfigError or DeliveryError.
    """
    from ..backends.base import make_backend
    from ..db import get_engine
    from ..ledger import Ledger
    from ..models import Subscriber
    from ..personalize.message import MessageFactory
    from ..render.inputs import check_current
    from ..render.saved import load_rendered
    from ..subscribers import SubscriberStore, normalise_address
    from .send import send_one

    list_name = list_name or config.delivery.default_list
    email = normalise_address(address)
    rendered = load_rendered(config.paths.state, issue_id)
    engine = get_engine(config)
    check_current(config, issue_id, frozen=Ledger(engine).is_frozen(issue_id))
    known = SubscriberStore(engine).get(email, list_name)
    subscriber = Subscriber(email=email, list=list_name,
                            name=known.name if known else "", fields=known.fields if known else {})
    factory = MessageFactory(rendered, config, list_name=list_name, test=True)
    with make_backend(config) as backend:
        result = send_one(backend, factory, factory.recipient(subscriber))
    log.debug("test copy of %s sent to %s (%s)", issue_id, email, result.message_id)
    return result
