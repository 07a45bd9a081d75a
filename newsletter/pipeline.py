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
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from . import issues
from .articles.compose import AddProgress, AddReport, Composed
from .articles.digestfill import DigestCompose
from .config import Config
from .errors import ChecksFailed, IssueError, SourceError
from .models import BuildReport
# The queue's half of the send step: send_issue hands a send to the workers (enqueue_issue), and
# each worker sends its chunks with send_chunk; and a test copy outside the ledger (send_test).
# The CLI, the web app and the worker import them from here.
from .delivery.testcopy import send_test  # noqa: F401 - re-exported
from .queue.handoff import ChunkOutcome, enqueue_issue, send_chunk  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from .articles.feeds import FeedCandidate
    from .delivery.send import SendReport
    from .queue.enqueue import QueuedSend

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]   # (rows done in this run, rows to do in this run)


# -- compose: sources → items in the issue file ----------------------------------------------------

def new_issue(config: Config, issue_id: str, title: str = "", when: date | None = None,
              intro: str = "") -> Path:
    """Create issues/<id>.toml (and forget what `add` remembered of an earlier file of that id);
    return its path. Raises IssueError when it exists or the id is invalid."""
    from .articles import curation

    path = issues.create_issue(config.paths.issues, issue_id, title, when, intro=intro)
    curation.forget(config, issue_id)
    return path


def curate(config: Config, issue_id: str) -> tuple[list[str], list[str]]:
    """Turn items the editor deleted from the issue file into tombstones; return (the issue's
    tombstones, those new now). Raises IssueError for a missing or invalid issue file."""
    from .articles import curation

    tombstones, _kept, new = curation.sync_tombstones(config, issue_id)
    return tombstones, new


def add_sources(config: Config, issue_id: str, sources: list[str], *, section: str = "",
                force: bool = False, url: str | None = None, summarizer: str | None = None,
                progress: AddProgress | None = None) -> AddReport:
    """Fetch, extract and summarise each source and append an item per article to the issue file.

    sources are URLs, file paths or "-" (stdin). A story already in the issue, removed from it by
    the editor (a tombstone) or in a sent issue is skipped unless force (which also clears its
    tombstone); stories are compared by canonical link (articles.duplicates.url_key). progress,
    when given, is called (done, total, source) as each source is finished. Returns the AddReport;
    raises IssueError for the issue file, ConfigError for the summariser, SourceError when url is
    given with several sources.
    """
    from .articles import curation
    from .articles.compose import compose_items, counter, fetch_all
    from .articles.duplicates import DuplicateGuard, url_key
    from .articles.sources import is_url
    from .summarize import make_summarizer

    if url and len(sources) != 1:
        raise SourceError("--url names the address of one source; give exactly one")
    report = AddReport()
    tombstones, kept, report.remembered = curation.sync_tombstones(config, issue_id)
    guard = DuplicateGuard(config, issue_id, force, removed=tombstones,
                           aliases=[s for entry in kept for s in entry.sources])
    summarize = make_summarizer(config.summarize, summarizer)
    tick = counter(progress, len(sources))
    todo: list[str] = []
    given: set[str] = set()
    for source in sources:
        why = guard.reason(source) if is_url(source) else None
        if not why and is_url(source) and url_key(source) in given:
            why = "given twice"
        if why:
            report.skipped.append((source, why))
            tick(source)
        else:
            given.add(url_key(source) if is_url(source) else source)
            todo.append(source)
    docs = zip(todo, fetch_all(config, todo), strict=True)
    appended = compose_items(docs, section, guard, report, summarize, url, tick)
    issues.append_items(config.paths.issues, issue_id, report.added)
    # Remembered after the items are in the file: a crash in between forgets an item (it is then
    # not tombstoned when deleted) rather than tombstoning one that was never appended.
    curation.record_appended(config, issue_id, appended)
    if force and appended:
        report.cleared = curation.clear_tombstones(config, issue_id, [a.link for a in appended])
    return report


def read_article(config: Config, source: str, summarizer: str | None = None) -> Composed:
    """Fetch, extract and summarise one source without adding it to an issue (an inbox candidate,
    a regenerated blurb); summarizer names a plugin (default: summarize.summarizer). Raises
    SourceError for the source, ConfigError for the summariser."""
    from .articles.compose import compose_one
    from .summarize import make_summarizer

    return compose_one(config, source, make_summarizer(config.summarize, summarizer))


