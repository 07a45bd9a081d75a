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
from .models import Article, Issue, Item, RawDocument, Rendered

if TYPE_CHECKING:
    from .articles.duplicates import DuplicateGuard
    from .delivery.send import SendReport
    from .models import Delivery
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


def build_issue(config: Config, issue_id: str, *, strict: bool = False,
                check_links: bool = False) -> BuildReport:
    """Render the issue once and save email.html, email.txt, preview.eml, and preview.html and
    preview.txt (filled for a sample subscriber); returns a BuildReport with the pre-send warnings.

    Warnings cover the render, the sender's identity, unknown merge fields and, with check_links,
    dead links. With strict, any warning raises ChecksFailed and nothing is saved. Raises
    IssueError (no items, frozen), RenderError and ConfigError.
    """
    from .files import write_atomic
    from .personalize.message import sample_preview
    from .render import saved
    from .render.checks import check_personalised
    from .render.issue import render_issue

    issue = issues.load_issue(config.paths.issues, issue_id)
    if not issue.items:
        raise IssueError(f"issue {issue_id!r} has no items: add some with "
                         f"`newsletter add SOURCE --issue {issue_id}` before building it")
    if is_frozen(config, issue_id):
        raise IssueError(f"issue {issue_id!r} is being sent or was sent: its render is frozen "
                         "(start a new issue to change it)")
    rendered = render_issue(issue, config)
    warnings = _build_warnings(config, issue, rendered, check_links)
    if strict and warnings:
        raise ChecksFailed(issue_id, warnings)
    folder = saved.save_rendered(config.paths.state, rendered)
    message, html, text = sample_preview(rendered, config, config.delivery.default_list)
    write_atomic(folder / saved.PREVIEW_FILE, message)
    write_atomic(folder / saved.PREVIEW_HTML, html.encode("utf-8"))
    write_atomic(folder / saved.PREVIEW_TEXT, text.encode("utf-8"))
    warnings += [f"preview: {w}" for w in check_personalised(html, text)]
    return BuildReport(rendered=rendered, folder=folder, warnings=warnings)


def _build_warnings(config: Config, issue: Issue, rendered: Rendered, check_links: bool) -> list[str]:
    """Return the pre-send warnings of a render: its own checks, the sender's identity, unknown
    merge fields (against the fields the subscriber lists have) and, when asked, dead links."""
    from .render.checks import check_fields, check_identity, check_rendered, fields_used
    from .render.placeholders import STANDARD_FIELDS

    warnings = check_rendered(rendered, issue)
    warnings += check_identity(config.newsletter, str(config.path or "config"))
    if set(fields_used(rendered)) - set(STANDARD_FIELDS):
        warnings += check_fields(rendered, _subscriber_fields(config))
    if check_links:
        from .render.links import check_links as ask, dead_link_warnings, link_targets

        warnings += dead_link_warnings(ask(link_targets(rendered.html), config.fetch))
    return warnings


def _subscriber_fields(config: Config) -> set[str]:
    """Return the token names of the custom fields any subscriber of any list has."""
    from .db import get_engine
    from .render.placeholders import field_name
    from .subscribers import SubscriberStore

    store = SubscriberStore(get_engine(config))
    return {field_name(str(key)) for name in store.lists()
            for subscriber in store.iter_subscribers(name) for key in subscriber.fields}


# -- send: the saved render × each subscriber → backend, through the ledger --------------------------

def send_issue(config: Config, issue_id: str, *, list_name: str | None = None, retry_unknown: bool = False,
               dry_run: bool = False, progress: Progress | None = None,
               halt: threading.Event | None = None) -> "SendReport":
    """Send the saved render of issue_id to every active subscriber of the list not yet sent to.

    Returns a SendReport. Raises IssueError (never built, being sent elsewhere), SubscriberError
    (unknown or empty list), ConfigError (the backend cannot connect or log in: raised before any
    row is claimed), DeliveryError (the backend failed in a way that stops the run; what went out
    is recorded) and SendStopped when halt (or SIGINT/SIGTERM) stopped it part-way.
    """
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
