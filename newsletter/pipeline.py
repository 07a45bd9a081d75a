"""The whole story, one readable function per step: compose, build, send, and the automatic digest.

    sources ─▶ extract ─▶ summarize ─▶ issues/ID.toml ─▶ render once ─▶ personalise ─▶ backend ─▶ ledger

The CLI, the scheduler and the web app call these functions; they never run the stages in
sequence themselves. Each stage lives in its own subpackage (articles, summarize, render,
personalize, backends, delivery); stage modules that need trafilatura, feedparser, MJML or
premailer are imported where they are used, so `status` or `send` start without paying for them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import issues
from .config import Config
from .errors import ChecksFailed, IssueError, SourceError
from .models import Article, Item, RawDocument, Rendered

if TYPE_CHECKING:
    from .articles.duplicates import DuplicateGuard
    from .delivery.send import SendReport
    from .migrate import UpgradeReport
    from .models import Delivery
    from .queue.chunks import ChunkJob
    from .queue.enqueue import QueuedSend
    from .queue.progress import SendProgress
    from .summarize import Summarizer

log = logging.getLogger(__name__)

_FETCH_THREADS = 4      # fetching is I/O bound; extraction and summaries stay on one thread

Progress = Callable[[int, int], None]   # (rows done in this run, rows to do in this run)


@dataclass
class AddReport:
    """What `add` did: the items appended, the sources skipped as duplicates, the failures."""

    added: list[Item] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (source, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (source, one-line error)


@dataclass
class BuildReport:
    """What `build` produced: the render, where it was saved, and the pre-send warnings."""

    rendered: Rendered
    folder: Path
    warnings: list[str]


# -- compose: sources → items in the issue file ----------------------------------------------------

def add_sources(config: Config, issue_id: str, sources: list[str], *, section: str = "",
                force: bool = False, url: str | None = None, summarizer: str | None = None) -> AddReport:
    """Fetch, extract and summarise each source and append an item per article to the issue file.

    sources are URLs, file paths or "-" (stdin); a source already in the issue or in a sent issue
    is skipped (unless force). Returns the AddReport; raises IssueError for the issue file,
    ConfigError for the summariser, SourceError when url is given with several sources.
    """
    from .articles.duplicates import DuplicateGuard
    from .articles.sources import is_url
    from .summarize import make_summarizer

    if url and len(sources) != 1:
        raise SourceError("--url names the address of one source; give exactly one")
    guard = DuplicateGuard(config, issue_id, force)
    report = AddReport()
    todo = []
    for source in sources:
        why = guard.reason(source) if is_url(source) else None
        if why:
            report.skipped.append((source, why))
        else:
            todo.append(source)
    docs = list(zip(todo, _fetch_all(config, todo)))
    compose_items(docs, section, guard, report, make_summarizer(config.summarize, summarizer), url)
    issues.append_items(config.paths.issues, issue_id, report.added)
    return report


def add_feed(config: Config, issue_id: str, feed: str, *, since: datetime | None = None,
             limit: int | None = None, section: str = "", force: bool = False) -> AddReport:
    """Append the feed's recent items (newest first, at most limit); raises SourceError for the feed."""
    from .articles.feeds import read_feed

    entries = read_feed(feed, config.fetch, since=since, limit=limit)
    return add_sources(config, issue_id, [e.url for e in entries if e.url], section=section, force=force)


def compose_items(docs: list[tuple[str, RawDocument | SourceError]], section: str,
                  guard: "DuplicateGuard", report: AddReport, summarizer: "Summarizer",
                  url: str | None = None) -> None:
    """Extract and summarise each fetched document into report.added; failures go to report.failed."""
    from .articles.extract import extract

    for source, doc in docs:
        if isinstance(doc, SourceError):
            report.failed.append((source, str(doc)))
            continue
        try:
            article = extract(doc)
            link = url or article.url or doc.url or ""
            why = guard.reason(link)
            if why:
                report.skipped.append((source, why))
                continue
            summary = summarizer.summarize(article)
        except SourceError as err:
            report.failed.append((source, str(err)))
            continue
        guard.remember(link)
        report.added.append(item_from_article(article, summary, section, link))


def item_from_article(article: Article, summary: str, section: str, url: str | None = None) -> Item:
    """Return the issue Item for an extracted and summarised article."""
    return Item(url=url or article.url or "", title=article.title or (url or article.url or ""),
                summary=summary, source=article.site_name, author=article.author,
                date=article.date, image=article.image,
                image_alt=article.title if article.image else "", section=section)