def add_feed(config: Config, issue_id: str, feed: str, *, since: datetime | timedelta | None = None,
             limit: int | None = None, section: str = "", force: bool = False,
             progress: AddProgress | None = None) -> AddReport:
    """Append the feed's recent items (newest first, at most limit) as add_sources does.

    With since, an entry without a usable date is taken the first time the feed offers it (its
    GUID is remembered in the database). Raises SourceError for the feed, and what add_sources
    raises.
    """
    from .articles.feedmemory import FeedMemory
    from .articles.feeds import read_feed_window

    memory = FeedMemory.of(config) if since is not None else None
    seen = memory.seen(feed) if memory is not None else set()
    window = read_feed_window(feed, config.fetch, since=since, limit=limit,
                              is_new=(lambda guid: memory.is_new(seen, guid)) if memory else None)
    report = add_sources(config, issue_id, [e.url for e in window.entries], section=section,
                         force=force, progress=progress)
    report.older, report.beyond_limit = window.older, window.beyond_limit
    report.undated_new, report.undated_seen = window.undated_new, window.undated_seen
    if memory is not None:
        failed = {source for source, _line in report.failed}
        memory.remember(feed, [e.guid for e in window.entries if e.published is None and e.url not in failed])
    return report


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
    dead links. The render records digests of what it was made from (render.inputs), so a send
    can refuse it once the issue file, templates or settings changed. With strict, any warning
    raises ChecksFailed and nothing is saved. Raises IssueError (no items, frozen), RenderError
    and ConfigError.
    """
    from .files import write_atomic
    from .personalize.message import sample_preview
    from .render import saved
    from .render.checks import check_personalised
    from .render.prechecks import build_warnings
    from .render.inputs import input_digests
    from .render.issue import render_issue

    issue = issues.load_issue(config.paths.issues, issue_id)
    if not issue.items:
        raise IssueError(f"issue {issue_id!r} has no items: add some with "
                         f"`newsletter add SOURCE --issue {issue_id}` before building it")
    if is_frozen(config, issue_id):
        raise IssueError(f"issue {issue_id!r} is being sent or was sent: its render is frozen "
                         "(start a new issue to change it)")
    inputs = input_digests(config, issue)
    rendered = render_issue(issue, config)
    warnings = build_warnings(config, issue, rendered, check_links)
    if strict and warnings:
        raise ChecksFailed(issue_id, warnings)
    folder = saved.save_rendered(config.paths.state, rendered, inputs=inputs)
    message, html, text = sample_preview(rendered, config, config.delivery.default_list)
    write_atomic(folder / saved.PREVIEW_FILE, message)
    write_atomic(folder / saved.PREVIEW_HTML, html.encode("utf-8"))
    write_atomic(folder / saved.PREVIEW_TEXT, text.encode("utf-8"))
    # Only what personalising added: a problem of the render itself was named above already.
    warnings += [f"preview: {w}" for w in check_personalised(html, text) if w not in warnings]
    return BuildReport(rendered=rendered, folder=folder, warnings=warnings)


def check_current(config: Config, issue_id: str, *, frozen: bool | None = None) -> None:
    """Check that the saved render of issue_id is what `build` would make now (render.inputs);
    frozen (default: whether its send started) lets a changed render go out with a warning.

    Raises IssueError (never built) and StaleRender naming what changed since `build`."""
    from .render.inputs import check_current as compare

    compare(config, issue_id, frozen=is_frozen(config, issue_id) if frozen is None else frozen)


def rebuild_for_send(config: Config, issue_id: str) -> BuildReport | None:
    """Build issue_id again before a send asked for it (`send --build`); returns the BuildReport,
    or None when its send already started (the frozen render goes out). Raises as build_issue."""
    if is_frozen(config, issue_id):
        log.info("issue %s: its send started already: sending its frozen render", issue_id)
        return None
    return build_issue(config, issue_id)


# -- send: the saved render × each subscriber → backend, through the ledger --------------------------

def send_issue(config: Config, issue_id: str, *, list_name: str | None = None, retry_unknown: bool = False,
               dry_run: bool = False, progress: Progress | None = None,
               halt: threading.Event | None = None) -> "SendReport | QueuedSend":
    """Send the saved render of issue_id to every active subscriber of the list not yet sent to.

    Returns a SendReport. Raises IssueError (never built, being sent elsewhere), StaleRender (the
    issue, templates or settings changed since `build`, and no message went out yet),
    SubscriberError (unknown or empty list), ConfigError (the backend cannot connect or log in:
    raised before any row is claimed), DeliveryError (the backend failed in a way that stops the
    run; what went out is recorded) and SendStopped when halt (or SIGINT/SIGTERM) stopped it part-way.

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
    check_current(config, issue_id, frozen=ledger.is_frozen(issue_id))
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


# -- the automatic digest: the feeds' new items → an issue, built (then sent by the scheduler) ------

def compose_digest(config: Config, issue_id: str, since: datetime | None, day: date, title: str,
                   carried: Iterable["FeedCandidate"] = ()) -> DigestCompose:
    """Create (or top up, after a crash) the automatic issue from the entries the previous issue
    carried over, then the [sources] feeds' entries published since the cut-off, newest first,
    until schedule.max_items; returns DigestCompose with what did not fit (at most max_items).

    Stories already in a sent issue are skipped (by canonical link), so the issue tops up from
    the next entries; an entry without a usable date is taken once (its GUID is remembered).
    Raises IssueError for the issue file and ConfigError for the summariser.
    """
    from .articles.digestfill import candidate_queue, feed_groups, note_group
    from .articles.feedmemory import FeedMemory
    from .articles.feeds import feed_candidates

    if not issues.issue_path(config.paths.issues, issue_id).exists():
        new_issue(config, issue_id, title, day)
    memory = FeedMemory.of(config)
    candidates, failed = feed_candidates(config.sources.feeds, config.fetch, since, memory)
    queue = candidate_queue([*carried, *candidates])          # what waited longest goes first
    limit = config.schedule.max_items
    count = len(issues.load_issue(config.paths.issues, issue_id).items)
    while count < limit and queue:
        batch, queue = queue[:limit - count], queue[limit - count:]
        for group in feed_groups(batch):
            report = add_sources(config, issue_id, [c.url for c in group], section=group[0].section)
            note_group(issue_id, memory, group, report)
        count = len(issues.load_issue(config.paths.issues, issue_id).items)
    if len(queue) > limit:
        log.warning("automatic digest %s: %d new entries beyond what the next issue can take "
                    "(schedule.max_items = %d) are dropped", issue_id, len(queue) - limit, limit)
    return DigestCompose(items=count, failed_feeds=failed, overflow=queue[:limit])
