"""The inbox's feeds: read every configured feed into the inbox, on demand (the inbox page, the
API) and every `inbox.fetch_every` in `newsletter run` (a job in the scheduler's store)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from ..config import Config, load_config
from ..db import get_engine
from ..errors import NewsletterError, SourceError
from ..workspace.inbox import Inbox
from .scheduler import config_file, job_scheduler
from .times import parse_duration

log = logging.getLogger(__name__)

JOB_ID = "inbox-feeds"
JOB_FUNC = "newsletter.schedule.inbox_feeds:fetch_feeds_job"


def collect_feeds(config: Config, engine: Engine) -> tuple[int, list[str]]:
    """Read every configured feed into the inbox; return (entries offered, one line per failed feed).

    An entry already in the inbox or dismissed before is not offered again."""
    from ..articles.feeds import read_feed

    inbox, offered, failed = Inbox(engine), 0, []
    for feed in config.sources.feeds:
        try:
            entries = read_feed(feed.url, config.fetch, limit=config.schedule.max_items * 3)
        except SourceError as err:
            failed.append(f"{feed.url}: {err}")
            continue
        for entry in entries:
            try:
                site = urlsplit(entry.url).hostname or ""
                published = entry.published.strftime("%Y-%m-%d") if entry.published else ""
                if inbox.add(entry.url, "feed", entry.title, site, published) is not None:
                    offered += 1
            except SourceError:
                continue        # a feed entry without a web address: nothing to offer
    return offered, failed


def fetch_feeds_job(config_path: str) -> None:
    """The scheduled job: read the feeds into the inbox, then fetch the new candidates' articles.

    Logs its outcome; never raises for a feed or page that fails (the next run tries again)."""
    from .inbox_prefetch import prefetch_waiting

    try:
        config = load_config(config_path)
        engine = get_engine(config)
        offered, failed = collect_feeds(config, engine)
        fetched = prefetch_waiting(config, engine) if config.inbox.prefetch else 0
    except NewsletterError as err:
        log.error("inbox feeds: %s", err)
        return
    for line in failed:
        log.warning("inbox feeds: not read: %s", line)
    log.info("inbox feeds: %d new link(s) in the inbox, %d article(s) fetched", offered, fetched)


def install(config: Config) -> None:
    """Put the feed job in the scheduler's store as config says (the daemon calls this as it
    becomes the active scheduler, so a changed inbox.fetch_every takes effect at the next start)."""
    with job_scheduler(config) as scheduler:
        schedule_feed_fetching(scheduler, config)


def schedule_feed_fetching(scheduler: BaseScheduler, config: Config) -> None:
    """Add (or replace) the job that reads the feeds every inbox.fetch_every; remove it when that
    is "" or there are no feeds. Raises ConfigError for a duration that is not one."""
    every = config.inbox.fetch_every.strip()
    if not every or not config.sources.feeds:
        if scheduler.get_job(JOB_ID) is not None:
            scheduler.remove_job(JOB_ID)
        return
    seconds = max(int(parse_duration(every, "inbox.fetch_every").total_seconds()), 60)
    scheduler.add_job(JOB_FUNC, IntervalTrigger(seconds=seconds), args=[str(config_file(config))],
                      id=JOB_ID, name="read the feeds into the inbox", replace_existing=True)