def _fetch_all(config: Config, sources: list[str]) -> list[RawDocument | SourceError]:
    """Fetch every source (URLs in parallel); return a document or the error for each, in order."""
    from .articles.sources import fetch, is_url

    def one(source: str) -> RawDocument | SourceError:
        try:
            return fetch(source, config.fetch)
        except SourceError as err:
            err.source = err.source or source
            return err
    remote = sum(1 for s in sources if is_url(s))
    if remote < 2:
        return [one(s) for s in sources]
    with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:
        return list(pool.map(one, sources))


# -- build: the issue file → one render, saved -------------------------------------------------------

def is_frozen(config: Config, issue_id: str) -> bool:
    """Return True once any message of the issue was queued: its render may no longer change."""
    from .db import get_engine
    from .ledger import Ledger

    return Ledger(get_engine(config)).is_frozen(issue_id)


def build_issue(config: Config, issue_id: str, *, strict: bool = False) -> BuildReport:
    """Render the issue once and save email.html, email.txt, preview.eml; raises IssueError/RenderError.

    With strict, any pre-send warning raises ChecksFailed and nothing is saved."""
    from .files import write_atomic
    from .personalize.message import sample_message
    from .render import saved
    from .render.checks import check_rendered
    from .render.issue import render_issue

    issue = issues.load_issue(config.paths.issues, issue_id)
    if is_frozen(config, issue_id):
        raise IssueError(f"issue {issue_id!r} is being sent or was sent: its render is frozen "
                         "(start a new issue to change it)")
    rendered = render_issue(issue, config)
    warnings = check_rendered(rendered, issue)
    if strict and warnings:
        raise ChecksFailed(issue_id, warnings)
    folder = saved.save_rendered(config.paths.state, rendered)
    preview = sample_message(rendered, config, config.delivery.default_list)
    write_atomic(folder / saved.PREVIEW_FILE, preview)
    return BuildReport(rendered=rendered, folder=folder, warnings=warnings)


# -- send: the saved render × each subscriber → backend, through the ledger --------------------------

def send_issue(config: Config, issue_id: str, *, list_name: str | None = None, retry_unknown: bool = False,
               dry_run: bool = False, progress: Progress | None = None,
               halt: threading.Event | None = None) -> "SendReport | QueuedSend":
    """Send the saved render of issue_id to every active subscriber of the list not yet sent to.

    Returns a SendReport. Raises IssueError (never built, being sent elsewhere), SubscriberError
    (unknown or empty list), ConfigError (the backend cannot connect or log in: raised before any
    row is claimed), DeliveryError (the backend failed in a way that stops the run; what went out
    is recorded) and SendStopped when halt (or SIGINT/SIGTERM) stopped it part-way.

    With [queue] enabled (and not a dry run) nothing is sent here: the send is handed to the
    workers (enqueue_issue) and a QueuedSend is returned.
    """
    if config.queue.enabled and not dry_run:
        return enqueue_issue(config, issue_id, list_name=list_name, retry_unknown=retry_unknown)
    from .backends.base import make_backend
    from .db import get_engine
    from .delivery import send
    from .delivery.lock import send_lock
    from .ledger import Ledger
    from .personalize.message import MessageFactory
    from .render.saved import load_rendered
    from .subscribers import SubscriberStore

    started = time.monotonic()
    list_name = list_name or config.delivery.default_list
    rendered = load_rendered(config.paths.state, issue_id)        # the render `build` froze
    engine = get_engine(config)
    ledger, store = Ledger(engine), SubscriberStore(engine)
    if list_name not in ledger.lists_of(issue_id):
        store.require_list(list_name)
    factory = MessageFactory(rendered, config, list_name=list_name)   # personalises per subscriber
    report = send.SendReport(issue_id=issue_id, list_name=list_name, dry_run=dry_run)
    if dry_run:
        send.dry_run(report, factory, ledger, store, retry_unknown)
    else:
        with send_lock(config.paths.state, engine, issue_id):
            # Opening connects and logs in: bad credentials stop here, before any row is touched.
            with make_backend(config) as backend:
                send.deliver(report, ledger, backend, factory, config.delivery,
                             retry_unknown=retry_unknown, progress=progress, halt=halt)
    return send.finish_report(report, ledger, started)


# -- several senders: the send handed to queue workers, chunk by chunk ------------------------------

