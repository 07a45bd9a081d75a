"""The automatic digest's feed entries on their way into its issue (pipeline.compose_digest):
one queue of candidates in order, taken feed by feed, each feed's undated entries remembered."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .duplicates import url_key

if TYPE_CHECKING:
    from .compose import AddReport
    from .feedmemory import FeedMemory
    from .feeds import FeedCandidate

log = logging.getLogger("newsletter.pipeline")


@dataclass
class DigestCompose:
    """What composing an automatic issue did: its item count, the feeds that could not be read,
    and the new entries that did not fit (carried to the next issue)."""

    items: int
    failed_feeds: list[str]
    overflow: list["FeedCandidate"] = field(default_factory=list)


def candidate_queue(candidates: Iterable["FeedCandidate"]) -> list["FeedCandidate"]:
    """Return candidates in order with each story once (by canonical link): the first one wins."""
    queue: list[FeedCandidate] = []
    keys: set[str] = set()
    for candidate in candidates:
        if url_key(candidate.url) not in keys:
            keys.add(url_key(candidate.url))
            queue.append(candidate)
    return queue


def feed_groups(batch: list["FeedCandidate"]) -> list[list["FeedCandidate"]]:
    """Return batch split by feed, in the feeds' order in [sources] (each group goes to its section)."""
    return [[c for c in batch if c.order == order] for order in sorted({c.order for c in batch})]


def note_group(issue_id: str, memory: "FeedMemory", group: list["FeedCandidate"], report: "AddReport") -> None:
    """Log what adding group to issue_id did, and remember its undated entries that went in."""
    for _source, line in report.failed:
        log.warning("automatic digest %s: %s", issue_id, line)
    for source, why in report.skipped:
        log.info("automatic digest %s: %s skipped, %s", issue_id, source, why)
    failed_urls = {source for source, _line in report.failed}
    for feed in {c.feed for c in group if c.guid}:
        memory.remember(feed, [c.guid for c in group if c.feed == feed and c.guid and c.url not in failed_urls])
