"""The pre-send checks `build` runs on a render: its own checks (checks.py), the sender's identity,
merge fields no subscriber has and, when asked, dead links (links.py)."""

from __future__ import annotations

from ..config import Config
from ..db import get_engine
from ..models import Issue, Rendered
from ..subscribers import SubscriberStore
from .checks import check_fields, check_identity, check_rendered, fields_used
from .placeholders import STANDARD_FIELDS, field_name


def build_warnings(config: Config, issue: Issue, rendered: Rendered, check_links: bool) -> list[str]:
    """Return the pre-send warnings of a render: its own checks, the sender's identity, unknown
    merge fields (against the fields the subscriber lists have) and, when asked, dead links.

    Returns one line per warning; raises ConfigError when the database cannot be opened."""
    warnings = check_rendered(rendered, issue)
    warnings += check_identity(config.newsletter, str(config.path or "config"))
    if set(fields_used(rendered)) - set(STANDARD_FIELDS):
        warnings += check_fields(rendered, subscriber_fields(config))
    if check_links:
        from .links import check_links as ask, dead_link_warnings, link_targets  # the network: only when asked

        warnings += dead_link_warnings(ask(link_targets(rendered.html), config.fetch))
    return warnings


def subscriber_fields(config: Config) -> set[str]:
    """Return the token names of the custom fields any subscriber of any list has."""
    store = SubscriberStore(get_engine(config))
    return {field_name(str(key)) for name in store.lists()
            for subscriber in store.iter_subscribers(name) for key in subscriber.fields}