def enqueue_issue(config: Config, issue_id: str, *, list_name: str | None = None,
                  retry_unknown: bool = False) -> "QueuedSend":
    """Plan issue_id's rows for the list and queue them as chunks for the workers, in one transaction.

    The render `build` froze is stored in the database with them, so a worker on any host sends
    the same bytes. Returns a QueuedSend; raises IssueError (never built, a single-process send
    of it is running), SubscriberError (unknown or empty list), QueueError, ConfigError.
    """
    from .db import get_engine
    from .ledger import Ledger
    from .queue.enqueue import enqueue_send
    from .render.saved import load_rendered
    from .subscribers import SubscriberStore

    list_name = list_name or config.delivery.default_list
    rendered = load_rendered(config.paths.state, issue_id)
    engine = get_engine(config)
    if list_name not in Ledger(engine).lists_of(issue_id):
        SubscriberStore(engine).require_list(list_name)
    return enqueue_send(engine, config, rendered, issue_id, list_name, retry_unknown=retry_unknown)


@dataclass
class ChunkOutcome:
    """What one run of a chunk did: the chunk's state afterwards and the send report of its rows."""

    state: str                   # models.ChunkState
    report: "SendReport"
    detail: str = ""


def send_chunk(config: Config, job: "ChunkJob", *, worker_id: int | None, worker: str,
               should_stop: Callable[[], bool] = lambda: False) -> ChunkOutcome:
    """Send one chunk of a queued send through the same send loop, backend and ledger as `send`.

    Runs on a queue worker: holds the chunk's lock (ChunkBusy when another worker has it), turns
    rows a dead run of this chunk left "sending" into "unknown", sends the rest under the rate
    limit shared by all workers, and records the chunk's state. A pause (too many failures) or a
    backend/config failure halts the whole send (other chunks stop at their next safe point).
    Raises SendStopped when should_stop() turned true (the worker is stopping: the chunk is
    queued again), ChunkBusy, QueueError, ConfigError or DeliveryError (the chunk failed).
    """
    from .backends.base import make_backend
    from .db import get_engine
    from .delivery.lock import chunk_lock
    from .delivery.send import SendReport, deliver_chunk
    from .errors import NewsletterError, SendStopped
    from .ledger import Ledger
    from .models import ChunkState
    from .personalize.message import MessageFactory
    from .queue import chunks
    from .queue.ratelimit import SharedRateLimiter, rate_key

    engine = get_engine(config)
    ledger = Ledger(engine)
    queued = chunks.load_send(engine, job.issue_id, job.list_name)
    report = SendReport(issue_id=job.issue_id, list_name=job.list_name)
    outcome = ChunkOutcome(ChunkState.HELD, report, queued.halted)
    if not queued.halted:
        started, halt = time.monotonic(), threading.Event()
        with chunk_lock(engine, job.issue_id, job.chunk_id, keepalive=config.queue.stalled_seconds / 4):
            chunks.set_chunk(engine, job.chunk_id, ChunkState.RUNNING, worker_id=worker_id, worker=worker)
            limiter = SharedRateLimiter(engine, rate_key(config), config.delivery.rate_per_second)
            factory = MessageFactory(queued.rendered, config, list_name=job.list_name)
            try:
                with chunks.watch(engine, job, halt, should_stop), make_backend(config) as backend:
                    deliver_chunk(report, ledger, backend, factory, config.delivery, job.rows,
                                  retry_unknown=queued.retry_unknown, limiter=limiter, halt=halt)
            except SendStopped:
                outcome.detail = chunks.halted(engine, job.issue_id, job.list_name)
                if not outcome.detail or should_stop():
                    chunks.set_chunk(engine, job.chunk_id, ChunkState.QUEUED, "stopped with its worker; queued again")
                    raise
            except NewsletterError as err:
                chunks.set_chunk(engine, job.chunk_id, ChunkState.FAILED, str(err))
                chunks.halt_send(engine, job.issue_id, job.list_name, f"chunk {job.chunk_id} failed: {err}")
                raise
            else:
                report.elapsed = time.monotonic() - started
                outcome.state, outcome.detail = ChunkState.DONE, chunks.summary(report)
                if report.paused:
                    outcome.state, outcome.detail = ChunkState.PAUSED, report.paused
                    chunks.halt_send(engine, job.issue_id, job.list_name, f"paused: {report.paused}")
    chunks.set_chunk(engine, job.chunk_id, outcome.state, outcome.detail)
    if chunks.unfinished_chunks(engine, job.issue_id, job.list_name) == 0:
        # The last chunk to end marks the issue sent when no row is open (the ledger decides).
        report.state = ledger.finish(job.issue_id, job.list_name)
    return outcome


