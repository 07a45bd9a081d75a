"""The automatic digest: at each cron firing, build an issue from the feeds' new items and send it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from .. import issues, pipeline
from ..config import Config
from ..db import get_engine
from ..errors import IssueError, NewsletterError
from ..models import DigestState
from ..render.issue import format_date
from .records import (
    CarriedEntry,
    claim_digest,
    first_firing,
    get_digest,
    load_carry,
    previous_issue,
    previous_issue_time,
    save_carry,
    set_digest,
)
from .scheduler import review_job_id
from .times import auto_issue_id, cron_trigger, latest_fire, parse_duration, zone

log = logging.getLogger(__name__)

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()

Sender = Callable[[Config, str, str], object]      # (config, issue id, list) → a SendReport


@dataclass(frozen=True)
class FireResult:
    """What one firing did: the issue, its final state, the number of items, and why."""

    issue_id: str
    state: str              # draft | sent | sending | skipped | failed | cancelled
    items: int
    detail: str = ""


def _issue_lock(issue_id: str) -> threading.Lock:
    """Return the in-process lock of one automatic issue (a firing and its recovery never overlap)."""
    with _locks_guard:
        return _locks.setdefault(issue_id, threading.Lock())


def since_for(config: Config, fired_at: datetime, cron: str, tz: ZoneInfo) -> datetime | None:
    """Return the cut-off for new items: when the previous automatic issue fired.

    Skipped, failed and cancelled firings sent nothing, so their items stay new. Before the
    first automatic issue, the window opens one cron period before the first firing.
    """
    engine = get_engine(config)
    previous = previous_issue_time(engine, fired_at.timestamp())
    if previous is not None:
        return datetime.fromtimestamp(previous, timezone.utc)
    if not cron:
        return None
    first = min(first_firing(engine) or fired_at.timestamp(), fired_at.timestamp())
    return latest_fire(cron_trigger(cron, tz), datetime.fromtimestamp(first, tz) - timedelta(microseconds=1))


def build(config: Config, issue_id: str, fired_at: datetime, cron: str, tz: ZoneInfo) -> FireResult:
    """Create (or top up, after a crash) the automatic issue and render it; returns its result.

    The issue starts with the entries the previous automatic issue could not take; what this one
    cannot take is kept for the next (records.digest_carry).
    """
    engine = get_engine(config)
    path = issues.issue_path(config.paths.issues, issue_id)
    local = fired_at.astimezone(tz)
    previous = previous_issue(engine, fired_at.timestamp())
    carried = _candidates(load_carry(engine, previous.issue_id)) if previous is not None else []
    composed = pipeline.compose_digest(config, issue_id, since_for(config, fired_at, cron, tz), local.date(),
                                       format_date(local.date().isoformat(), config.newsletter.language),
                                       carried=carried)
    count, failed = composed.items, composed.failed_feeds
    if failed and len(failed) == len(config.sources.feeds) and count == 0:
        detail = f"no feed could be read ({', '.join(failed)})"
        set_digest(engine, issue_id, DigestState.FAILED, items=0, detail=detail)
        save_carry(engine, issue_id, [])
        path.unlink(missing_ok=True)
        return FireResult(issue_id, "failed", 0, detail)
    if count < config.schedule.min_items:
        detail = f"{count} new item(s), fewer than min_items = {config.schedule.min_items}"
        set_digest(engine, issue_id, DigestState.SKIPPED, items=count, detail=detail)
        save_carry(engine, issue_id, [])
        # Nobody has seen this file: it came from this firing only; its items stay new for the next.
        path.unlink(missing_ok=True)
        return FireResult(issue_id, "skipped", count, detail)
    save_carry(engine, issue_id, [CarriedEntry(c.url, c.published.timestamp(), c.order, c.section, c.feed,
                                               c.guid) for c in composed.overflow])
    if composed.overflow:
        log.info("automatic digest %s: %d new entries did not fit (max_items = %d): the next issue "
                 "starts with them", issue_id, len(composed.overflow), config.schedule.max_items)
    report = pipeline.build_issue(config, issue_id)
    for warning in report.warnings:
        log.warning("automatic digest %s: %s", issue_id, warning)
    set_digest(engine, issue_id, "building", items=count)
    return FireResult(issue_id, "built", count)


def _candidates(entries: list[CarriedEntry]) -> list:
    """Return carried entries as the feed candidates compose_digest takes."""
    from ..articles.feeds import FeedCandidate

    return [FeedCandidate(datetime.fromtimestamp(e.published, timezone.utc), e.feed_order, e.url, e.section,
                          e.feed, e.guid) for e in entries]


def fire(config: Config, fired_at: datetime, *, sender: Sender, cron: str = "",
         tz: ZoneInfo | None = None, hold: Callable[[Config, str, datetime], object] | None = None) -> FireResult:
    """Run the firing of fired_at once: build, then hold as a draft (review) or send; idempotent.

    A firing that finished does nothing again; one that died part-way picks up where it stopped
    (same issue id, the ledger refuses a second copy). Raises nothing for expected failures: they
    end in the returned state and the log.
    """
    tz = tz or zone(config)
    issue_id = auto_issue_id(fired_at, tz)
    engine = get_engine(config)
    with _issue_lock(issue_id):
        record = claim_digest(engine, issue_id, fired_at.timestamp())
        if record.state not in ("building", "sending"):
            log.info("automatic digest %s: already %s, nothing to do", issue_id, record.state)
            return FireResult(issue_id, record.state, record.items, "already done")
        items = record.items
        if record.state == "building":
            try:
                built = build(config, issue_id, fired_at, cron, tz)
            except NewsletterError as err:
                set_digest(engine, issue_id, DigestState.FAILED, detail=str(err))
                log.error("automatic digest %s: not built: %s", issue_id, err)
                return FireResult(issue_id, "failed", 0, str(err))
            if built.state != "built":
                log.info("automatic digest %s: %s: %s", issue_id, built.state, built.detail)
                return built
            items = built.items
            if config.schedule.review:
                deadline = fired_at + parse_duration(config.schedule.review_deadline, "schedule.review_deadline")
                if hold is not None:
                    hold(config, issue_id, deadline)
                set_digest(engine, issue_id, "draft", items=items, detail=f"deadline {deadline.isoformat()}")
                log.info("automatic digest %s: draft of %d items held for review; it goes out at %s "
                         "unless cancelled with `newsletter unschedule %s`", issue_id, items,
                         deadline.astimezone(tz).isoformat(), review_job_id(issue_id))
                return FireResult(issue_id, "draft", items)
            set_digest(engine, issue_id, "sending", items=items, only_from=("building",))
        return send(config, issue_id, items, sender)


def send(config: Config, issue_id: str, items: int, sender: Sender) -> FireResult:
    """Send the built automatic issue and record the outcome; a failure leaves it resumable."""
    engine = get_engine(config)
    try:
        report = sender(config, issue_id, config.schedule.list)
    except NewsletterError as err:
        set_digest(engine, issue_id, "sending", detail=f"send failed: {err}")
        log.error("automatic digest %s: send failed: %s (it resumes at the next `newsletter run`, "
                  "or run `newsletter send %s`)", issue_id, err, issue_id)
        return FireResult(issue_id, "sending", items, str(err))
    if getattr(report, "enqueued", None) is not None and getattr(report, "state", "") != "sent":
        # Handed to the queue's workers ([queue] enabled): it is being sent, not sent yet.
        # The workers mark it sent when they finish (records.finish_queued_send): perhaps already.
        set_digest(engine, issue_id, DigestState.SENDING, items=items, detail="queued for the workers",
                   only_from=(DigestState.SENDING,))
        return FireResult(issue_id, "sending", items, "queued for the workers")
    set_digest(engine, issue_id, DigestState.SENT, items=items)
    return FireResult(issue_id, "sent", items)


def mark_sent(config: Config, issue_id: str) -> None:
    """Record that an automatic issue held for review went out (its deadline send finished)."""
    engine = get_engine(config)
    if get_digest(engine, issue_id) is not None:
        set_digest(engine, issue_id, DigestState.SENT, only_from=(DigestState.DRAFT, DigestState.SENDING))


def is_cancelled(config: Config, issue_id: str) -> bool:
    """Return True when issue_id is an automatic draft whose send was cancelled."""
    try:
        record = get_digest(get_engine(config), issues.check_issue_id(issue_id))
    except IssueError:
        return False
    return record is not None and record.state == "cancelled"