def follow_send(config: Config, issue_id: str, *, list_name: str | None = None, every: float = 1.0,
                on_progress: "Callable[[SendProgress, dict[str, int]], None] | None" = None,
                halt: threading.Event | None = None) -> "SendProgress | None":
    """Wait until no chunk of the queued send waits or runs; return its last SendProgress.

    on_progress gets the progress and the ledger's counts per state every `every` seconds.
    Returns None when the issue was never queued for the list; stops early when halt is set.
    """
    from .db import get_engine
    from .queue.progress import follow

    return follow(get_engine(config), issue_id, list_name or config.delivery.default_list, every=every,
                  on_progress=on_progress, halt=halt)


def upgrade_database(config: Config) -> tuple["UpgradeReport", list[str]]:
    """Bring the database to the newest schema (`newsletter db upgrade`); a new one is created.

    Returns (what Alembic did, Procrastinate's schema steps applied: PostgreSQL with [queue]
    enabled). Raises ConfigError when the database is not one of ours or is newer than this code.
    """
    from .config import is_postgres_url
    from .db import dispose_engines, unchecked_engine, write_transaction
    from .migrate import upgrade_to_head

    url = config.database_url()
    engine = unchecked_engine(url)
    try:
        with write_transaction(engine) as conn:
            report = upgrade_to_head(conn)
        steps: list[str] = []
        if is_postgres_url(url) and config.queue.enabled:
            from .queue import schema

            with write_transaction(engine) as conn:
                steps = schema.upgrade(conn)
    finally:
        engine.dispose()
    dispose_engines()           # engines opened before the upgrade checked the old schema
    return report, steps


def send_test(config: Config, issue_id: str, address: str, *, list_name: str | None = None) -> "Delivery":
    """Send one copy of issue_id to address with "[TEST]" before the subject, outside the ledger.

    Uses the subscriber's own name and fields when address is on the list. Returns the Delivery;
    raises SubscriberError (bad address), IssueError (never built), ConfigError or DeliveryError.
    """
    from .backends.base import make_backend
    from .db import get_engine
    from .delivery.send import send_one
    from .models import Subscriber
    from .personalize.message import MessageFactory
    from .render.saved import load_rendered
    from .subscribers import SubscriberStore, normalise_address

    list_name = list_name or config.delivery.default_list
    email = normalise_address(address)
    rendered = load_rendered(config.paths.state, issue_id)
    known = SubscriberStore(get_engine(config)).get(email, list_name)
    subscriber = Subscriber(email=email, list=list_name,
                            name=known.name if known else "", fields=known.fields if known else {})
    factory = MessageFactory(rendered, config, list_name=list_name, test=True)
    with make_backend(config) as backend:
        result = send_one(backend, factory, factory.recipient(subscriber))
    log.info("test copy of %s sent to %s (%s)", issue_id, email, result.message_id)
    return result


# -- the automatic digest: the feeds' new items → an issue, built (then sent by the scheduler) ------

@dataclass
class DigestCompose:
    """What composing an automatic issue did: its item count and the feeds that could not be read."""

    items: int
    failed_feeds: list[str]


def compose_digest(config: Config, issue_id: str, since: datetime | None, day: date,
                   title: str) -> DigestCompose:
    """Create (or top up, after a crash) the automatic issue from the [sources] feeds' entries
    published since the cut-off, newest first, until schedule.max_items; returns DigestCompose.

    URLs already in a sent issue are skipped, so the issue tops up from the next-newest entries.
    Raises IssueError for the issue file and ConfigError for the summariser.
    """
    from .articles.feeds import feed_candidates

    if not issues.issue_path(config.paths.issues, issue_id).exists():
        issues.create_issue(config.paths.issues, issue_id, title, day)
    candidates, failed = feed_candidates(config.sources.feeds, config.fetch, since)
    limit = config.schedule.max_items
    count = len(issues.load_issue(config.paths.issues, issue_id).items)
    queue = list(candidates)
    while count < limit and queue:
        batch, queue = queue[:limit - count], queue[limit - count:]
        for order in sorted({c.order for c in batch}):
            group = [c for c in batch if c.order == order]
            report = add_sources(config, issue_id, [c.url for c in group], section=group[0].section)
            for source, why in report.failed:
                log.warning("automatic digest %s: %s", issue_id, why if source in why else f"{source}: {why}")
            for source, why in report.skipped:
                log.info("automatic digest %s: %s skipped, %s", issue_id, source, why)
        count = len(issues.load_issue(config.paths.issues, issue_id).items)
    return DigestCompose(items=count, failed_feeds=failed)
